"""How good a model is: the holdout report of a stage (each group's scored champion against
the naive baselines on labels at one as_of, CONTRACTS §7 for propensity, §8 for LTV) and the
evaluation charts shown on the model and champion partitions and logged to MLflow
(cumulative gains, lift by decile, predicted against actual by decile, the decile table)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from propensity_assets.shared.lake import Lake
from propensity_assets.features.lookup import read_features
from propensity_assets.lifecycle.stage import ModelStage


def holdout_report(stage: ModelStage, lake: Lake, as_of: str, metrics: list[str]) -> pd.DataFrame:
    """Per group with scores and labels at `as_of`: `metrics` of the model and, as
    `<baseline>_<metric>`, of every baseline; `beats_baselines` when the model beats every
    baseline on every baseline metric of the stage."""
    when = ds.field("as_of") == as_of
    if not (lake.exists(stage.scores_table, {"as_of": as_of}) and lake.exists(stage.labels_table, {"as_of": as_of})):
        return pd.DataFrame()
    scores = lake.read_pandas(stage.scores_table, filters=when)
    labels = lake.read_pandas(stage.labels_table, filters=when)
    horizon = stage.horizon_days()
    rows = []
    for group, grp_scores in scores.groupby("product_group"):
        group_labels = labels[labels["product_group"] == group][["household_id", "label"]]
        if group_labels.empty:
            continue
        frame = read_features(lake, group, [as_of]).merge(
            grp_scores[["household_id", stage.score_column, "model_version"]], on="household_id"
        ).merge(group_labels, on="household_id")
        y = frame["label"].to_numpy()
        model = stage.evaluate(y, frame[stage.score_column].to_numpy())
        row = {"group": group, "model_version": grp_scores["model_version"].iloc[0], "households": len(frame)}
        row.update({m: model[m] for m in metrics})
        beats = True
        for base, predicted in stage.baselines(frame, horizon).items():
            base_metrics = stage.evaluate(y, predicted)
            row.update({f"{base}_{m}": base_metrics[m] for m in metrics if m in stage.baseline_metrics or m == stage.metric})
            for m in stage.baseline_metrics:
                higher = stage.higher_is_better[m]
                beats &= model[m] > base_metrics[m] if higher else model[m] < base_metrics[m]
        row["beats_baselines"] = bool(beats)
        rows.append(row)
    return pd.DataFrame(rows)


# -- charts ----------------------------------------------------------------------------------


def gains_curve(actual, predicted) -> tuple[np.ndarray, np.ndarray]:
    """(share of households targeted, share of the total actual captured), targeting by the
    prediction from the highest down, from (0, 0) to (1, 1)."""
    actual = np.asarray(actual, dtype="float64")
    order = np.argsort(-np.asarray(predicted, dtype="float64"), kind="stable")
    captured = np.cumsum(actual[order]) / actual.sum() if actual.sum() else np.zeros(len(actual))
    share = np.arange(1, len(actual) + 1) / len(actual)
    return np.r_[0.0, share], np.r_[0.0, captured]


def evaluation_charts(actual, predictions: dict[str, np.ndarray], models: list[str], title: str, label: str) -> dict:
    """{file name: matplotlib figure} on one labelled snapshot: `gains.png` (cumulative gains of
    every prediction, with random targeting and the perfect ordering), `lift.png` (lift by
    decile, the base rate at 1) and `calibration.png` (mean prediction against mean actual per
    decile, for the `models` only: the naive baselines rank, they do not predict the label).
    `label` names the actual (purchase rate, spend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from propensity_assets.shared.deciles import decile_table

    actual = np.asarray(actual, dtype="float64")
    base = float(actual.mean()) if len(actual) else float("nan")
    figures = {}

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, predicted in predictions.items():
        x, y = gains_curve(actual, predicted)
        ax.plot(x, y, lw=2 if name in models else 1, ls="-" if name in models else "--", label=name)
    x, y = gains_curve(actual, actual)
    ax.plot(x, y, color="grey", lw=0.8, label="perfect")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8, label="random")
    ax.set(xlabel="share of households targeted (by prediction)", ylabel=f"share of {label} captured",
           title=f"Cumulative gains: {title}\n(mean {label} {base:,.4g})")
    ax.legend(fontsize=7, loc="lower right")
    figures["gains.png"] = fig

    fig, ax = plt.subplots(figsize=(5.5, 4))
    width = 0.8 / max(len(predictions), 1)
    for i, (name, predicted) in enumerate(predictions.items()):
        deciles = decile_table(actual, predicted)
        ax.bar(deciles["decile"] + (i - (len(predictions) - 1) / 2) * width, deciles["lift"], width, label=name)
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label=f"base rate ({label} {base:,.4g})")
    ax.set(xlabel="prediction decile (1 = top 10 %)", ylabel="lift (decile mean / overall mean)",
           title=f"Lift by decile: {title}", xticks=list(range(1, 11)))
    ax.legend(fontsize=7)
    figures["lift.png"] = fig

    fig, ax = plt.subplots(figsize=(5.5, 4))
    top = 0.0
    for name in models:
        deciles = decile_table(actual, predictions[name])
        ax.plot(deciles["mean_prediction"], deciles["mean_actual"], "o-", label=name)
        top = max(top, float(deciles["mean_prediction"].max()), float(deciles["mean_actual"].max()))
    ax.plot([0, top], [0, top], "k--", lw=0.8, label="perfect calibration")
    ax.set(xlabel="mean prediction per decile", ylabel=f"mean actual {label}",
           title=f"Predicted against actual by decile: {title}")
    ax.legend(fontsize=7)
    figures["calibration.png"] = fig
    for fig in figures.values():
        fig.tight_layout()
    return figures
