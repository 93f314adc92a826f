"""The pipeline on a real Spark standalone cluster (a master and a worker on loopback, the
`spark_cluster` fixture), driven as a user drives it:

    export SPARK_MASTER=spark://127.0.0.1:<port>
    dagster asset materialize -m propensity_assets.definitions --select household_features --partition-range ...
    dagster asset materialize ... --select group_features,propensity_labels,ltv_labels --partition-range ...
    dagster asset materialize ... --select propensity_scores --partition-range ...

The same commands ran with SPARK_MASTER=local[1] on a copy of the ingested lake (the
session's reference run, `classic_cli_run`, cli_pipeline.py), and every table written must
be equal row for row. The executors are separate JVMs in the worker's work dir. Every run
leaves PYSPARK_PYTHON unset, so the default (`settings.spark_conf`'s spark.pyspark.python,
the driver's interpreter) must start the executors' Python workers: they write each run's
partitions into the lake's staging (`LakeResource.write_spark`), and scoring runs the
champion in them; the model reaches them with the plan, not through a driver-local file.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from propensity_assets.deploy import spark_cluster
from propensity_assets_tests.cli_pipeline import COMMON_CONF, TABLES, assert_lakes_equal

# One core per application, so two runs side by side share the worker's two cores; the
# driver binds loopback, where the executors reach it.
CLUSTER_CONF = [
    "spark.cores.max=1",
    "spark.executor.cores=1",
    "spark.executor.memory=1g",
    "spark.driver.host=127.0.0.1",
    "spark.driver.bindAddress=127.0.0.1",
]


@pytest.fixture(scope="module")
def runs(spark_cluster, classic_cli_run):
    """The reference's feature backfill, labels and scoring again, on the cluster."""
    pipeline = classic_cli_run
    apps = {"start": settled(spark_cluster)}
    pipeline.add_mode("cluster", SPARK_MASTER=spark_cluster.master_url,
                      PROPENSITY_SPARK_CONF=",".join(COMMON_CONF + CLUSTER_CONF), PYSPARK_PYTHON=None)
    pipeline.features("cluster")
    apps["cluster"] = settled(spark_cluster)
    pipeline.scores("cluster")
    apps["scores"] = settled(spark_cluster)
    return SimpleNamespace(pipeline=pipeline, apps=apps, cluster=spark_cluster)


def settled(cluster: spark_cluster.SparkCluster, timeout_s: float = 60) -> dict:
    """The master's state once no application is active: the master finishes an
    application a moment after its driver exits."""
    deadline = time.monotonic() + timeout_s
    while (state := cluster.state())["activeapps"] and time.monotonic() < deadline:
        time.sleep(0.5)
    return state


def completed(state: dict) -> list[dict]:
    return state.get("completedapps", [])


def test_spark_runs_ran_on_the_cluster_and_only_there(runs):
    start, on_cluster = completed(runs.apps["start"]), completed(runs.apps["cluster"])
    # The reference's local-mode runs (after the cluster started: `runs` asks for it first) added none.
    assert start == []
    new = [app for app in on_cluster if app["id"] not in {a["id"] for a in start}]
    # household_features, and group_features + both labels in one run: two applications.
    assert len(new) == 2, new
    assert {app["name"] for app in new} == {"propensity_assets"}
    assert {app["state"] for app in new} == {"FINISHED"}
    # Each application's tasks ran in an executor JVM the worker started in its work dir,
    # and its partitions were written by that executor's Python workers.
    for app in new:
        stderr = list((runs.cluster.log_dir / "work" / app["id"]).glob("*/stderr"))
        assert stderr, f"no executor of {app['id']} under {runs.cluster.log_dir / 'work'}"
        logs = "\n".join(path.read_text(errors="replace") for path in stderr)
        assert "Finished task" in logs, app["id"]
        assert "Starting Python task execution" in logs, app["id"]


def test_scoring_ran_the_champion_in_python_workers_on_the_cluster(runs):
    """The scoring run is one more application; its executors started Python workers (at the
    driver's interpreter, PYSPARK_PYTHON being unset) and ran the champion there."""
    before, after = completed(runs.apps["cluster"]), completed(runs.apps["scores"])
    new = [app for app in after if app["id"] not in {a["id"] for a in before}]
    assert len(new) == 1, new
    assert new[0]["state"] == "FINISHED"
    stderr = list((runs.cluster.log_dir / "work" / new[0]["id"]).glob("*/stderr"))
    assert stderr, f"no executor of {new[0]['id']}"
    logs = "\n".join(path.read_text(errors="replace") for path in stderr)
    assert "Finished task" in logs
    assert "Starting Python task execution" in logs  # mapInPandas, in the executor's Python workers
    assert runs.apps["scores"].get("activeapps") == []


@pytest.mark.parametrize("table", TABLES)
def test_cluster_lake_equals_local_lake_row_for_row(runs, table):
    assert_lakes_equal(runs.pipeline, "cluster", table)


# -- the cluster itself ------------------------------------------------------------------


def test_missing_java_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(spark_cluster.SparkClusterError) as caught:
        spark_cluster.start(tmp_path / "logs")
    assert str(caught.value) == (
        "Java 17 is required to run a Spark master and worker: JAVA_HOME is unset and `java` is not on PATH. "
        "Install a JDK 17 (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME."
    )
    assert not (tmp_path / "logs").exists()


def test_a_port_in_use_is_refused_not_moved(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(spark_cluster.SparkClusterError) as caught:
            spark_cluster.start(tmp_path, port=port, webui_port=spark_cluster.free_port())
    assert str(caught.value) == (
        f"Spark master port 127.0.0.1:{port} is already in use (another cluster running?); "
        "stop it or choose other ports"
    )
    assert not (tmp_path / "master.log").exists()


def test_a_worker_that_cannot_start_fails_with_its_log_and_stops_the_master(tmp_path):
    port, webui = spark_cluster.free_port(), spark_cluster.free_port()
    with pytest.raises(spark_cluster.SparkClusterError) as caught:
        spark_cluster.start(tmp_path, port=port, webui_port=webui, worker_memory="lots")
    message = str(caught.value)
    assert message.startswith(f"Spark worker exited with code 1 before it was up; last lines of {tmp_path}/worker.log:\n")
    assert "Usage: Worker [options] <master>" in message  # the worker refused `--memory lots`
    with pytest.raises(OSError):
        spark_cluster._master_json(f"http://127.0.0.1:{webui}", timeout_s=2)  # the master is gone too


def test_the_make_target_prints_the_master_to_export_and_stops_on_sigterm(tmp_path):
    port, webui = spark_cluster.free_port(), spark_cluster.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "propensity_assets.deploy.spark_cluster", "--log-dir", str(tmp_path),
         "--port", str(port), "--webui-port", str(webui), "--cores", "1", "--memory", "1g"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first, second = proc.stdout.readline(), proc.stdout.readline()
        assert first == (f"Spark master spark://127.0.0.1:{port} (web UI http://127.0.0.1:{webui}), one worker: "
                         f"1 cores, 1g; logs in {tmp_path}\n")
        assert second == f"export SPARK_MASTER=spark://127.0.0.1:{port}\n"
        state = spark_cluster._master_json(f"http://127.0.0.1:{webui}")
        assert [(w["state"], w["cores"], w["memory"], w["host"]) for w in state["workers"]] == [("ALIVE", 1, 1024, "127.0.0.1")]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    with pytest.raises(OSError):
        spark_cluster._master_json(f"http://127.0.0.1:{webui}", timeout_s=2)
