"""The holdout report of a stage: each group's scored champion against the naive
baselines on labels at one as_of (CONTRACTS §7 for propensity, §8 for LTV)."""

from __future__ import annotations

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
