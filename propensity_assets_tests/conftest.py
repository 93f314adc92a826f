"""Shared fixtures: one real local Spark session per test session (and one Spark Connect
session on a real loopback server, for the tests marked `classic_and_connect`), temp lakes
and instances."""

import os
import sys
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import mlflow
import pytest

REPO = Path(__file__).resolve().parent.parent


SPARK_MODES = ("classic", "connect")


def spark_test_conf() -> dict[str, str]:
    """The tests' Spark conf, for the classic session and for the Connect server alike."""
    from propensity_assets.shared import settings

    conf = settings.spark_conf()
    conf.update({"spark.master": "local[2]", "spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false"})
    return conf


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "classic_and_connect: run each test that takes `spark` or `spark_resource` on a classic "
        "session and on Spark Connect",
    )
    config.addinivalue_line("markers", "classic_only: a test of a `classic_and_connect` module that runs classic only")


def pytest_generate_tests(metafunc):
    marked = metafunc.definition.get_closest_marker("classic_and_connect")
    if "spark_mode" in metafunc.fixturenames and marked and not metafunc.definition.get_closest_marker("classic_only"):
        # Module scope: a module's classic tests run together, then its Connect tests.
        metafunc.parametrize("spark_mode", SPARK_MODES, indirect=True, scope="module")


@pytest.fixture(scope="module")
def spark_mode(request):
    """"classic", or "connect" for a test marked `classic_and_connect`. pyspark builds
    Connect columns (functions, Observation) while SPARK_CONNECT_MODE_ENABLED is set, as
    it is in a run on SPARK_REMOTE: set for Connect tests only, so both kinds share a process."""
    mode = getattr(request, "param", "classic")
    with pytest.MonkeyPatch.context() as patch:
        if mode == "connect":
            patch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")
        else:
            patch.delenv("SPARK_CONNECT_MODE_ENABLED", raising=False)
        yield mode


@pytest.fixture(scope="module")
def spark(spark_mode, request):
    """The session of the test's mode: the classic one, or one on the Connect server."""
    return request.getfixturevalue(f"{spark_mode}_spark")


@pytest.fixture
def spark_resource(spark_mode, request):
    """The Dagster `spark` resource of the test's mode: classic (the running session), or
    SPARK_REMOTE at the loopback Connect server."""
    from propensity_assets.shared.resources import SparkResource

    if spark_mode == "classic":
        request.getfixturevalue("classic_spark")
        return SparkResource(spark_config={})
    return SparkResource(spark_config=spark_test_conf(), remote=request.getfixturevalue("spark_connect_server").url)


@pytest.fixture(scope="session")
def classic_spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    for key, value in spark_test_conf().items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_connect_server(tmp_path_factory):
    """A real Spark Connect server on a free loopback port (spark_connect.py) with the tests'
    conf, for the session; stopped afterwards. No server means a failure, never a skip."""
    from propensity_assets.deploy import spark_connect

    logs = tmp_path_factory.mktemp("spark_connect")
    conf = {**spark_test_conf(), "spark.driver.memory": "1g",
            "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}
    try:
        server = spark_connect.start(logs, port=spark_connect.free_port(), conf=conf)
    except spark_connect.SparkClusterError as error:
        pytest.fail(f"the Spark Connect tests need a Spark Connect server: {error}", pytrace=False)
    with server:
        yield server


@pytest.fixture(scope="session")
def connect_spark(spark_connect_server):
    from propensity_assets.shared import settings
    from propensity_assets.shared.resources import connect_session

    saved = os.environ.get("SPARK_CONNECT_MODE_ENABLED")
    session = connect_session(spark_connect_server.url, settings.remote_spark_conf(spark_test_conf()))
    if saved is None:  # connect_session marks the process; `spark_mode` marks each Connect test
        os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
    yield session
    session.stop()


@pytest.fixture
def lake_root(tmp_path) -> str:
    root = tmp_path / "lake"
    root.mkdir()
    return str(root)


def tx_frame(rows: list[tuple]) -> pd.DataFrame:
    """Transactions from (household_id, basket_id, product_id, quantity, sales_value, 'YYYY-MM-DD HH:MM:SS')."""
    frame = pd.DataFrame(
        rows,
        columns=["household_id", "basket_id", "product_id", "quantity", "sales_value", "transaction_timestamp"],
    )
    frame["transaction_timestamp"] = pd.to_datetime(frame["transaction_timestamp"])
    frame["quantity"] = frame["quantity"].astype(float)
    frame["sales_value"] = frame["sales_value"].astype(float)
    return frame


@pytest.fixture(scope="module")
def module_instance():
    """One Dagster test instance per module: a SQLite instance costs seconds to set up."""
    import dagster as dg

    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server on 127.0.0.1 for the session (propensity_assets_tests/
    postgres_server.py), stopped and deleted afterwards. No server means a failure, never a skip."""
    from propensity_assets_tests.postgres_server import PostgresUnavailable, postgres_server

    with ExitStack() as stack:
        try:
            server = stack.enter_context(postgres_server(durable=False))
        except PostgresUnavailable as error:
            pytest.fail(f"the Postgres instance tests need a PostgreSQL server: {error}", pytrace=False)
        yield server


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory):
    """A real Spark standalone master and worker on loopback (free ports, temp logs), for
    CLI runs with SPARK_MASTER=<spark_cluster.master_url>; stopped after the session."""
    from propensity_assets.deploy import spark_cluster as cluster

    logs = tmp_path_factory.mktemp("spark_cluster")
    # Two cores: two runs side by side each get one (with spark.cores.max=1).
    with cluster.start(
        logs, port=cluster.free_port(), webui_port=cluster.free_port(), worker_cores=2, worker_memory="2g"
    ) as running:
        yield running


@pytest.fixture(scope="session")
def classic_cli_run(tmp_path_factory):
    """The CLI pipeline on a tiny project, ingested once and run on a classic local[1]
    session (cli_pipeline.py): the reference other Spark modes must equal row for row."""
    from propensity_assets_tests.cli_pipeline import reference_run

    return reference_run(tmp_path_factory.mktemp("cli_pipeline"))


# -- MLflow's process globals ---------------------------------------------------------------
# `MlflowResource.client()` calls `mlflow.set_tracking_uri`/`set_registry_uri`, which set
# process globals and, since MLflow 3, MLFLOW_TRACKING_URI/MLFLOW_REGISTRY_URI in the
# environment "so that subprocesses inherit them": a later test's CLI subprocess would
# otherwise talk to a deleted temp store, or to the dead port of an unreachable test server.
# Every test module restores them.

MLFLOW_URI_NAMES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@pytest.fixture(scope="module", autouse=True)
def restore_mlflow_globals():
    saved = {name: os.environ.get(name) for name in MLFLOW_URI_NAMES}
    yield
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
