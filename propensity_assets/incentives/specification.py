"""Effect specifications chosen, not assumed: candidate CATE models scored by out-of-sample R-loss.

Pure logic. A study that declares its effect modifiers gets a linear final stage over them
(`declared`), still scored and validated. Otherwise the candidates are, simplest first:

- `sparse`: a sparse (debiased lasso) linear final stage over every pre-treatment covariate;
- `all_covariates`: a linear final stage over every pre-treatment covariate;
- `causal_forest`: a causal forest over every pre-treatment covariate.

Each is fitted on a training split and scored on the held-out split with EconML's `RScorer`
(1 − R-loss / the R-loss of a constant effect; higher is better). The simplest candidate whose
score is within one standard error of the best wins: R-loss weighs each unit by its squared
treatment residual, so it barely sees units outside overlap, and where the scores cannot tell the
candidates apart the parsimonious one extrapolates least. Linear final stages see standardized
modifiers, so no covariate dominates by its raw magnitude.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CANDIDATES = ("declared", "sparse", "all_covariates", "causal_forest")
# The share of units held out to score the candidates (and to validate the chosen one).
VALIDATION_SHARE = 1 / 3


@dataclass(frozen=True)
class Spec:
    name: str
    modifiers: tuple[str, ...]
    final: str  # linear | sparse | forest


def candidates(declared: list[str], modifiers: list[str]) -> list[Spec]:
    """The study's declared modifiers (those among `modifiers`) as its one specification: the study
    says where its effects vary. Without them, the candidates that compete on R-score."""
    declared = [m for m in declared if m in modifiers]
    if declared:
        return [Spec("declared", tuple(declared), "linear")]
    if not modifiers:
        return []
    return [Spec("sparse", tuple(modifiers), "sparse"), Spec("all_covariates", tuple(modifiers), "linear"),
            Spec("causal_forest", tuple(modifiers), "forest")]


def named(name: str, declared: list[str], modifiers: list[str]) -> Spec | None:
    """The specification an estimate recorded as `name` (`EffectEstimate.specification`); None for
    a constant effect (no modifiers)."""
    known = [*candidates(declared, modifiers), *candidates([], modifiers),
             Spec("linear_dml", tuple(modifiers), "linear"), Spec("causal_forest_dml", tuple(modifiers), "forest")]
    return next((s for s in known if s.name == name), None)


class ScaledCate:
    """A fitted EconML DML estimator over some of the columns of X (standardized for a linear final
    stage), answering from the full X: what the scorer, the validation and the recommender pass it."""

    def __init__(self, estimator, columns: list[int], mean: np.ndarray, sd: np.ndarray):
        self.estimator, self.columns, self.mean, self.sd = estimator, columns, mean, sd

    def _x(self, x):
        return (np.asarray(x, float)[:, self.columns] - self.mean) / self.sd

    def const_marginal_effect(self, X):
        return self.estimator.const_marginal_effect(self._x(X))

    def effect(self, X, T0=0, T1=1):
        return self.estimator.effect(self._x(X), T0=T0, T1=T1)

    def effect_interval(self, X, alpha=0.05):
        return self.estimator.effect_interval(self._x(X), alpha=alpha)

    def ate(self, X):
        return self.estimator.ate(self._x(X))

    def ate_interval(self, X, alpha=0.05):
        return self.estimator.ate_interval(self._x(X), alpha=alpha)


def make(spec: Spec, model_y, model_t, folds: int, random_state: int):
    from econml.dml import CausalForestDML, LinearDML, SparseLinearDML

    common = dict(model_y=model_y, model_t=model_t, discrete_treatment=True, cv=folds, random_state=random_state)
    if spec.final == "linear":
        return LinearDML(**common)
    if spec.final == "sparse":
        return SparseLinearDML(**common, n_jobs=1)
    if spec.final == "forest":
        return CausalForestDML(**common, n_estimators=200, min_samples_leaf=20, n_jobs=1)
    raise ValueError(f"unknown final stage {spec.final!r}; expected linear, sparse or forest")


def fit(spec: Spec, all_modifiers: list[str], y, t, x_all, w, model_y, model_t, folds: int, random_state: int) -> ScaledCate:
    """The spec's DML fitted on these rows; `x_all` holds every column of `all_modifiers`. The
    modifiers the spec leaves out stay in the adjustment set, as controls."""
    cols = [all_modifiers.index(m) for m in spec.modifiers]
    x = x_all[:, cols]
    rest = [i for i in range(x_all.shape[1]) if i not in cols]
    if rest:
        w = x_all[:, rest] if w is None else np.column_stack([x_all[:, rest], w])
    mean, sd = x.mean(axis=0), x.std(axis=0)
    if spec.final == "forest":  # trees are scale-free; keep the raw values readable
        mean, sd = np.zeros(len(cols)), np.ones(len(cols))
    sd = np.where(sd > 0, sd, 1.0)
    est = make(spec, model_y, model_t, folds, random_state)
    est.fit(y, t, X=(x - mean) / sd, W=w)
    return ScaledCate(est, cols, mean, sd)


@dataclass
class Choice:
    spec: Spec
    scores: dict[str, float]  # candidate → R-score on the held-out split
    standard_errors: dict[str, float]  # candidate → standard error of its score's gap to the best
    models: dict[str, ScaledCate]  # candidate → fitted on the training split
    train: np.ndarray  # row indices
    validation: np.ndarray

    def rows(self) -> list[dict]:
        return [{"candidate": n, "r_score": self.scores[n], "se_of_gap": self.standard_errors[n],
                 "chosen": n == self.spec.name} for n in self.scores]


def pick(scores: dict[str, float], standard_errors: dict[str, float], order: list[str]) -> str:
    """The first candidate in `order` (simplest first) whose score is within one standard error of the best."""
    best = max(scores.values())
    return next(n for n in order if scores[n] >= best - standard_errors[n])


def choose(specs: list[Spec], all_modifiers: list[str], y, t, x_all, w, model_y, model_t, folds: int,
           random_state: int) -> Choice:
    """Fit every candidate on a training split, score it on the held-out split, pick one (see the module)."""
    from econml.score import RScorer
    from sklearn.base import clone
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    train, val = train_test_split(rows, test_size=VALIDATION_SHARE, stratify=t, random_state=random_state)
    wv = None if w is None else w[val]
    scorer = RScorer(model_y=clone(model_y), model_t=clone(model_t), discrete_treatment=True, cv=folds,
                     random_state=random_state).fit(y[val], t[val], X=x_all[val], W=wv)
    # RScorer.score's own residuals, kept per unit for the standard error of a gap.
    y_res, t_res = (np.asarray(v, float).reshape(len(val), -1)[:, 0] for v in scorer.lineardml_._cached_values.nuisances)
    models, losses, scores = {}, {}, {}
    for spec in specs:
        models[spec.name] = fit(spec, all_modifiers, y[train], t[train], x_all[train], None if w is None else w[train],
                                clone(model_y), clone(model_t), folds, random_state)
        theta = np.asarray(models[spec.name].const_marginal_effect(x_all[val]), float).reshape(len(val), -1)[:, 0]
        losses[spec.name] = (y_res - theta * t_res) ** 2
        scores[spec.name] = float(scorer.score(models[spec.name]))
    best = max(scores, key=scores.get)
    ses = {n: float(np.std(losses[n] - losses[best], ddof=1) / np.sqrt(len(val)) / scorer.base_score_) for n in scores}
    chosen = pick(scores, ses, [s.name for s in specs])
    return Choice(next(s for s in specs if s.name == chosen), scores, ses, models, train, val)
