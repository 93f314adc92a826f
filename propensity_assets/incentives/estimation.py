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
    # Fit and average only over units inside OVERLAP_BAND: a choice the study records (`trim:`), not a default.
    trim: bool = False
    # Choose the final stage among `specification.candidates` by out-of-sample R-loss; False: the
    # configured `estimator` over every modifier (still standardized, scored and validated).
    select: bool = True
    # Choose each DML nuisance model among a few LightGBM settings by cross-validated loss.
    tune_nuisances: bool = True
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
    in_overlap: np.ndarray  # the unit's propensity is inside OVERLAP_BAND
    overlap: Overlap
    model: object = field(repr=False, default=None)  # a specification.ScaledCate over `modifiers`
    in_fit: np.ndarray | None = None  # the unit was in the final fit (all units unless trimmed)
    population: np.ndarray | None = None  # the units the ATE averages over
    population_label: str = "all units"
    specification: str = ""
    choice: object = field(repr=False, default=None)  # specification.Choice
    ranking: object = field(repr=False, default=None)  # validation.Ranking
    extrapolation: object = field(repr=False, default=None)  # validation.Extrapolation
    propensity_model: object = field(repr=False, default=None)  # for the overlap of new units
    nuisances: Nuisances | None = None

    @property
    def cate_drives_policy(self) -> bool:
        return self.ranking is None or self.ranking.passed

    @property
    def fit_rows_or_all(self) -> np.ndarray:
        return np.ones(len(self.cate), bool) if self.in_fit is None else self.in_fit

    @property
    def population_or_all(self) -> np.ndarray:
        return np.ones(len(self.cate), bool) if self.population is None else self.population

    def validation_row(self) -> dict:
        row = {} if self.ranking is None else self.ranking.row()
        if self.extrapolation is not None:
            row.update(extrapolation_passed=self.extrapolation.passed, extrapolation_detail=self.extrapolation.detail)
        return row


def _lgbm(kind: str, config: EstimatorConfig, num_leaves: int = 15, n_estimators: int | None = None,
          linear_tree: bool = False):
    import lightgbm as lgb

    params = dict(
        n_estimators=config.n_estimators if n_estimators is None else n_estimators, learning_rate=0.05,
        num_leaves=num_leaves, min_child_samples=20, subsample=0.8, subsample_freq=1, colsample_bytree=0.9, n_jobs=1,
        verbose=-1, random_state=config.random_state, linear_tree=linear_tree,
    )
    return lgb.LGBMClassifier(**params) if kind == "classifier" else lgb.LGBMRegressor(**params)


# The nuisance candidates: LightGBM of a few complexities; the outcome's may also grow linear
# trees (a piecewise-linear fit of outcomes that are linear in heavy-tailed covariates).
OUTCOME_CANDIDATES = {
    "lightgbm": {},
    "lightgbm_linear_trees": {"linear_tree": True},
    "lightgbm_linear_trees_7_leaves": {"linear_tree": True, "num_leaves": 7},
}
TREATMENT_CANDIDATES = {
    "lightgbm_4_leaves": {"num_leaves": 4, "n_estimators": 300},
    "lightgbm_8_leaves": {"num_leaves": 8, "n_estimators": 200},
    "lightgbm": {},
}


@dataclass(frozen=True)
class Nuisances:
    """The outcome and treatment models DML residualizes with, each the candidate with the lowest
    cross-validated loss (outcome: mean squared error; treatment: log-loss): an overfitted
    propensity near 0 or 1 is what biases DML where treatment is nearly determined."""
    outcome: str
    treatment: str
    losses: dict  # "outcome.lightgbm" → loss, …

    def models(self, config: EstimatorConfig):
        return (_lgbm("regressor", config, **OUTCOME_CANDIDATES[self.outcome]),
                _lgbm("classifier", config, **TREATMENT_CANDIDATES[self.treatment]))


def choose_nuisances(f: np.ndarray, y: np.ndarray, t: np.ndarray, config: EstimatorConfig) -> Nuisances:
    """Each nuisance's candidate with the lowest `config.folds`-fold cross-validated loss on these rows."""
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

    if not config.tune_nuisances:
        return Nuisances("lightgbm", "lightgbm", {})
    losses = {}
    y_folds = KFold(config.folds, shuffle=True, random_state=config.random_state)
    t_folds = StratifiedKFold(config.folds, shuffle=True, random_state=config.random_state)
    for name, params in OUTCOME_CANDIDATES.items():
        pred = cross_val_predict(_lgbm("regressor", config, **params), f, y, cv=y_folds)
        losses[f"outcome.{name}"] = float(np.mean((y - pred) ** 2))
    for name, params in TREATMENT_CANDIDATES.items():
        p = cross_val_predict(_lgbm("classifier", config, **params), f, t, cv=t_folds, method="predict_proba")[:, 1]
        p = np.clip(p, 1e-6, 1 - 1e-6)
        losses[f"treatment.{name}"] = float(-np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)))
    best = lambda part, names: min(names, key=lambda n: losses[f"{part}.{n}"])  # noqa: E731
    return Nuisances(best("outcome", OUTCOME_CANDIDATES), best("treatment", TREATMENT_CANDIDATES), losses)


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
            f"[{low}, {high}] ({n_low} below, {n_high} above); their CATEs extrapolate the fitted model"
        )
    return Overlap(propensity, share, n_low, n_high, warning)


