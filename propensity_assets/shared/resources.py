"""The shared resources: where the lake is, the MLflow registry, and the Spark session.

Defaults come from the environment (see `settings`), so the same definitions run
on a laptop and on a cluster; the launchpad can override any of them per run.
"""

from __future__ import annotations

import os
import socket
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import dagster as dg
from dagster_pyspark import PySparkResource
from pydantic import Field
from pyspark.sql import DataFrame

from propensity_assets.shared import registry, settings
from propensity_assets.shared.lake import Lake, PartitionSpec

if TYPE_CHECKING:  # MLflow loads only when a run talks to the registry
    from mlflow import MlflowClient


class LakeResource(dg.ConfigurableResource):
    """The lake root (CONTRACTS §5): a local or mounted POSIX path (or file: URI) that the
    driver and every Spark executor see at the same path. Object stores and HDFS are
    refused (`settings.lake_root`), before a run computes or writes anything."""

    uri: str = settings.lake_uri()

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # A launchpad override is checked as PROPENSITY_LAKE_URI is, when the run starts.
        settings.lake_root(self.uri, "the lake resource's uri")

    @property
    def lake(self) -> Lake:
        return Lake(self.uri)

    def input_uri(self, table: str) -> str:
        """The URI of a table a Spark step reads: a missing table fails the step at once
        (no retry), naming it, rather than with Spark's PATH_NOT_FOUND mid-plan."""
        lake = self.lake
        if not lake.exists(table):
            raise dg.Failure(lake.missing(table), allow_retries=False)
        return lake.uri(table)

    def write_spark(self, table: str, df: DataFrame, specs: list[PartitionSpec]) -> int:
        """Write a Spark frame aside, partitioned by the keys of `specs`, then swap it in.

        One Spark job writes every partition of the run into staging: each task sorts
        its share of the partitions and writes them with Arrow (`lake.stage_sorted_batches`;
        the executors see the lake at the driver's path, see the class docstring).
        `Lake.commit` then swaps each partition in under the table's lock and a journal,
        so a killed run leaves every partition old or new and the next write finishes it.
        """
        lake = self.lake
        if not specs:  # nothing to swap in
            return 0
        keys = list(specs[0])
        staging = lake.staging_uri()

        def stage(batches):
            from pyspark import TaskContext

            from propensity_assets.shared.lake_staging import stage_sorted_batches

            return stage_sorted_batches(batches, staging, keys, TaskContext.get().partitionId())

        try:
            staged = df.repartition(*keys).sortWithinPartitions(*keys).mapInArrow(stage, "partition string, rows long")
            staged.write.format("noop").mode("overwrite").save()
            return lake.commit(table, staging, specs)
        except BaseException:
            lake.discard(staging)
            raise


class SparkRemoteError(RuntimeError):
    """No Spark Connect server answers at SPARK_REMOTE; the message names the URL."""


CONNECT_DEFAULT_PORT = 15002  # Spark Connect's own default when the URL names no port


def connect_session(url: str, conf: dict[str, str]):
    """A new Spark Connect session on the server at `url`, with the runtime SQL conf of
    `conf` set (`settings.remote_spark_conf`); a SparkRemoteError naming SPARK_REMOTE and
    the URL when nothing answers there, before gRPC's retries would wait minutes."""
    from pyspark.sql.connect.session import SparkSession as RemoteSparkSession

    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname, parts.port or CONNECT_DEFAULT_PORT
    try:
        socket.create_connection((host, port), timeout=10).close()
    except OSError as error:
        raise SparkRemoteError(
            f"SPARK_REMOTE={url!r}: no Spark Connect server answers at {host}:{port} ({error}). Start one "
            "(`make spark-connect` prints the URL to export), or unset SPARK_REMOTE for a classic session."
        ) from None
    # What SparkSession.builder.remote() marks too: pyspark.sql.functions and Observation
    # then build Connect columns. (The generic builder would refuse a process that already
    # holds a classic SparkContext, as the tests do; this one does not look.)
    os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
    session = RemoteSparkSession.builder.remote(url).create()
    for key, value in conf.items():  # one by one: a refused key fails the run, named
        session.conf.set(key, value)
    return session


class SparkResource(PySparkResource):
    """The Spark session of a run: classic (a JVM of the run's own, at `spark_config`'s
    spark.master, SPARK_MASTER) unless `remote` names a Spark Connect server
    (SPARK_REMOTE=sc://host:port): then a session on that already running server, which
    takes only the runtime SQL conf (spark.sql.*) of `spark_config`; the rest (master,
    memory, UI, the Python workers' interpreter) is the server's own."""

    remote: str = Field(
        default="",
        description="A Spark Connect URL, sc://host:port[/;key=value...] (default: SPARK_REMOTE); "
        "empty for a classic session at spark_config's spark.master.",
    )

    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if not self.remote.strip():
            # A launchpad that clears `remote` means classic, though SPARK_REMOTE is set
            # (as under `make dev`): pyspark's builder would follow SPARK_REMOTE instead.
            os.environ.pop("SPARK_REMOTE", None)
            # PySpark reads spark.pyspark.python only through spark-submit, and takes the
            # executors' Python workers' interpreter from PYSPARK_PYTHON when a Python driver
            # creates the context: copy the key there first.
            python = self.spark_config.get("spark.pyspark.python") if self.spark_config else None
            if python:
                os.environ["PYSPARK_PYTHON"] = python
            super().setup_for_execution(context)
            return
        url = settings.check_spark_remote(self.remote, "SPARK_REMOTE")
        self._spark_session = connect_session(url, settings.remote_spark_conf(self.spark_config))

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        # A Connect session lives on the server until released; a classic one is the process's.
        if self.remote.strip() and self._spark_session is not None:
            self._spark_session.stop()


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking and registry (CONTRACTS §6). Default: SQLite under data/mlflow,
    or MLFLOW_TRACKING_URI; artifacts of a local store also go under data/mlflow."""

    tracking_uri: str = registry.default_tracking_uri()
    artifact_root: Optional[str] = None  # None: data/mlflow/artifacts for a local store

    def client(self) -> MlflowClient:
        import mlflow
        from mlflow import MlflowClient

        if self.tracking_uri.startswith("sqlite:///"):
            db = Path(self.tracking_uri.removeprefix("sqlite:///"))
            db.parent.mkdir(parents=True, exist_ok=True)
            registry.relocate_store(db)  # a copied or moved data/ uses its own artifacts
        registry.check_reachable(self.tracking_uri)
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return MlflowClient(self.tracking_uri, self.tracking_uri)

    def experiment_id(self, name: str) -> str:
        root = self.artifact_root
        if root is None and self.tracking_uri.startswith(("sqlite:", "file:", "/")):
            root = registry.default_artifact_root()
        return registry.ensure_experiment(self.client(), name, root)


def shared_resources() -> dict:
    """The resources every room's assets share: the lake, MLflow and the Spark session.
    (A room binds the resources it alone uses in its own definitions.)"""
    return {
        "lake": LakeResource(),
        "mlflow": MlflowResource(),
        "spark": SparkResource(spark_config=settings.spark_conf(), remote=settings.spark_remote()),
    }
