"""Estimation: one EconML DML fit per treatment × effect, with overlap checks and trimming.

Pure logic. `estimate_effect` takes the study table, the treatment, the outcome, the
effect modifiers X (pre-treatment covariates: where the effect may vary) and the rest
of the identified adjustment set W, and returns per-unit CATEs with 95 % intervals and
the ATE with its interval. Imports of econml happen inside functions so that the Dagster
definitions load fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# Units whose propensity of the treatment lies outside this band are "outside overlap".
OVERLAP_BAND = (0.02, 0.98)
# Above this share of units outside the band the estimate carries an overlap warning.
OVERLAP_WARN_SHARE = 0.05


@dataclass(frozen=True)
class EstimatorConfig:
    estimator: str = "linear_dml"  # or "causal_forest_dml"
    folds: int = 3  # cross-fitting folds
    n_estimators: int = 200  # of the LightGBM nuisance models
    trim: bool = True  # fit and average only over units inside OVERLAP_BAND
    random_state: int = 0


@dataclass
class Overlap:
    propensity: np.ndarray
    share_outside: float
    n_low: int
    n_high: int
    warning: str | None

    def row(self) -> dict:
        return {
            "overlap_outside_share": round(self.share_outside, 4),
            "overlap_below": self.n_low,
            "overlap_above": self.n_high,
            "propensity_min": round(float(self.propensity.min()), 4),
            "propensity_max": round(float(self.propensity.max()), 4),
        }


@dataclass
class EffectEstimate:
    treatment: str
    effect: str  # total | direct
    modifiers: list[str]
    controls: list[str]
    cate: np.ndarray
    cate_lower: np.ndarray
    cate_upper: np.ndarray
    ate: float
    ate_lower: float
    ate_upper: float
    in_overlap: np.ndarray
    overlap: Overlap
    model: object = field(repr=False, default=None)


def _lgbm(kind: str, config: EstimatorConfig):
    import lightgbm as lgb

    params = dict(
        n_estimators=config.n_estimators, learning_rate=0.05, num_leaves=15, min_child_samples=20,
        subsample=0.8, subsample_freq=1, colsample_bytree=0.9, n_jobs=1, verbose=-1,
        random_state=config.random_state,
    )
    return lgb.LGBMClassifier(**params) if kind == "classifier" else lgb.LGBMRegressor(**params)


def propensity_scores(data: pd.DataFrame, treatment: str, features: list[str], config: EstimatorConfig) -> np.ndarray:
    """Cross-fitted P(treatment = 1 | features)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    t = data[treatment].to_numpy().astype(int)
    if not features:
        return np.full(len(t), t.mean())
    folds = StratifiedKFold(config.folds, shuffle=True, random_state=config.random_state)
    return cross_val_predict(
        _lgbm("classifier", config), data[features].to_numpy(float), t, cv=folds, method="predict_proba"
    )[:, 1]


def check_overlap(propensity: np.ndarray, treatment: str) -> Overlap:
    low, high = OVERLAP_BAND
    n_low, n_high = int((propensity < low).sum()), int((propensity > high).sum())
    share = (n_low + n_high) / len(propensity)
    warning = None
    if share > OVERLAP_WARN_SHARE:
        warning = (
            f"poor overlap for {treatment!r}: {share:.1%} of units have a propensity outside "
            f"[{low}, {high}] ({n_low} below, {n_high} above); they are trimmed from the fit and the ATE, "
            f"and their CATEs extrapolate the fitted model"
        )
    return Overlap(propensity, share, n_low, n_high, warning)


def make_estimator(config: EstimatorConfig):
    if config.estimator == "linear_dml":
        from econml.dml import LinearDML

        return LinearDML(
            model_y=_lgbm("regressor", config), model_t=_lgbm("classifier", config),
            discrete_treatment=True, cv=config.folds, random_state=config.random_state,
        )
    if config.estimator == "causal_forest_dml":
        from econml.dml import CausalForestDML

        return CausalForestDML(
            model_y=_lgbm("regressor", config), model_t=_lgbm("classifier", config),
            discrete_treatment=True, cv=config.folds, n_estimators=400, min_samples_leaf=20,
            random_state=config.random_state, n_jobs=1,
        )
    raise ValueError(f"unknown estimator {config.estimator!r}; expected 'linear_dml' or 'causal_forest_dml'")


def estimate_effect(
    data: pd.DataFrame,
    treatment: str,
    outcome: str,
    modifiers: list[str],
    controls: list[str],
    effect: str = "total",
    config: EstimatorConfig = EstimatorConfig(),
) -> EffectEstimate:
    """Per-unit CATE and ATE of a binary `treatment` on `outcome` by double machine learning.

    The adjustment set is `modifiers` ∪ `controls`; the CATE varies with `modifiers` only.
    """
    features = list(dict.fromkeys([*modifiers, *controls]))
    overlap = check_overlap(propensity_scores(data, treatment, features, config), treatment)
    low, high = OVERLAP_BAND
    inside = (overlap.propensity >= low) & (overlap.propensity <= high)
    fit_rows = inside if config.trim and inside.sum() >= 50 else np.ones(len(data), bool)
    y = data[outcome].to_numpy(float)
    t = data[treatment].to_numpy().astype(int)
    x_all = data[modifiers].to_numpy(float) if modifiers else None
    w_all = data[controls].to_numpy(float) if controls else None
    est = make_estimator(config)
    est.fit(
        y[fit_rows], t[fit_rows],
        X=None if x_all is None else x_all[fit_rows],
        W=None if w_all is None else w_all[fit_rows],
    )
    if x_all is None:
        cate = np.full(len(data), float(est.ate()))
        lo, hi = (np.full(len(data), float(v)) for v in est.ate_interval(alpha=0.05))
        ate, (ate_lo, ate_hi) = float(est.ate()), map(float, est.ate_interval(alpha=0.05))
    else:
        cate = np.asarray(est.effect(x_all), float).ravel()
        lo, hi = (np.asarray(v, float).ravel() for v in est.effect_interval(x_all, alpha=0.05))
        x_fit = x_all[fit_rows]
        ate = float(est.ate(x_fit))
        ate_lo, ate_hi = (float(v) for v in est.ate_interval(x_fit, alpha=0.05))
    return EffectEstimate(
        treatment, effect, list(modifiers), list(controls), cate, lo, hi, ate, ate_lo, ate_hi,
        fit_rows, overlap, est,
    )
