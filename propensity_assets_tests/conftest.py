"""Shared fixtures: one real local Spark session per test session, temp lakes and instances."""

import os
import sys
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    from propensity_assets import settings

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    conf = settings.spark_conf()
    conf.update({"spark.master": "local[2]", "spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false"})
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
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
    from propensity_assets import spark_cluster as cluster

    logs = tmp_path_factory.mktemp("spark_cluster")
    # Two cores: two runs side by side each get one (with spark.cores.max=1).
    with cluster.start(
        logs, port=cluster.free_port(), webui_port=cluster.free_port(), worker_cores=2, worker_memory="2g"
    ) as running:
        yield running
