"""Error over time: how a model's metric decays with its age, and when to retrain.

The seed trains a model once and measures its error on every later day to find when
it degrades; that age is the retraining interval. Here every recent version of a
group's model is evaluated at each later as_of whose label window has closed.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from propensity_assets.shared import registry
from propensity_assets.shared.lake import Lake
from propensity_assets.lifecycle import frames
from propensity_assets.lifecycle.stage import ModelStage

COLUMNS = ["model_version", "cutoff", "as_of", "age_days", "metric", "value", "at_training", "degraded", "is_champion"]


def degraded(value: float, at_training: float, tolerance: float, higher_is_better: bool) -> bool:
    """Has the metric moved past `tolerance` (relative) from its value at training, for the worse?"""
    if higher_is_better:
        return value < at_training * (1 - tolerance)
    return value > at_training * (1 + tolerance)


def retraining_interval(curves: pd.DataFrame) -> int | None:
    """The age (days since its cutoff) at which a model's metric first degraded past the
    tolerance, the youngest over the versions evaluated; None if none degraded yet."""
    bad = curves[curves["degraded"] & (curves["age_days"] >= 0)]
    return None if bad.empty else int(bad["age_days"].min())


def labelled_dates(lake: Lake, table: str, group: str, start: str, step_days: int) -> list[str]:
    """as_of dates from `start` on whose labels exist for `group`, every `step_days` days."""
    first = date.fromisoformat(start)
    return [
        d for d in lake.partitions(table, "as_of")
        if d >= start and (date.fromisoformat(d) - first).days % step_days == 0
        and lake.exists(table, {"as_of": d, "product_group": group})
    ]


def decay_curves(
    stage: ModelStage, lake: Lake, mlflow_res, group: str, metric: str, tolerance: float,
    step_days: int, versions: int,
) -> pd.DataFrame:
    """The metric of the champion and the `versions` newest versions at their vetting
    snapshot (the value at training, a negative age) and at every labelled as_of from
    their cutoff on, every `step_days` days (age = as_of − cutoff)."""
    import mlflow

    client = mlflow_res.client()
    name = stage.model_name(group)
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    found = sorted((v for v in client.search_model_versions(registry.name_filter(name)) if registry.is_complete(v)),
                   key=lambda v: -int(v.version))
    chosen = {str(v.version): v for v in found[:versions]}
    if champion is not None:
        chosen[str(champion.version)] = champion
    rows = []
    for version, mv in sorted(chosen.items(), key=lambda kv: int(kv[0])):
        start = mv.tags.get("vetting_as_of")
        if not start:
            continue  # not trained by this lifecycle
        dates = [start, *labelled_dates(lake, stage.labels_table, group, mv.tags["cutoff"], step_days)]
        frame = frames.labelled_frame(lake, group, dates, stage.labels_table)
        frame = frame.assign(prediction=mlflow.pyfunc.load_model(f"models:/{name}/{version}").predict(frame).iloc[:, -1].to_numpy())
        values = {d: stage.evaluate(part["label"].to_numpy(), part["prediction"].to_numpy())[metric] for d, part in frame.groupby("as_of")}
        at_training = values[start]
        cutoff = date.fromisoformat(mv.tags["cutoff"])
        for d, value in sorted(values.items()):
            rows.append({
                "model_version": version, "cutoff": str(cutoff), "as_of": d,
                "age_days": (date.fromisoformat(d) - cutoff).days, "metric": metric, "value": float(value),
                "at_training": float(at_training),
                "degraded": degraded(value, at_training, tolerance, stage.higher_is_better[metric]),
                "is_champion": champion is not None and version == str(champion.version),
            })
    return pd.DataFrame(rows, columns=COLUMNS)


def decay_figure(curves: pd.DataFrame, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for version, curve in curves.groupby("model_version"):
        label = f"v{version} (cutoff {curve['cutoff'].iloc[0]})" + (" champion" if curve["is_champion"].any() else "")
        ax.plot(curve["age_days"], curve["value"], marker=".", label=label)
    ax.set(xlabel="model age at as_of (days since cutoff)", ylabel=curves["metric"].iloc[0], title=title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
