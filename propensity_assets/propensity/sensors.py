"""Rescore on promotion: when a group's `champion` alias moves, refresh its scores."""

import json
import os
from contextlib import contextmanager
from datetime import date, timedelta

import dagster as dg

from propensity_assets import registry, settings
from propensity_assets.partitions import product_group_partitions
from propensity_assets.resources import MlflowResource
from propensity_assets.schedules import latest_as_of, today


def champion_versions(mlflow_res: MlflowResource, groups: list[str]) -> dict[str, str | None]:
    client = mlflow_res.client()
    out = {}
    for group in groups:
        version = registry.version_by_alias(client, registry.model_name("propensity", group), registry.CHAMPION)
        out[group] = None if version is None else str(version.version)
    return out


# Fail fast when the server is down: a skipped tick, not a minute of retries. Settings the
# deployment made itself win.
_FAIL_FAST_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


@contextmanager
def _fail_fast_http():
    """MLflow reads these from the environment on every request. The environment is the
    whole process's, and runs launched from the code server inherit it, so the settings
    hold for the tick only (training must keep MLflow's retries and upload timeout)."""
    added = [key for key in _FAIL_FAST_HTTP if key not in os.environ]
    os.environ.update({key: _FAIL_FAST_HTTP[key] for key in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _run_key(instance: dg.DagsterInstance, group: str, version: str, as_of: str, moved: bool) -> str:
    """`rescore:<group>:v<version>:<as_of>`, the same on every tick and after a lost cursor,
    so the daemon launches it once. A version that becomes champion again (a rollback
    v1 → v2 → v1) must rescore too: the scores are v2's by then. Its key gets `:2`, `:3`, …
    """
    base = key = f"rescore:{group}:v{version}:{as_of}"
    n = 1
    while moved and instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": key}), limit=1):
        n += 1
        key = f"{base}:{n}"
    return key


@dg.sensor(
    target=dg.AssetSelection.assets("propensity_scores"),
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Watches the MLflow registry. When a group's `champion` alias moves to another version, "
        "requests rescoring of that group for the latest as_of (plus PROPENSITY_RESCORE_LOOKBACK_DAYS "
        "earlier dates); the customer profile follows by its automation condition. Run keys "
        "(group, version, date) make repeated ticks and daemon restarts launch nothing twice; a version "
        "promoted again (a rollback) rescores under a numbered key."
    ),
)
def champion_rescore_sensor(context: dg.SensorEvaluationContext, mlflow: MlflowResource):
    groups = context.instance.get_dynamic_partitions(product_group_partitions.name)
    try:
        with _fail_fast_http():
            champions = champion_versions(mlflow, groups)
    except Exception as exc:  # any transport or server error means "unreachable" here
        return dg.SkipReason(f"MLflow registry at {mlflow.tracking_uri} is unreachable: {type(exc).__name__}: {exc}")
    seen = json.loads(context.cursor) if context.cursor else {}
    latest = date.fromisoformat(latest_as_of(today()))
    dates = [(latest - timedelta(days=k)).isoformat() for k in range(settings.rescore_lookback_days() + 1)]
    requests = []
    for group, version in champions.items():
        if version is None or seen.get(group) == version:
            continue
        moved = seen.get(group) is not None  # from another version, not a first sight
        for as_of in dates:
            requests.append(
                dg.RunRequest(
                    run_key=_run_key(context.instance, group, version, as_of, moved),
                    partition_key=f"{as_of}|{group}",
                    tags={"propensity/champion_version": version, "propensity/trigger": "promotion"},
                )
            )
    cursor = json.dumps({g: v for g, v in champions.items() if v is not None}, sort_keys=True)
    if not requests:
        return dg.SensorResult(skip_reason="no champion moved", cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)
