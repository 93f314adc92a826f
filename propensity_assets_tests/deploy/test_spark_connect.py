"""The pipeline on Spark Connect (a real server on loopback, the `spark_connect_server`
fixture), driven as a user drives it:

    export SPARK_REMOTE=sc://127.0.0.1:<port>
    dagster asset materialize -m propensity_assets.definitions --select household_features --partition-range ...
    dagster asset materialize ... --select group_features,propensity_labels,ltv_labels --partition-range ...
    dagster asset materialize ... --select propensity_scores --partition-range ...

The same commands ran on a classic local[1] session (the session's reference run,
`classic_cli_run`, cli_pipeline.py), and every table written must be equal row for row.
Then the resource itself: what conf a remote session gets, and the errors of a bad
SPARK_REMOTE; and the launcher behind `make spark-connect` and `make dev`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from types import SimpleNamespace

import dagster as dg
import pytest

from propensity_assets.shared import settings
from propensity_assets.deploy import spark_connect
from propensity_assets.shared.resources import SparkRemoteError, SparkResource, connect_session
from propensity_assets.shared.settings import SettingsError
from propensity_assets_tests.cli_pipeline import COMMON_CONF, TABLES, assert_lakes_equal

SESSION = re.compile(r"sessionId: ([0-9a-f-]{36})")


def server_sessions(server: spark_connect.SparkConnectServer) -> set[str]:
    return set(SESSION.findall(server.log.read_text(errors="replace")))


@pytest.fixture(scope="module")
def runs(spark_connect_server, classic_cli_run):
    """The reference's feature backfill, labels and scoring again, on the Connect server.
    PROPENSITY_SPARK_CONF carries the reference's conf: its spark.sql.* keys reach the
    session, the rest (parallelism, driver options) is the server's and is not sent."""
    pipeline = classic_cli_run
    pipeline.add_mode("connect", SPARK_REMOTE=spark_connect_server.url, PROPENSITY_SPARK_CONF=",".join(COMMON_CONF))
    before = server_sessions(spark_connect_server)
    pipeline.replay("connect")
    return SimpleNamespace(pipeline=pipeline, sessions=server_sessions(spark_connect_server) - before)


def test_spark_runs_used_the_connect_server(runs):
    # household_features, group_features + both labels in one run, and scoring (the champion
    # in the server's Python workers): one session each.
    assert len(runs.sessions) == 3, runs.sessions


@pytest.mark.parametrize("table", TABLES)
def test_connect_lake_equals_classic_lake_row_for_row(runs, table):
    assert_lakes_equal(runs.pipeline, "connect", table)


# -- the resource --------------------------------------------------------------------------


def test_a_remote_session_gets_the_runtime_sql_conf_only(spark_connect_server, monkeypatch):
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")  # connect_session marks the process; undone after
    conf = {"spark.master": "local[1]", "spark.driver.memory": "7g", "spark.app.name": "elsewhere",
            "spark.sql.shuffle.partitions": "3", "spark.sql.session.timeZone": "UTC"}
    assert settings.remote_spark_conf(conf) == {"spark.sql.shuffle.partitions": "3", "spark.sql.session.timeZone": "UTC"}
    with dg.build_resources({"spark": SparkResource(spark_config=conf, remote=spark_connect_server.url)}) as res:
        session = res.spark.spark_session
        assert type(session).__module__ == "pyspark.sql.connect.session"
        assert session.conf.get("spark.sql.shuffle.partitions") == "3"
        # The server's own master and memory, not the classic conf's.
        assert session.conf.get("spark.master") == "local[2]"
        assert session.conf.get("spark.driver.memory") == "1g"
        assert session.range(5).selectExpr("sum(id)").first()[0] == 10
    assert session.is_stopped  # released on the server when the run ends


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:15002", "scheme http:// is not sc://"),
        ("127.0.0.1:15002", "scheme (none) is not sc://"),
        ("sc://:15002", "no host"),
        ("sc://127.0.0.1:port", "port 'port' is not a number"),
        ("sc://127.0.0.1:15002/db", "'/db' after the host is not a list of ;key=value parameters"),
    ],
)
def test_a_malformed_spark_remote_is_named(url, problem, monkeypatch):
    monkeypatch.setenv("SPARK_REMOTE", url)
    # The definitions load; the run fails as its resource starts, before any step computes.
    with pytest.raises(dg.DagsterResourceFunctionError) as caught:
        dg.materialize([_spark_asset], resources={"spark": SparkResource(spark_config={}, remote=settings.spark_remote())})
    assert isinstance(caught.value.user_exception, SettingsError)
    assert str(caught.value.user_exception) == (
        f"SPARK_REMOTE={url!r}: {problem}. Expected a Spark Connect URL sc://host[:port][/;key=value...], "
        "e.g. sc://127.0.0.1:15002 (what `make spark-connect` prints)"
    )


