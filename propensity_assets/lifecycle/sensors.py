"""The lifecycle's sensors: rescore a group when its champion changes, retrain it when the
champion has decayed; and what they read: champions from the registry, degraded champions
from the decay tables, and "today" (PROPENSITY_TODAY or the clock)."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from datetime import date, timedelta

import dagster as dg
import pyarrow.dataset as ds

from propensity_assets.lifecycle.stage import ModelStage
from propensity_assets.shared import registry, settings
from propensity_assets.shared.lake import Lake
from propensity_assets.shared.partitions import product_group_partitions
from propensity_assets.shared.resources import LakeResource, MlflowResource

# Fail fast when the server is down: a skipped tick, not minutes of retries. Settings the
# deployment made itself win.
_FAIL_FAST_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


@contextmanager
def fail_fast_http():
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


def champion_versions(stage: ModelStage, mlflow_res, groups: list[str]) -> dict[str, str | None]:
    client = mlflow_res.client()
    out = {}
    for group in groups:
        version = registry.version_by_alias(client, stage.model_name(group), registry.CHAMPION)
        out[group] = None if version is None else str(version.version)
    return out


def champions_or_skip(stage: ModelStage, mlflow_res, groups: list[str]):
    try:
        with fail_fast_http():
            return champion_versions(stage, mlflow_res, groups)
    except Exception as exc:  # any transport or server error means "unreachable" here
        return dg.SkipReason(f"MLflow registry at {mlflow_res.tracking_uri} is unreachable: {type(exc).__name__}: {exc}")


def latest_dates() -> list[str]:
    """The latest as_of and PROPENSITY_RESCORE_LOOKBACK_DAYS earlier dates."""
    from propensity_assets.shared.partitions import latest_as_of, today

    latest = date.fromisoformat(latest_as_of(today()))
    return [(latest - timedelta(days=k)).isoformat() for k in range(settings.rescore_lookback_days() + 1)]


def latest_cutoff_key() -> str:
    from propensity_assets.shared.partitions import latest_cutoff, today

    return latest_cutoff(today())


def degraded_champions(lake: Lake, decay_table: str, groups: list[str]) -> dict[str, str]:
    """group → champion version, for champions degraded at their newest evaluated as_of."""
    if not lake.exists(decay_table):
        return {}
    curves = lake.read_pandas(decay_table, filters=ds.field("product_group").isin(groups))
    out = {}
    for group, curve in curves[curves["is_champion"]].groupby("product_group"):
        newest = curve.sort_values("as_of").iloc[-1]
        if bool(newest["degraded"]):
            out[group] = str(newest["model_version"])
    return out


def _stage_sensor(stage: ModelStage, action: str, job, minimum_interval_seconds: int, description: str):
    """The decorator of the stage's `<stage>_<action>_sensor`, running from the start: a
    deployment need not switch the lifecycle's automation on."""
    return dg.sensor(
        name=f"{stage.name}_{action}_sensor",
        job=job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=description,
    )


def rescore_sensor(stage: ModelStage, job) -> dg.SensorDefinition:
    """When a group's `champion` alias moves, rescore that group for the latest as_of (and
    PROPENSITY_RESCORE_LOOKBACK_DAYS earlier dates)."""
    target_tag = f"{stage.name}/rescore"

    @_stage_sensor(
        stage, "rescore", job, 60,
        description=(
            f"Watches the MLflow registry. When a group's `{stage.name}__<group>@champion` is not the version that "
            "last rescored the latest as_of, requests rescoring of that group (the profile follows by its "
            "automation condition). The decision reads the instance's runs, not only the cursor, so a lost "
            "cursor never launches twice and a rollback (v1 → v2 → v1) still rescores."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext, mlflow: MlflowResource):
        groups = context.instance.get_dynamic_partitions(product_group_partitions.name)
        champions = champions_or_skip(stage, mlflow, groups)
        if isinstance(champions, dg.SkipReason):
            return champions
        requests = []
        for group, version in champions.items():
            if version is None:
                continue
            for as_of in latest_dates():
                target = f"{group}|{as_of}"
                filters = dg.RunsFilter(tags={target_tag: target})
                last = context.instance.get_runs(filters=filters, limit=1)
                if last and last[0].tags.get(f"{stage.name}/champion_version") == version:
                    continue
                n = context.instance.get_runs_count(filters=filters) + 1
                requests.append(dg.RunRequest(
                    run_key=f"rescore:{stage.name}:{group}:{as_of}:{n}",
                    partition_key=f"{as_of}|{group}",
                    tags={target_tag: target, f"{stage.name}/champion_version": version, f"{stage.name}/trigger": "promotion"},
                ))
        cursor = json.dumps({g: v for g, v in champions.items() if v is not None}, sort_keys=True)
        if not requests:
            return dg.SensorResult(skip_reason="every champion has rescored the latest as_of", cursor=cursor)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return _sensor


def retrain_sensor(stage: ModelStage, job, decay_table: str) -> dg.SensorDefinition:
    """Request retraining of a group whose champion's live metric has degraded past the
    tolerance (from `<stage>_decay`)."""

    @_stage_sensor(
        stage, "retrain", job, 300,
        description=(
            f"Reads `{decay_table}`: when a group's champion has degraded past the decay tolerance at its newest "
            "evaluated as_of, requests training at the latest weekly cutoff. The run key names the stage, group "
            "and champion version, so one degraded champion is retrained once."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
        groups = context.instance.get_dynamic_partitions(product_group_partitions.name)
        degraded = degraded_champions(lake.lake, decay_table, groups)
        if not degraded:
            return dg.SkipReason("no champion has degraded past its tolerance")
        cutoff = latest_cutoff_key()
        return [
            dg.RunRequest(
                run_key=f"retrain:{stage.name}:{group}:v{version}",
                partition_key=f"{cutoff}|{group}",
                tags={f"{stage.name}/trigger": "decay", f"{stage.name}/degraded_version": version},
            )
            for group, version in degraded.items()
        ]

    return _sensor
