"""Propensity models: the feature matrix, the hyperparameter search, metrics and plots.

Pure logic on pandas frames; no Dagster, no MLflow. The same `feature_matrix` builds
the training set from lake snapshots and the scoring input from a lake lookup, so
training and inference cannot drift apart.
"""

import itertools
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from propensity_assets.propensity.labels import HORIZON_DAYS

WINDOWS = (30, 90, 365)
KEYS = ["as_of", "household_id"]


def feature_matrix(household: pd.DataFrame, group: pd.DataFrame) -> pd.DataFrame:
    """One row per (as_of, household_id): household features, the group's features, and ratios.

    `household` has KEYS + hh_*; `group` has KEYS + grp_* for a single product group.
    """
    household = household.assign(as_of=household["as_of"].astype(str))
    group = group.assign(as_of=group["as_of"].astype(str))
    frame = household.merge(group, on=KEYS, how="inner", validate="one_to_one")
    for w in WINDOWS:
        hh_baskets = frame[f"hh_baskets_{w}d"].replace(0, np.nan)
        hh_days = frame[f"hh_days_{w}d"].replace(0, np.nan)
        frame[f"grp_basket_share_{w}d"] = (frame[f"grp_baskets_{w}d"] / hh_baskets).fillna(0.0)
        frame[f"grp_day_share_{w}d"] = (frame[f"grp_days_{w}d"] / hh_days).fillna(0.0)
    # How overdue the household is relative to its usual gap between group purchases.
    gap = 365.0 / frame["grp_days_365d"].replace(0, np.nan)
    frame["grp_overdue_ratio"] = frame["grp_days_since_last"] / gap
    features = feature_columns(frame)
    frame[features] = frame[features].astype("float64")
    return frame


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(("hh_", "grp_"))]


def snapshot_dates(cutoff: date, history_weeks: int, validation_weeks: int = 1) -> tuple[list[date], list[date]]:
    """Weekly as_of snapshots for a model trained at `cutoff`: (training, validation).

    No label window crosses the cutoff (d + 30 ≤ cutoff), and validation is later in
    time than training with no overlap of label windows: validation snapshots are the
    latest `validation_weeks` with d + 30 ≤ cutoff, training snapshots end 30 days
    before the first of them.
    """
    last = cutoff - timedelta(days=HORIZON_DAYS)
    validation = [last - timedelta(weeks=k) for k in range(validation_weeks)]
    first_val = min(validation)
    train_last = first_val - timedelta(days=HORIZON_DAYS)
    train_last -= timedelta(days=(train_last - first_val).days % 7)  # keep the weekly grid
    training = [train_last - timedelta(weeks=k) for k in range(history_weeks)]
    return sorted(training), sorted(validation)


# -- search -------------------------------------------------------------------------------


@dataclass
class SearchSpace:
    """A declared hyperparameter space: every list is a dimension of the grid."""

    num_leaves: list[int] = field(default_factory=lambda: [15, 31, 63])
    learning_rate: list[float] = field(default_factory=lambda: [0.03, 0.08])
    min_child_samples: list[int] = field(default_factory=lambda: [50, 200])
    feature_fraction: list[float] = field(default_factory=lambda: [0.7, 1.0])
    lambda_l2: list[float] = field(default_factory=lambda: [0.0, 5.0])
    # Class imbalance: reweight positives to balance the classes, or not.
    balance_classes: list[bool] = field(default_factory=lambda: [False, True])
    max_trials: int = 6
    max_rounds: int = 1500
    early_stopping_rounds: int = 50
    selection_metric: str = "average_precision"
    seed: int = 42

    def trials(self) -> list[dict]:
        """A seeded random sample of the grid, at most `max_trials` permutations."""
        names = ["num_leaves", "learning_rate", "min_child_samples", "feature_fraction", "lambda_l2", "balance_classes"]
        grid = [dict(zip(names, values)) for values in itertools.product(*(getattr(self, n) for n in names))]
        if len(grid) <= self.max_trials:
            return grid
        return random.Random(self.seed).sample(grid, self.max_trials)


@dataclass
class TrainedModel:
    booster: lgb.Booster
    features: list[str]
    params: dict
    best_iteration: int
    validation_metrics: dict
    trials: pd.DataFrame

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(frame[self.features], num_iteration=self.best_iteration)


def _lgb_params(trial: dict, y: np.ndarray, seed: int) -> dict:
    params = {
        "objective": "binary",
        "metric": ["average_precision", "auc", "binary_logloss"],
        "num_leaves": trial["num_leaves"],
        "learning_rate": trial["learning_rate"],
        "min_child_samples": trial["min_child_samples"],
        "feature_fraction": trial["feature_fraction"],
        "lambda_l2": trial["lambda_l2"],
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "seed": seed,
        "num_threads": 2,
        "verbose": -1,
        "deterministic": True,
    }
    if trial["balance_classes"]:
        positives = max(float(y.sum()), 1.0)
        params["scale_pos_weight"] = (len(y) - positives) / positives
    return params


