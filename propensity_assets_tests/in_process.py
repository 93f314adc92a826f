"""Materialize the project's own assets in-process on a small temp project: a source
directory, a product-group catalogue, a lake and an MLflow store under one root, a real
Dagster test instance and the session's Spark."""

import os
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import mlflow
from dagster_pyspark import PySparkResource

from propensity_assets.definitions import defs
from propensity_assets.groups.resources import ProductGroupsResource
from propensity_assets.ingest.resources import SourceResource
from propensity_assets.shared.resources import LakeResource, MlflowResource


def assets(*names: str) -> list:
    """The definitions' assets that produce any of `names`."""
    wanted = set(names)
    return [a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and {k.to_user_string() for k in a.keys} & wanted]


@contextmanager
def project(root: Path, spark, groups: list[str]):
    """(materialize(names, **kwargs) → a successful result, resources) for the project at
    `root` (root/source, root/groups.yaml, root/lake, root/mlflow.db), with `groups` as the
    product_group partitions. MLflow's process-wide URIs are restored afterwards."""
    resources = {
        "lake": LakeResource(uri=str(root / "lake")),
        "source": SourceResource(directory=str(root / "source")),
        "product_groups": ProductGroupsResource(path=str(root / "groups.yaml")),
        "mlflow": MlflowResource(tracking_uri=f"sqlite:///{root}/mlflow.db", artifact_root=(root / "artifacts").as_uri()),
        "spark": PySparkResource(spark_config={"spark.master": spark.conf.get("spark.master")}),
    }
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    try:
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("product_group", groups)

            def materialize(names, **kwargs):
                result = dg.materialize(assets(*names), instance=instance, resources=resources, **kwargs)
                assert result.success
                return result

            yield materialize, resources
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
