"""Error over time: how a model's metric decays with its age, and when to retrain.

The seed trains a model once and measures its error on every later day to find when
it degrades; that age is the retraining interval. Here every recent version of a
group's model is evaluated at each as_of from its cutoff on whose label window has
closed (age ≥ 0: out of sample), against its value on its vetting snapshot.
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
    """The metric of the champion and the `versions` newest versions at every as_of from
    their cutoff on whose labels exist (their label window has closed), every `step_days`
    days: age = as_of − cutoff ≥ 0, never a snapshot the version was fitted, selected or
    vetted on. `at_training` is its value on the vetting snapshot (the reference the
    degradation is measured from); that snapshot is not a point of the curve."""
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
        later = [d for d in labelled_dates(lake, stage.labels_table, group, mv.tags["cutoff"], step_days)
                 if d > mv.tags.get("train_as_of_max", start) and d > start]
        if not later:
            continue  # no label window after the cutoff has closed yet
        values = evaluate_at(stage, lake, name, version, group, [start, *later], metric)
        at_training = values[start]
        cutoff = date.fromisoformat(mv.tags["cutoff"])
        for d in later:
            value = values[d]
            rows.append({
                "model_version": version, "cutoff": str(cutoff), "as_of": d,
                "age_days": (date.fromisoformat(d) - cutoff).days, "metric": metric, "value": float(value),
                "at_training": float(at_training),
                "degraded": degraded(value, at_training, tolerance, stage.higher_is_better[metric]),
                "is_champion": champion is not None and version == str(champion.version),
            })
    return pd.DataFrame(rows, columns=COLUMNS)


def evaluate_at(stage: ModelStage, lake: Lake, name: str, version: str, group: str, dates: list[str], metric: str) -> dict:
    """{as_of: `metric` of version `version` of `name` on the labelled snapshot at as_of}."""
    import mlflow

    frame = frames.labelled_frame(lake, group, dates, stage.labels_table)
    frame = frame.assign(prediction=mlflow.pyfunc.load_model(f"models:/{name}/{version}").predict(frame).iloc[:, -1].to_numpy())
    return {d: stage.evaluate(part["label"].to_numpy(), part["prediction"].to_numpy())[metric] for d, part in frame.groupby("as_of")}


def with_gaps(curve: pd.DataFrame, step_days: int) -> pd.DataFrame:
    """One version's points by age, with a row of NaN wherever the next point is more than
    `step_days` later, so a plotted line breaks at a missing date instead of joining across it."""
    curve = curve.sort_values("age_days")
    parts = []
    previous = None
    for row in curve.itertuples(index=False):
        if previous is not None and row.age_days - previous > step_days:
            parts.append({"age_days": previous + step_days, "value": float("nan")})
        parts.append({"age_days": row.age_days, "value": row.value})
        previous = row.age_days
    return pd.DataFrame(parts, columns=["age_days", "value"])


def decay_figure(curves: pd.DataFrame, title: str, step_days: int):
    """The decay curve of each version by age ≥ 0 (gaps where an as_of is missing), and its
    value on the vetting snapshot as a dotted line of the same colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for version, curve in curves.groupby("model_version"):
        label = f"v{version} (cutoff {curve['cutoff'].iloc[0]})" + (" champion" if curve["is_champion"].any() else "")
        points = with_gaps(curve, step_days)
        [line] = ax.plot(points["age_days"], points["value"], marker=".", label=label)
        ax.axhline(curve["at_training"].iloc[0], color=line.get_color(), ls=":", lw=0.8)
    ax.set(xlabel="model age at as_of (days since cutoff)", ylabel=curves["metric"].iloc[0],
           title=title + "\n(dotted: the value on the vetting snapshot)")
    ax.set_xlim(left=0)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def decay_row(curves: pd.DataFrame, name: str) -> dict:
    """A group's decay summary: the versions with points, the champion's value on its vetting
    snapshot and at its newest evaluated as_of, its age there, whether it has degraded, the
    retraining interval, and the number of points; `champion_age_days` is absent (not a
    made-up age) while no label window after the champion's cutoff has closed."""
    champion = curves[curves["is_champion"]].sort_values("as_of")
    interval = retraining_interval(curves)
    row = {
        "versions": ", ".join(sorted(set(curves["model_version"]), key=int)) or "none",
        "points": int(len(curves)),
        "retraining_interval_days": "not reached" if interval is None else str(interval),
    }
    if champion.empty:
        row["champion"] = f"{name}@champion: no labelled as_of after its cutoff yet" if len(curves) else (
            f"{name}: no labelled as_of after the cutoff of its champion or newest versions yet")
        row["degraded"] = False
        return row
    latest = champion.iloc[-1]
    row.update({
        "champion": str(latest["model_version"]),
        "champion_at_training": float(latest["at_training"]),
        "champion_latest": float(latest["value"]),
        "champion_age_days": int(latest["age_days"]),
        "degraded": bool(latest["degraded"]),
    })
    return row