def train(train_df: pd.DataFrame, valid_df: pd.DataFrame, space: SearchSpace, label: str = "label") -> TrainedModel:
    """Search the space with early stopping on the (later) validation snapshots."""
    features = feature_columns(train_df)
    if train_df[label].nunique() < 2:
        raise ValueError(f"training labels have a single class ({train_df[label].iloc[0]}); cannot fit a classifier")
    x_train, y_train = train_df[features], train_df[label].to_numpy()
    x_valid, y_valid = valid_df[features], valid_df[label].to_numpy()
    train_set = lgb.Dataset(x_train, y_train, free_raw_data=False)
    valid_set = lgb.Dataset(x_valid, y_valid, reference=train_set, free_raw_data=False)
    rows, best = [], None
    for i, trial in enumerate(space.trials()):
        params = _lgb_params(trial, y_train, space.seed)
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=space.max_rounds,
            valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(space.early_stopping_rounds, verbose=False)],
        )
        metrics = evaluate(y_valid, booster.predict(x_valid, num_iteration=booster.best_iteration))
        rows.append({"trial": i, **trial, "best_iteration": booster.best_iteration, **metrics})
        if best is None or metrics[space.selection_metric] > best[2][space.selection_metric]:
            best = (booster, params, metrics)
    booster, params, metrics = best
    return TrainedModel(booster, features, params, booster.best_iteration, metrics, pd.DataFrame(rows))


# -- metrics ------------------------------------------------------------------------------


def lift_top_decile(y: np.ndarray, p: np.ndarray) -> float:
    y = np.asarray(y, dtype=float)
    if y.mean() == 0:
        return float("nan")
    top = np.argsort(-np.asarray(p), kind="stable")[: max(1, int(np.ceil(len(y) * 0.1)))]
    return float(y[top].mean() / y.mean())


def evaluate(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC, average precision, Brier, log loss and top-decile lift (CONTRACTS §7)."""
    y, p = np.asarray(y), np.asarray(p, dtype=float)
    both = len(np.unique(y)) == 2
    clipped = np.clip(p, 1e-7, 1 - 1e-7)
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "average_precision": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, clipped)),
        "log_loss": float(log_loss(y, clipped, labels=[0, 1])),
        "lift_top_decile": lift_top_decile(y, p),
        "positive_rate": float(y.mean()) if len(y) else float("nan"),
        "rows": int(len(y)),
    }


def baseline_scores(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The naive baselines of CONTRACTS §7, as scores where higher means likelier."""
    recency = frame["grp_days_since_last"].to_numpy(dtype=float)
    return {
        # Recent buyers first; households that never bought rank last.
        "recency": np.where(np.isnan(recency), -1e9, -recency),
        "baskets_90d": frame["grp_baskets_90d"].to_numpy(dtype=float),
    }


def deciles(scores: pd.Series) -> pd.Series:
    """Decile 1 = the top 10 % of scores, 10 = the bottom; ties share a decile by rank order."""
    ranks = scores.rank(method="first", ascending=False)
    return (np.ceil(ranks / len(scores) * 10)).clip(1, 10).astype("int32")


# -- plots --------------------------------------------------------------------------------


def plots(y: np.ndarray, p: np.ndarray, booster: lgb.Booster, features: list[str], title: str) -> dict:
    """ROC, precision–recall, calibration and feature importance, as matplotlib figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve, roc_curve

    figures = {}
    fig, ax = plt.subplots(figsize=(5, 4))
    fpr, tpr, _ = roc_curve(y, p)
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(y, p):.3f}")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC — {title}")
    ax.legend(loc="lower right")
    figures["roc_curve.png"] = fig

    fig, ax = plt.subplots(figsize=(5, 4))
    precision, recall, _ = precision_recall_curve(y, p)
    ax.plot(recall, precision, label=f"AP {average_precision_score(y, p):.3f}")
    ax.axhline(np.mean(y), color="k", ls="--", lw=0.8, label="base rate")
    ax.set(xlabel="recall", ylabel="precision", title=f"Precision–recall — {title}")
    ax.legend(loc="lower left")
    figures["precision_recall_curve.png"] = fig

    fig, ax = plt.subplots(figsize=(5, 4))
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    ax.plot(predicted, observed, "o-")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", title=f"Calibration — {title}")
    figures["calibration_curve.png"] = fig

    gain = booster.feature_importance(importance_type="gain")
    order = np.argsort(gain)[-20:]
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.barh([features[i] for i in order], gain[order])
    ax.set(xlabel="total gain", title=f"Feature importance — {title}")
    fig.tight_layout()
    figures["feature_importance.png"] = fig
    return figures
