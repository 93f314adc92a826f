"""LTV metrics (CONTRACTS §8): error, ranking quality, calibration, the decile table, and the
previous-H-days baseline. Pure numpy/pandas; no Dagster, no MLflow, no Spark.

Ties in the prediction are frequent (every baseline predicts 0 for many households), so
rank-based metrics must not depend on the row order. Gini and top-decile capture
replace the actuals inside each block of tied predictions by the block's mean: both
metrics are linear in the order of the actuals, so this is exactly their expected value
over every ordering of the ties, and the same rows in any order give the same number.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from propensity_assets.shared.deciles import deciles

TOP_SHARE = 0.10


def _as_arrays(y, pred) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype="float64")
    pred = np.asarray(pred, dtype="float64")
    if y.shape != pred.shape or y.ndim != 1:
        raise ValueError(f"actuals and predictions must be 1-d of the same length, got {y.shape} and {pred.shape}")
    if np.isnan(pred).any():
        raise ValueError(f"predictions hold {int(np.isnan(pred).sum())} NaN values; expected a number for every row")
    return y, pred


def _ordered_actuals(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Actuals sorted by prediction, highest first, each tie block replaced by its mean."""
    order = np.argsort(-pred, kind="stable")
    p, a = pred[order], y[order]
    # Block boundaries where the sorted prediction changes.
    starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
    sums = np.add.reduceat(a, starts)
    sizes = np.diff(np.r_[starts, len(a)])
    return np.repeat(sums / sizes, sizes)


def _gini_of_ordered(a: np.ndarray) -> float:
    """The Kaggle (Allstate / Porto Seguro) Gini of actuals already in prediction order.

    sum(cumulative share of actuals) / n − (n + 1) / (2n): the area between the
    cumulative-gain curve and the diagonal.
    """
    n, total = len(a), a.sum()
    return float((np.cumsum(a).sum() / total - (n + 1) / 2.0) / n)


def normalized_gini(y, pred) -> float:
    """Gini of the actuals ordered by the prediction / Gini of the perfect ordering.

    1 for a perfect ranking, 0 for a random (or constant) one. NaN when all actuals are
    equal: no ordering is better than another.
    """
    y, pred = _as_arrays(y, pred)
    perfect_order = np.sort(y)[::-1]
    if len(y) == 0 or y.sum() == 0 or perfect_order[0] == perfect_order[-1]:
        return float("nan")
    return _gini_of_ordered(_ordered_actuals(y, pred)) / _gini_of_ordered(perfect_order)


def top_decile_capture(y, pred, share: float = TOP_SHARE) -> float:
    """Share of the total actual spend earned by the top `share` of rows by prediction.

    The top group is ceil(share × n) rows; ties at its edge count pro rata.
    """
    y, pred = _as_arrays(y, pred)
    if len(y) == 0 or y.sum() == 0:
        return float("nan")
    k = int(np.ceil(share * len(y)))
    return float(_ordered_actuals(y, pred)[:k].sum() / y.sum())


def evaluate(y, pred) -> dict[str, float]:
    """The CONTRACTS §8 metrics of predictions `pred` against actual spend `y`."""
    y, pred = _as_arrays(y, pred)
    n = len(y)
    mean_actual = float(y.mean()) if n else float("nan")
    constant = n < 2 or np.all(pred == pred[0]) or np.all(y == y[0])
    return {
        "rmse": float(np.sqrt(np.mean((pred - y) ** 2))) if n else float("nan"),
        "mae": float(np.mean(np.abs(pred - y))) if n else float("nan"),
        "normalized_gini": normalized_gini(y, pred),
        "spearman": float("nan") if constant else float(spearmanr(y, pred).statistic),
        "top_decile_capture": top_decile_capture(y, pred),
        "calibration": float(pred.mean() / mean_actual) if n and mean_actual != 0 else float("nan"),
        "rows": int(n),
        "mean_actual": mean_actual,
    }


def reports(y: np.ndarray, p: np.ndarray) -> dict[str, pd.DataFrame]:
    """The tables logged beside each evaluation: mean prediction and actual per decile."""
    return {"deciles": decile_table(y, p)}


def decile_table(y, pred) -> pd.DataFrame:
    """Mean prediction, mean actual and household count per prediction decile (1 = top 10 %)."""
    y, pred = _as_arrays(y, pred)
    frame = pd.DataFrame({"decile": deciles(pd.Series(pred)).to_numpy(), "prediction": pred, "actual": y})
    table = frame.groupby("decile").agg(
        mean_prediction=("prediction", "mean"), mean_actual=("actual", "mean"), households=("actual", "size")
    )
    return table.reset_index()


def previous_spend_baseline(frame: pd.DataFrame, horizon_days: int) -> np.ndarray:
    """The naive baseline: the household's group spend over the previous H days, `grp_spend_{H}d`."""
    column = f"grp_spend_{horizon_days}d"
    if column not in frame.columns:
        windows = sorted(
            int(c[len("grp_spend_") : -1]) for c in frame.columns
            if c.startswith("grp_spend_") and c.endswith("d") and c[len("grp_spend_") : -1].isdigit()
        )
        raise ValueError(
            f"previous-spend baseline for a {horizon_days}-day horizon needs the column {column!r}; "
            f"the frame has grp_spend windows {windows} (days). Use a horizon among them or add the window to the features."
        )
    return frame[column].to_numpy(dtype="float64")
