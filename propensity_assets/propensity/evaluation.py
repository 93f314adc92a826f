"""The CONTRACTS §7 report: champion scores vs the naive baselines on a holdout as_of."""

import pandas as pd
import pyarrow.dataset as ds

from propensity_assets.lake import Lake
from propensity_assets.propensity import model as M


def holdout_report(lake: Lake, as_of: str) -> pd.DataFrame:
    """Per group: the scored model's metrics and both baselines' on labels at `as_of`.

    Reads `propensity_scores`, `propensity_labels` and `group_features` for the date;
    groups lacking any of the three are left out.
    """
    when = ds.field("as_of") == as_of
    scores = lake.read_pandas("propensity_scores", filters=when)
    labels = lake.read_pandas("propensity_labels", filters=when)
    features = lake.read_pandas("group_features", filters=when)
    rows = []
    for group, grp_scores in scores.groupby("product_group"):
        frame = grp_scores.merge(
            labels[labels["product_group"] == group][["household_id", "label"]], on="household_id"
        ).merge(features[features["product_group"] == group].drop(columns=["product_group", "as_of"]), on="household_id")
        if frame.empty:
            continue
        y = frame["label"].to_numpy()
        model = M.evaluate(y, frame["score"].to_numpy())
        base = {name: M.evaluate(y, s) for name, s in M.baseline_scores(frame).items()}
        rows.append(
            {
                "group": group,
                "model_version": grp_scores["model_version"].iloc[0],
                "households": len(frame),
                "positive_rate": model["positive_rate"],
                "roc_auc": model["roc_auc"],
                "average_precision": model["average_precision"],
                "brier": model["brier"],
                "lift_top_decile": model["lift_top_decile"],
                "recency_auc": base["recency"]["roc_auc"],
                "recency_ap": base["recency"]["average_precision"],
                "baskets90_auc": base["baskets_90d"]["roc_auc"],
                "baskets90_ap": base["baskets_90d"]["average_precision"],
            }
        )
    report = pd.DataFrame(rows)
    if not report.empty:
        report["beats_baselines"] = (
            (report["roc_auc"] > report[["recency_auc", "baskets90_auc"]].max(axis=1))
            & (report["average_precision"] > report[["recency_ap", "baskets90_ap"]].max(axis=1))
        )
    return report
