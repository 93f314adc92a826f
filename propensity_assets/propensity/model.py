"""Propensity models: LightGBM classifiers, the hyperparameter search, metrics and plots.

Pure logic on pandas frames; no Dagster, no MLflow, no Spark. `BoosterPredictor` is
what the registry stores (pickled inside the lifecycle's pyfunc), so this module must
import only pandas, numpy, scikit-learn and LightGBM.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from propensity_assets.shared import settings
from propensity_assets.features.declaration import PROPENSITY
from propensity_assets.lifecycle.stage import TrainResult
from propensity_assets.propensity.space import HORIZON_DAYS, SearchSpace



# LightGBM's name for each selection metric; early stopping watches that one only.
_LGB_METRIC = {"average_precision": "average_precision", "roc_auc": "auc", "log_loss": "binary_logloss", "brier": "binary_logloss"}


@dataclass
class BoosterPredictor:
    """A fitted booster and the feature columns it reads; predicts probabilities."""

    booster: lgb.Booster
    features: list[str]

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(frame[self.features].astype("float64"))


def _params(trial: dict, space: SearchSpace, threads: int) -> dict:
    return {
        "objective": "binary",
        "metric": _LGB_METRIC[space.selection_metric],
        "first_metric_only": True,
        "num_leaves": trial["num_leaves"],
        "learning_rate": trial["learning_rate"],
        "min_child_samples": trial["min_child_samples"],
        "feature_fraction": trial["feature_fraction"],
        "lambda_l2": trial["lambda_l2"],
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "seed": space.seed,
        "num_threads": threads,
        "verbose": -1,
        "deterministic": True,
    }


def train(fit_df: pd.DataFrame, select_df: pd.DataFrame, space: SearchSpace, label: str = "label",
          threads: int = settings.DEFAULT_TRAINING_THREADS) -> TrainResult:
    """Try each trial with early stopping on the selection rows, keep the best by the
    selection metric, then refit it on all rows with its number of rounds; every fit
    on `threads` threads."""
    features = PROPENSITY.require(fit_df.columns)
    if fit_df[label].nunique() < 2:
        raise ValueError(f"training labels have a single class ({fit_df[label].iloc[0]}); cannot fit a classifier")
    x_fit, y_fit = fit_df[features], fit_df[label].to_numpy()
    x_sel, y_sel = select_df[features], select_df[label].to_numpy()
    fit_set = lgb.Dataset(x_fit, y_fit, free_raw_data=False)
    sel_set = lgb.Dataset(x_sel, y_sel, reference=fit_set, free_raw_data=False)
    higher = space.selection_metric not in ("log_loss", "brier")
    rows, best = [], None
    for i, trial in enumerate(space.trials()):
        booster = lgb.train(
            _params(trial, space, threads), fit_set, num_boost_round=space.max_rounds, valid_sets=[sel_set],
            callbacks=[lgb.early_stopping(space.early_stopping_rounds, first_metric_only=True, verbose=False)],
        )
        metrics = evaluate(y_sel, booster.predict(x_sel, num_iteration=booster.best_iteration))
        rows.append({"trial": i, **trial, "best_iteration": booster.best_iteration, **metrics})
        score = metrics[space.selection_metric]
        if best is None or (score > best[2] if higher else score < best[2]):
            best = (trial, booster.best_iteration, score, metrics)
    trial, rounds, _, metrics = best
    both = pd.concat([fit_df, select_df], ignore_index=True)
    final = lgb.train(_params(trial, space, threads), lgb.Dataset(both[features], both[label].to_numpy()), num_boost_round=max(rounds, 1))
    predictor = BoosterPredictor(final, features)
    importances = pd.Series(final.feature_importance(importance_type="gain"), index=features).sort_values(ascending=False)
    return TrainResult(
        predictor=predictor,
        params={**trial, "rounds": rounds},
        trials=pd.DataFrame(rows),
        selection_metrics=metrics,
        importances=importances,
        figures=lambda y, p: plots(y, p, importances),
    )


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


def reports(y: np.ndarray, p: np.ndarray) -> dict[str, pd.DataFrame]:
    """The tables logged beside each evaluation: the calibration table."""
    return {"calibration": calibration_table(y, p)}


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted probability against the observed rate, per quantile bin of p."""
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "p": np.asarray(p, dtype=float)})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), bins, labels=False) + 1
    return frame.groupby("bin").agg(mean_predicted=("p", "mean"), observed_rate=("y", "mean"), rows=("y", "size")).reset_index()


def baseline_scores(frame: pd.DataFrame, horizon_days: int = HORIZON_DAYS) -> dict[str, np.ndarray]:
    """The naive baselines of CONTRACTS §7, as scores where higher means likelier."""
    recency = frame["grp_days_since_last"].to_numpy(dtype=float)
    return {
        # Recent buyers first; households that never bought rank last.
        "recency": np.where(np.isnan(recency), -1e9, -recency),
        "baskets_90d": frame["grp_baskets_90d"].to_numpy(dtype=float),
    }


# -- plots --------------------------------------------------------------------------------


def plots(y: np.ndarray, p: np.ndarray, importances: pd.Series) -> dict:
    """ROC, precision–recall, calibration and feature importance, as matplotlib figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    figures = {}
    fig, ax = plt.subplots(figsize=(5, 4))
    fpr, tpr, _ = roc_curve(y, p)
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(y, p):.3f}")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (vetting snapshot)")
    ax.legend(loc="lower right")
    figures["roc_curve.png"] = fig

    fig, ax = plt.subplots(figsize=(5, 4))
    precision, recall, _ = precision_recall_curve(y, p)
    ax.plot(recall, precision, label=f"AP {average_precision_score(y, p):.3f}")
    ax.axhline(np.mean(y), color="k", ls="--", lw=0.8, label="base rate")
    ax.set(xlabel="recall", ylabel="precision", title="Precision–recall (vetting snapshot)")
    ax.legend(loc="lower left")
    figures["precision_recall_curve.png"] = fig

    fig, ax = plt.subplots(figsize=(5, 4))
    table = calibration_table(y, p)
    ax.plot(table["mean_predicted"], table["observed_rate"], "o-")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", title="Calibration (vetting snapshot)")
    figures["calibration_curve.png"] = fig

    top = importances.head(20)[::-1]
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.barh(list(top.index), top.to_numpy())
    ax.set(xlabel="total gain", title="Feature importance")
    fig.tight_layout()
    figures["feature_importance.png"] = fig
    return figures