def make_estimator(config: EstimatorConfig, model_y=None, model_t=None):
    model_y = _lgbm("regressor", config) if model_y is None else model_y
    model_t = _lgbm("classifier", config) if model_t is None else model_t
    if config.estimator == "linear_dml":
        from econml.dml import LinearDML

        return LinearDML(
            model_y=model_y, model_t=model_t,
            discrete_treatment=True, cv=config.folds, random_state=config.random_state,
        )
    if config.estimator == "causal_forest_dml":
        from econml.dml import CausalForestDML

        return CausalForestDML(
            model_y=model_y, model_t=model_t,
            discrete_treatment=True, cv=config.folds, n_estimators=400, min_samples_leaf=20,
            random_state=config.random_state, n_jobs=1,
        )
    raise ValueError(f"unknown estimator {config.estimator!r}; expected 'linear_dml' or 'causal_forest_dml'")


def population_label(population: np.ndarray) -> str:
    """`all units`, or `the 1,234 units inside overlap (12.3 %)`."""
    n = int(population.sum())
    return "all units" if n == len(population) else f"the {n:,} units inside overlap ({n / len(population) * 100:.1f} %)"


def estimate_effect(
    data: pd.DataFrame,
    treatment: str,
    outcome: str,
    modifiers: list[str],
    controls: list[str],
    effect: str = "total",
    config: EstimatorConfig = EstimatorConfig(),
    declared: list[str] | None = None,
) -> EffectEstimate:
    """Per-unit CATE and ATE of a binary `treatment` on `outcome` by double machine learning.

    The adjustment set is `modifiers` ∪ `controls`; the CATE varies with the chosen specification's
    modifiers (`declared` ones, all, sparse or a forest: `specification.choose`). The CATE is null
    for units outside overlap unless the model passed the extrapolation check there, and the ATE then
    covers the units inside overlap only (`population_label`).
    """
    from sklearn.base import clone

    from propensity_assets.incentives import specification as spec_lib
    from propensity_assets.incentives import validation

    features = list(dict.fromkeys([*modifiers, *controls]))
    overlap = check_overlap(propensity_scores(data, treatment, features, config), treatment)
    low, high = OVERLAP_BAND
    inside = (overlap.propensity >= low) & (overlap.propensity <= high)
    fit_rows = inside if config.trim and inside.sum() >= 50 else np.ones(len(data), bool)
    y = data[outcome].to_numpy(float)
    t = data[treatment].to_numpy().astype(int)
    f_all = data[features].to_numpy(float)
    nuisances = choose_nuisances(f_all[fit_rows], y[fit_rows], t[fit_rows], config)
    model_y, model_t = nuisances.models(config)
    if not modifiers:  # nothing for the effect to vary with: a constant effect, no choice to make
        est = make_estimator(config, model_y, model_t)
        w = data[controls].to_numpy(float) if controls else None
        est.fit(y[fit_rows], t[fit_rows], X=None, W=None if w is None else w[fit_rows])
        ate, (ate_lo, ate_hi) = float(est.ate()), map(float, est.ate_interval(alpha=0.05))
        full = lambda v: np.full(len(data), float(v))  # noqa: E731
        return EffectEstimate(treatment, effect, [], list(controls), full(ate), full(ate_lo), full(ate_hi), ate, ate_lo,
                              ate_hi, inside, overlap, est, fit_rows, fit_rows, population_label(fit_rows), "constant",
                              nuisances=nuisances)
    x_all = data[modifiers].to_numpy(float)
    w_all = data[controls].to_numpy(float) if controls else None
    rows = np.flatnonzero(fit_rows)
    w_fit = None if w_all is None else w_all[rows]
    if config.select and config.estimator == "linear_dml":  # a causal forest asked for is used as asked
        specs = spec_lib.candidates(declared or [], modifiers)
    else:
        final = "forest" if config.estimator == "causal_forest_dml" else "linear"
        specs = [spec_lib.Spec(config.estimator, tuple(modifiers), final)]
    choice = spec_lib.choose(specs, modifiers, y[rows], t[rows], x_all[rows], w_fit, model_y, model_t, config.folds,
                             config.random_state)
    tr, va = rows[choice.train], rows[choice.validation]
    ranking = validation.rank_validation(choice.models[choice.spec.name], x_all[tr], x_all[va], f_all[tr], f_all[va],
                                         t[tr], t[va], y[tr], y[va], clone(model_y), clone(model_t), config.folds)
    model = spec_lib.fit(choice.spec, modifiers, y[rows], t[rows], x_all[rows], w_fit, clone(model_y), clone(model_t),
                         config.folds, config.random_state)
    cate = np.asarray(model.effect(x_all), float).ravel()
    lo, hi = (np.asarray(v, float).ravel() for v in model.effect_interval(x_all, alpha=0.05))
    extrapolation = validation.extrapolation_check(lo, hi, inside)
    # Outside overlap the model speaks only when it passed the extrapolation check there.
    silent = np.zeros(len(data), bool) if extrapolation.passed else ~inside
    cate, lo, hi = (np.where(silent, np.nan, v) for v in (cate, lo, hi))
    population = fit_rows & ~silent  # a trimmed fit's ATE covers the units it was fitted on
    ate = float(model.ate(x_all[population]))
    ate_lo, ate_hi = (float(v) for v in model.ate_interval(x_all[population], alpha=0.05))
    # New units are scored from their covariates alone (the other treatments are not known yet).
    propensity_model = clone(model_t).fit(x_all, t)
    return EffectEstimate(
        treatment, effect, list(modifiers), list(controls), cate, lo, hi, ate, ate_lo, ate_hi,
        inside, overlap, model, fit_rows, population, population_label(population), choice.spec.name, choice,
        ranking, extrapolation, propensity_model, nuisances,
    )
