"""Deciles of a prediction: 1 = the top 10 %, 10 = the bottom."""

import numpy as np
import pandas as pd


def deciles(values: pd.Series) -> pd.Series:
    """Ties share a decile by rank order (first seen ranks higher)."""
    ranks = values.rank(method="first", ascending=False)
    return (np.ceil(ranks / len(values) * 10)).clip(1, 10).astype("int32")
