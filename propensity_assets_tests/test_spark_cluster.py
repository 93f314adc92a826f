"""The pipeline on a real Spark standalone cluster (a master and a worker on loopback, the
`spark_cluster` fixture), driven as a user drives it:

    export SPARK_MASTER=spark://127.0.0.1:<port>
    dagster asset materialize -m propensity_assets.definitions --select household_features --partition-range ...
    dagster asset materialize ... --select group_features,propensity_labels,ltv_labels --partition-range ...
    dagster asset materialize ... --select propensity_scores --partition-range ...

The same commands run once more with SPARK_MASTER=local[1] on a copy of the ingested lake,
and every table written must be equal row for row. The executors are separate JVMs in
the worker's work dir. For the feature and label runs PYSPARK_PYTHON points nowhere: they
run in the JVM alone, and a step that needed Python on an executor fails. Scoring runs the
champion in Python workers on the executors: its run leaves PYSPARK_PYTHON unset, so the
default (`settings.spark_conf`'s spark.pyspark.python, the driver's interpreter) must
start them; the model reaches them in a broadcast, not through a driver-local file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from propensity_assets import registry, spark_cluster
from propensity_assets.lake import Lake
from propensity_assets.lifecycle.training import train_and_register
from propensity_assets.propensity.stage import PROPENSITY
from propensity_assets.propensity.stage import PropensityTraining as TrainingConfig
from propensity_assets.resources import MlflowResource
from propensity_assets_tests.cli_helpers import instance_at

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODULE = ["-m", "propensity_assets.definitions"]

PRODUCTS = """\
product_id,product_category,department
1,SOFT DRINKS,GROCERY
2,BAG SNACKS,GROCERY
3,CHEESE,GROCERY
"""
GROUPS_YAML = """\
product_groups:
  soft_drinks:
    categories: [SOFT DRINKS]
  snacks:
    categories: [BAG SNACKS]