def test_an_unreachable_spark_remote_is_named_at_once():
    port = spark_connect.free_port()  # nothing listens there
    url = f"sc://127.0.0.1:{port}/;user_id=me"
    with pytest.raises(SparkRemoteError) as caught:
        connect_session(url, {})
    assert re.fullmatch(
        rf"SPARK_REMOTE='sc://127\.0\.0\.1:{port}/;user_id=me': no Spark Connect server answers at 127\.0\.0\.1:{port} "
        r"\(\[Errno 111\] Connection refused\)\. Start one \(`make spark-connect` prints the URL to export\), "
        r"or unset SPARK_REMOTE for a classic session\.",
        str(caught.value),
    ), str(caught.value)


def test_the_definitions_take_spark_remote_from_the_environment(monkeypatch):
    from propensity_assets.shared.resources import shared_resources

    monkeypatch.setenv("SPARK_REMOTE", "sc://127.0.0.1:15002")
    assert shared_resources()["spark"].remote == "sc://127.0.0.1:15002"
    monkeypatch.delenv("SPARK_REMOTE")
    assert shared_resources()["spark"].remote == ""  # classic


def test_an_empty_remote_is_classic_even_with_spark_remote_set(classic_spark, monkeypatch):
    """The launchpad clears `remote` to run one run classic under `make dev`."""
    monkeypatch.setenv("SPARK_REMOTE", "sc://127.0.0.1:1")
    with dg.build_resources({"spark": SparkResource(spark_config={}, remote="")}) as res:
        assert res.spark.spark_session is classic_spark
    assert "SPARK_REMOTE" not in os.environ  # the run's process forgot it; monkeypatch restores it


@dg.asset
def _spark_asset(spark: SparkResource) -> None:
    spark.spark_session.range(1).count()


# -- the launcher ------------------------------------------------------------------------


def test_the_launcher_runs_a_command_on_its_server_and_stops_with_it(tmp_path):
    """`make dev`'s wrapper: the command sees SPARK_REMOTE and reaches the server the plain
    pyspark way (SparkSession.builder.getOrCreate() with SPARK_REMOTE set); when it exits,
    the launcher stops the server and exits with the command's code. With PYSPARK_PYTHON
    unset, as in a plain shell, the server's Python workers run the launcher's interpreter
    (the PATH's python3 lacks the project and pyarrow). Port 0 asks for a free port, as
    `make demo` does."""
    child = (
        "import os; from pyspark.sql import SparkSession; "
        "s = SparkSession.builder.getOrCreate(); "
        "print(os.environ['SPARK_REMOTE'], type(s).__module__, s.range(4).count(), s.conf.get('spark.master')); "
        "exe = lambda batches: (__import__('pyarrow').RecordBatch.from_pydict({'exe': [__import__('sys').executable]}) "
        "for _ in batches); "
        "print(s.range(1).mapInArrow(exe, 'exe string').first()[0]); "
        "raise SystemExit(3)"
    )
    env = {**os.environ, "SPARK_MASTER": "local[1]", "SPARK_DRIVER_MEMORY": "1g",
           "PROPENSITY_SPARK_CONF": "spark.ui.enabled=false"}
    env.pop("SPARK_REMOTE", None)
    env.pop("PYSPARK_PYTHON", None)
    env.pop("SPARK_CONNECT_MODE_ENABLED", None)
    proc = subprocess.run(
        [sys.executable, "-m", "propensity_assets.deploy.spark_connect", "--log-dir", str(tmp_path), "--port", "0",
         "--", sys.executable, "-c", child],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 3, proc.stderr[-4000:]
    port = int(re.match(r"Spark Connect server sc://127\.0\.0\.1:(\d+) ", proc.stdout).group(1))
    assert port != spark_connect.DEFAULT_PORT
    assert proc.stdout.splitlines() == [
        f"Spark Connect server sc://127.0.0.1:{port} (master local[1]); log {tmp_path}/connect.log",
        f"export SPARK_REMOTE=sc://127.0.0.1:{port}",
        f"sc://127.0.0.1:{port} pyspark.sql.connect.session 4 local[1]",
        sys.executable,
    ]
    assert not spark_connect._accepts(port)  # stopped


def test_a_taken_port_is_refused_not_moved(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(spark_connect.SparkConnectError) as caught:
            spark_connect.start(tmp_path / "logs", port=port)
    assert str(caught.value) == (
        f"Spark Connect port 127.0.0.1:{port} is already in use (another server running?); "
        "stop it or choose another port"
    )
    assert not (tmp_path / "logs").exists()


def test_a_server_that_cannot_start_fails_with_its_log(tmp_path):
    with pytest.raises(spark_connect.SparkConnectError) as caught:
        spark_connect.start(tmp_path, port=spark_connect.free_port(),
                            conf={"spark.master": "nonsense://", "spark.ui.enabled": "false"})
    message = str(caught.value)
    assert message.startswith(f"Spark Connect server exited with code 1 before it was up; last lines of {tmp_path}/connect.log:\n")
    assert "SparkException: Master must either be yarn or start with spark, k8s, or local" in message
