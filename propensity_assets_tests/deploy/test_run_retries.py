"""A run killed mid-way (a preempted node) is marked failed by run monitoring and launched
again by the instance's run retries, and the retry converges to what an uninterrupted
run writes. The Spark and training assets retry their steps with backoff, and bad input
is never retried.

The kill test runs a real `dagster-daemon` on the project's dagster.yaml (its run
launcher, run monitoring and run retries; only the polling interval is shortened) and
a real queued run: the run writes the first of three lake partitions, then the test
SIGKILLs the run's process.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.dataset as ds
import pytest

from propensity_assets.shared.lake import Lake
from propensity_assets.shared.retries import SPARK_AND_TRAINING
from propensity_assets_tests.cli_helpers import instance_at
from propensity_assets_tests.conftest import REPO

BIN = Path(sys.executable).parent
DAYS = ["2017-03-01", "2017-03-02", "2017-03-03"]

FLAKY = """
import os, time
import dagster as dg
import pandas as pd
from propensity_assets.shared.lake import Lake

DAYS = {days!r}

@dg.asset
def parts() -> None:
    lake = Lake(os.environ["FLAKY_LAKE"])
    for i, day in enumerate(DAYS):
        frame = pd.DataFrame({{"as_of": day, "household_id": range(50), "value": [i * 1000 + h for h in range(50)]}})
        lake.write_pandas("parts", frame, ["as_of"], specs=[{{"as_of": day}}])
        if i == 0 and os.path.exists(os.environ["FLAKY_PAUSE"]):
            time.sleep(600)  # where the node is preempted

defs = dg.Definitions(assets=[parts], jobs=[dg.define_asset_job("parts_job", [parts])])
"""


def expected(day_index: int) -> pd.DataFrame:
    return pd.DataFrame({"household_id": range(50), "value": [day_index * 1000 + h for h in range(50)]})


def read(lake: Lake, day: str) -> pd.DataFrame:
    frame = lake.read_pandas("parts", filters=ds.field("as_of") == day)
    return frame.sort_values("household_id")[["household_id", "value"]].reset_index(drop=True).astype("int64")


def test_spark_and_training_assets_retry_their_steps_with_backoff():
    from propensity_assets import definitions

    policy = SPARK_AND_TRAINING
    assert (policy.max_retries, policy.delay, policy.backoff) == (2, 30, dg.Backoff.EXPONENTIAL)
    graph = definitions.defs.resolve_asset_graph()
    retried = {
        key.to_user_string()
        for key in graph.get_all_asset_keys()
        if graph.get(key).assets_def.op.retry_policy == policy
    }
    spark_and_training = {"household_features", "group_features", "propensity_labels", "ltv_labels",
                          "propensity_model", "propensity_champion", "propensity_scores", "propensity_decay",
                          "ltv_model", "ltv_champion", "ltv_scores", "ltv_decay"}
    assert spark_and_training <= retried
    assert "transactions" not in retried  # ingest: bad input fails for good


def test_the_instance_retries_killed_runs_once_and_not_failed_steps(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").symlink_to(REPO / "dagster.yaml")
    with instance_at(home) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
        assert instance.run_retries_retry_on_asset_or_op_failure is False


@pytest.fixture
def world(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    # The project's instance, polling every 2 s instead of 30 s so the test is quick.
    config = (REPO / "dagster.yaml").read_text().replace("poll_interval_seconds: 30", "poll_interval_seconds: 2")
    assert "poll_interval_seconds: 2" in config
    (home / "dagster.yaml").write_text(config)
    (tmp_path / "flaky.py").write_text(textwrap.dedent(FLAKY.format(days=DAYS)))
    pause = tmp_path / "pause"
    pause.touch()
    lake = Lake(str(tmp_path / "lake"))
    old = pd.concat(pd.DataFrame({"as_of": d, "household_id": range(50), "value": [-1] * 50}) for d in DAYS)
    lake.write_pandas("parts", old, ["as_of"])
    env = {**os.environ, "DAGSTER_HOME": str(home), "FLAKY_LAKE": lake.root, "FLAKY_PAUSE": str(pause),
           "PYTHONPATH": str(REPO), "DAGSTER_EVENT_LOG_CONSUMER_DAEMON_INTERVAL_SECONDS": "2"}
    with instance_at(home):
        pass  # create the instance's storage before two processes race to
    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-f", str(tmp_path / "flaky.py")], cwd=tmp_path,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield home, lake, pause, env
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)


def wait_for(what: str, condition, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_run_is_retried_and_converges_to_the_uninterrupted_content(world, tmp_path):
    home, lake, pause, env = world
    launched = subprocess.run([str(BIN / "dagster"), "job", "launch", "-f", str(tmp_path / "flaky.py"), "-j",
                               "parts_job"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert launched.returncode == 0, launched.stderr[-3000:]
    with instance_at(home) as instance:
        [run] = instance.get_runs()
        # The run wrote the first partition and is stopped where the node is preempted.
        wait_for("the first partition", lambda: read(lake, DAYS[0]).equals(expected(0)))
        assert read(lake, DAYS[1])["value"].eq(-1).all()  # the others: still the old content
        [start] = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_START).records
        pid = start.event_log_entry.dagster_event.pid
        pause.unlink()  # the retry runs through
        os.kill(pid, signal.SIGKILL)

        failed = wait_for("run monitoring to fail the killed run",
                          lambda: (r := instance.get_run_by_id(run.run_id)).status == dg.DagsterRunStatus.FAILURE and r)
        retry = wait_for("the automatic retry", lambda: next(
            (r for r in instance.get_runs() if r.parent_run_id == run.run_id), None))
        assert retry.tags["dagster/retry_number"] == "1"
        done = wait_for("the retry to finish", lambda: instance.get_run_by_id(retry.run_id).status in (
            dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE) and instance.get_run_by_id(retry.run_id))
        assert done.status == dg.DagsterRunStatus.SUCCESS
        assert failed.tags["dagster/will_retry"] == "true"
        assert instance.get_run_by_id(run.run_id).tags["dagster/auto_retry_run_id"] == retry.run_id

    # Every partition holds exactly what an uninterrupted run writes.
    for i, day in enumerate(DAYS):
        pd.testing.assert_frame_equal(read(lake, day), expected(i))
    assert not list(Path(lake.root, "_staging").glob("*"))
