"""Run monitoring fails a run whose process was killed (issue: killed runs stayed STARTED
for ever and filled the run queue), and leaves a live one alone.

A real `dagster asset materialize` in a subprocess, on an instance made from the
project's dagster.yaml (its `LocalRunLauncher` and `run_monitoring`), is killed with
SIGKILL mid-run; one iteration of the daemon's run monitoring then marks it failed.
"""

import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
import time

import dagster as dg
import pytest

from propensity_assets.deploy.run_launcher import LocalRunLauncher, process_started_at
from propensity_assets_tests.cli_helpers import instance_at
from propensity_assets_tests.conftest import REPO

SLOW = """
import time
import dagster as dg

@dg.asset
def slow_asset() -> None:
    time.sleep(600)

defs = dg.Definitions(assets=[slow_asset])
"""


def test_process_started_at():
    assert abs(process_started_at(os.getpid()) - time.time()) < 24 * 3600  # this process: alive, started earlier
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert process_started_at(int(done.stdout)) is None  # exited


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").symlink_to(REPO / "dagster.yaml")
    (tmp_path / "slow.py").write_text(textwrap.dedent(SLOW))
    return home


def _start_run(home, tmp_path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dg"), "launch", "-f", str(tmp_path / "slow.py"), "--assets", "slow_asset"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 120
    with instance_at(home) as instance:
        while time.monotonic() < deadline:
            runs = instance.get_runs()
            if runs and runs[0].status == dg.DagsterRunStatus.STARTED:
                return proc, runs[0].run_id
            time.sleep(0.5)
    proc.kill()
    raise AssertionError("the run never reached STARTED")


def _monitor_once(instance, tmp_path) -> None:
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
    from dagster._daemon.monitoring.run_monitoring import execute_run_monitoring_iteration

    target = InProcessWorkspaceLoadTarget(
        InProcessCodeLocationOrigin(
            LoadableTargetOrigin(python_file=str(tmp_path / "slow.py"), attribute="defs", working_directory=str(tmp_path)),
            location_name="slow",
        )
    )
    with create_test_daemon_workspace_context(target, instance) as workspace:
        errors = [e for e in execute_run_monitoring_iteration(workspace, logging.getLogger("monitoring_test")) if e]
    assert not errors, errors


def test_a_killed_run_is_marked_failed_and_a_live_one_is_not(home, tmp_path):
    proc, run_id = _start_run(home, tmp_path)
    try:
        with instance_at(home) as instance:
            assert isinstance(instance.run_launcher, LocalRunLauncher)
            assert instance.run_monitoring_enabled
            _monitor_once(instance, tmp_path)
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED  # alive: left alone

            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED  # nobody recorded the end
            _monitor_once(instance, tmp_path)
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
            [failure] = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
            message = failure.event_log_entry.dagster_event.message
            assert f"the process that executed run {run_id} (pid {proc.pid}) is gone: it was killed or crashed" in message
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
