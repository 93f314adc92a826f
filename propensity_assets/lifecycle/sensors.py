"""What the lifecycle's sensors read: champions from the registry, degraded champions
from the decay tables, and "today" (PROPENSITY_TODAY or the clock)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import date, timedelta

import dagster as dg
import pyarrow.dataset as ds

from propensity_assets.shared import registry, settings
from propensity_assets.shared.lake import Lake
from propensity_assets.lifecycle.stage import ModelStage

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