"""
# Training at the Friday CUTOFF with the 30-day propensity window: vetting snapshot
# 2017-04-26, training snapshots 2017-04-12 and 2017-04-19; scores after all of them.
CUTOFF = date(2017, 5, 26)
FEATURE_RANGE = ("2017-04-12", "2017-04-28")
SCORE_RANGE = ("2017-04-27", "2017-04-28")
TINY = TrainingConfig(
    history_weeks=2, num_leaves=[4], learning_rate=[0.2], min_child_samples=[5], feature_fraction=[1.0],
    lambda_l2=[0.0], max_trials=1, max_rounds=20, early_stopping_rounds=5,
)
TABLES = ["household_features", "group_features", "propensity_labels", "ltv_labels", "propensity_scores"]

# Both modes plan alike (the same parallelism: a standalone cluster's default is at least
# 2), so equal inputs give equal rows, floating-point sums included.
COMMON_CONF = [
    "spark.sql.shuffle.partitions=2",
    "spark.default.parallelism=2",
    "spark.ui.enabled=false",
    "spark.sql.adaptive.enabled=false",
    "spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
]
# One core per application, so two runs side by side share the worker's two cores; the
# driver binds loopback, where the executors reach it.
CLUSTER_CONF = [
    "spark.cores.max=1",
    "spark.executor.cores=1",
    "spark.executor.memory=1g",
    "spark.driver.host=127.0.0.1",
    "spark.driver.bindAddress=127.0.0.1",
]


def transactions_csv() -> str:
    """80 households over 2017-01-01 .. 2017-06-15, joining over time; each leans to one
    group, so the propensity labels are learnable."""
    rng = np.random.default_rng(2017)
    lines = ["household_id,basket_id,product_id,quantity,sales_value,transaction_timestamp"]
    basket = 1000
    for day in pd.date_range("2017-01-01", "2017-06-15"):
        for hh in range(1, 81):
            if hh > 20 + day.dayofyear // 2 or rng.random() > 0.15:
                continue
            basket += 1
            weights = [0.6, 0.2, 0.2] if hh % 2 else [0.2, 0.6, 0.2]
            for product in rng.choice([1, 2, 3], size=int(rng.integers(1, 3)), replace=False, p=weights):
                quantity = int(rng.integers(1, 4))
                value = quantity * round(float(rng.uniform(0.5, 6.0)), 2)
                lines.append(f"{hh},{basket},{product},{quantity},{value:.2f},{day.date()} {8 + hh % 12:02d}:{basket % 60:02d}:00")
    return "\n".join(lines) + "\n"


def pyspark_python_nowhere(root: Path) -> str:
    return str(root / "no-python-on-executors")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, spark_cluster):
    """Ingest once; run the same backfill and scoring on the cluster and in local mode."""
    root = tmp_path_factory.mktemp("on_cluster")
    source, home = root / "source", root / "dagster_home"
    lakes = {"cluster": root / "lake_cluster", "local": root / "lake_local"}
    for path in (source, home):
        path.mkdir()
    (source / "products.csv").write_text(PRODUCTS)
    (source / "transactions.csv").write_text(transactions_csv())
    (root / "product_groups.yaml").write_text(GROUPS_YAML)
    (home / "dagster.yaml").symlink_to(REPO / "dagster.yaml")
    tracking_uri = f"sqlite:///{root}/mlflow/mlflow.db"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PROPENSITY_DATA_DIR": str(root),
        "PROPENSITY_SOURCE_DIR": str(source),
        "PROPENSITY_PRODUCT_GROUPS": str(root / "product_groups.yaml"),
        "PROPENSITY_LTV_HORIZON_DAYS": "30",
        "MLFLOW_TRACKING_URI": tracking_uri,
        "SPARK_DRIVER_MEMORY": "1g",
        "PYSPARK_PYTHON": sys.executable,
    }
    for name in ("MLFLOW_REGISTRY_URI", "PROPENSITY_TODAY", "SPARK_MASTER", "PROPENSITY_SPARK_CONF"):
        env.pop(name, None)
    modes = {
        "cluster": {
            "PROPENSITY_LAKE_URI": str(lakes["cluster"]),
            "SPARK_MASTER": spark_cluster.master_url,
            "PROPENSITY_SPARK_CONF": ",".join(COMMON_CONF + CLUSTER_CONF),
            "PYSPARK_PYTHON": pyspark_python_nowhere(root),
        },
        # Scoring on the cluster: Python workers at the default interpreter.
        "cluster-python": {
            "PROPENSITY_LAKE_URI": str(lakes["cluster"]),
            "SPARK_MASTER": spark_cluster.master_url,
            "PROPENSITY_SPARK_CONF": ",".join(COMMON_CONF + CLUSTER_CONF),
            "PYSPARK_PYTHON": None,
        },
        "local": {
            "PROPENSITY_LAKE_URI": str(lakes["local"]),
            "SPARK_MASTER": "local[1]",
            "PROPENSITY_SPARK_CONF": ",".join(COMMON_CONF),
        },
    }

    def environment(mode: str) -> dict:
        merged = {**env, **modes[mode]}
        return {k: v for k, v in merged.items() if v is not None}

    def run_all(commands: list[tuple[str, tuple[str, ...]]]) -> None:
        """(mode, argv) side by side; fail with the output of any that fails."""
        logs = [(tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")) for _ in commands]
        procs = [
            subprocess.Popen([str(BIN / args[0]), *args[1:]], env=environment(mode), stdout=out, stderr=err,
                             text=True, cwd=root, start_new_session=True)
            for (mode, args), (out, err) in zip(commands, logs)
        ]
        try:
            for (mode, args), proc, (out, err) in zip(commands, procs, logs):
                proc.wait(timeout=600)
                out.seek(0), err.seek(0)
                if proc.returncode != 0:
                    pytest.fail(f"[{mode}] {' '.join(args)} exited {proc.returncode}\n--- stdout\n{out.read()[-4000:]}"
                                f"\n--- stderr\n{err.read()[-8000:]}")
        finally:  # a failed or hung run must not leave its siblings (and their JVMs) behind
            for proc in procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()

    def materialize(mode_selects: list[tuple[str, str, str]]) -> None:
        """`dagster asset materialize --select S --partition-range R` per (mode, S, R)."""
        before = run_ids(home)
        run_all([(mode, ("dagster", "asset", "materialize", *MODULE, "--select", select, "--partition-range", rng))
                 for mode, select, rng in mode_selects])
        with instance_at(home) as instance:
            new = [r for r in instance.get_runs() if r.run_id not in before]
        assert len(new) == len(mode_selects)
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in new)

    def groups_range(first: str, last: str) -> str:
        return f"{first}|soft_drinks...{last}|snacks"  # catalogue order

    run_all([("local", ("propensity-assets", "sync-groups"))])
    run_all([("local", ("dagster", "job", "execute", *MODULE, "-j", "ingest_job"))])
    shutil.copytree(lakes["local"], lakes["cluster"])

    apps = {"start": settled(spark_cluster)}
    for mode in ("cluster", "local"):
        materialize([
            (mode, "household_features", "...".join(FEATURE_RANGE)),
            (mode, "group_features,propensity_labels,ltv_labels", groups_range(*FEATURE_RANGE)),
        ])
        apps[mode] = settled(spark_cluster)

    # A champion per group, trained on the local lake's snapshots, as test_cli_scores does.
    mlflow_res = MlflowResource(tracking_uri=tracking_uri, artifact_root=(root / "mlflow" / "artifacts").as_uri())
    saved = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    try:
        for group in ("soft_drinks", "snacks"):
            out = train_and_register(PROPENSITY, Lake(str(lakes["local"])), mlflow_res, group, CUTOFF, TINY, {})
            registry.promote(mlflow_res.client(), out.model_name, out.version, "test champion", by="test")
    finally:
        import mlflow

        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)

    materialize([(mode, "propensity_scores", groups_range(*SCORE_RANGE)) for mode in ("cluster-python", "local")])
    apps["scores"] = settled(spark_cluster)
    return SimpleNamespace(root=root, lakes={m: Lake(str(p)) for m, p in lakes.items()}, apps=apps,
                           cluster=spark_cluster)


def settled(cluster: spark_cluster.SparkCluster, timeout_s: float = 60) -> dict:
    """The master's state once no application is active: the master finishes an
    application a moment after its driver exits."""
    deadline = time.monotonic() + timeout_s
    while (state := cluster.state())["activeapps"] and time.monotonic() < deadline:
        time.sleep(0.5)
    return state


def run_ids(home: Path) -> set[str]:
    with instance_at(home) as instance:
        return {r.run_id for r in instance.get_runs()}


def completed(state: dict) -> list[dict]:
    return state.get("completedapps", [])


def test_spark_runs_ran_on_the_cluster_and_only_there(runs):
    start, on_cluster = completed(runs.apps["start"]), completed(runs.apps["cluster"])
    new = [app for app in on_cluster if app["id"] not in {a["id"] for a in start}]
    # household_features, and group_features + both labels in one run: two applications.
    assert len(new) == 2, new
    assert {app["name"] for app in new} == {"propensity_assets"}
    assert {app["state"] for app in new} == {"FINISHED"}
    # Each application's tasks ran in an executor JVM the worker started in its work dir.
    for app in new:
        stderr = list((runs.cluster.log_dir / "work" / app["id"]).glob("*/stderr"))
        assert stderr, f"no executor of {app['id']} under {runs.cluster.log_dir / 'work'}"
        assert any("Finished task" in path.read_text(errors="replace") for path in stderr), app["id"]
        # ... in the JVM alone: PYSPARK_PYTHON pointed nowhere, and no Python worker started.
        assert not any("Starting Python task execution" in path.read_text(errors="replace") for path in stderr)
    # Local mode added no application.
    assert [a["id"] for a in completed(runs.apps["local"])] == [a["id"] for a in on_cluster]
    assert runs.apps["local"].get("activeapps") == []


def test_scoring_ran_the_champion_in_python_workers_on_the_cluster(runs):
    """The scoring run is one more application; its executors started Python workers (at the
    driver's interpreter, PYSPARK_PYTHON being unset) and ran the champion there."""
    before, after = completed(runs.apps["local"]), completed(runs.apps["scores"])
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
    frames = {}
    for mode, lake in runs.lakes.items():
        frame = lake.read_pandas(table)
        keys = [c for c in ("as_of", "product_group", "household_id") if c in frame.columns]
        frames[mode] = frame.sort_values(keys).reset_index(drop=True)[sorted(frame.columns)]
    cluster, local = frames["cluster"], frames["local"]
    assert len(local) > 0
    first, last = SCORE_RANGE if table == "propensity_scores" else FEATURE_RANGE
    assert (local["as_of"].min(), local["as_of"].max()) == (first, last)
    if "product_group" in local.columns:
        assert set(local["product_group"]) == {"soft_drinks", "snacks"}
    pd.testing.assert_frame_equal(cluster, local, check_exact=True)
    for mode, lake in runs.lakes.items():
        assert lake.partitions(table, "as_of") == sorted(set(local["as_of"])), mode


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
        [sys.executable, "-m", "propensity_assets.spark_cluster", "--log-dir", str(tmp_path),
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
