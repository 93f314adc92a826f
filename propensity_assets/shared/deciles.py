"""Deciles of a prediction: 1 = the top 10 %, 10 = the bottom."""

import numpy as np
import pandas as pd


def deciles(values: pd.Series) -> pd.Series:
    """Ties share a decile by rank order (first seen ranks higher)."""
    ranks = values.rank(method="first", ascending=False)
    return (np.ceil(ranks / len(values) * 10)).clip(1, 10).astype("int32")


def decile_table(actual, predicted) -> pd.DataFrame:
    """Per prediction decile (1 = top 10 %): households, mean prediction, mean actual, the
    lift (mean actual / the overall mean: the base rate for a 0/1 label) and the cumulative
    share of the total actual captured from the top decile down (the gains curve's points)."""
    actual = np.asarray(actual, dtype="float64")
    predicted = np.asarray(predicted, dtype="float64")
    frame = pd.DataFrame({"decile": deciles(pd.Series(predicted)).to_numpy(), "prediction": predicted, "actual": actual})
    out = frame.groupby("decile").agg(
        households=("actual", "size"), mean_prediction=("prediction", "mean"), mean_actual=("actual", "mean"),
        total_actual=("actual", "sum"),
    ).reset_index()
    base, total = actual.mean(), actual.sum()
    out["lift"] = out["mean_actual"] / base if base else np.nan
    out["cumulative_share"] = out["total_actual"].cumsum() / total if total else np.nan
    return out.drop(columns="total_actual")
