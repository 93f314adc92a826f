"""The effect on the treated of a retail campaign type, and where it varies (INCENTIVES.md §2).

`estimate_att` is AIPW with cross-fitting grouped by household, household-clustered
intervals and overlap trimming; `fit_projection` and `project` give the CATE as a linear
projection of the doubly robust effects on a few modifiers. Pure numpy and pandas.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from propensity_assets.incentives.estimation import OVERLAP_BAND, _lgbm
from propensity_assets.incentives.retail_study import RetailConfig

MODIFIERS = ("grp_spend_90d", "grp_baskets_90d", "hh_spend_90d")  # where a targeting effect may vary
Z95 = 1.959963984540054


@dataclass
class AttEstimate:
    att: float
    lower: float
    upper: float
    se: float
    n_treated: int
    n_control: int
    trimmed: int  # rows outside the overlap band, left out of the fit and the average
    propensity: np.ndarray = field(repr=False)
    inside: np.ndarray = field(repr=False)
    pseudo: np.ndarray = field(repr=False)  # per-row doubly robust effect (for the CATE projection)


def household_folds(clusters: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold per row such that every row of a household falls in the same fold."""
    unique = np.unique(clusters)
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = dict(zip(unique[order], np.arange(len(unique)) % folds))
    return np.array([fold_of[c] for c in clusters])


def clustered_se(influence: np.ndarray, clusters: np.ndarray) -> float:
    """The standard error of a mean of influence values, summed within clusters first."""
    sums = pd.Series(influence).groupby(np.asarray(clusters)).sum().to_numpy()
    return float(np.sqrt(np.sum(sums ** 2)) / len(influence))


def att_from_nuisances(y, t, e, m0, m1, clusters) -> tuple[float, float, np.ndarray]:
    """(ATT, its household-clustered standard error, per-row DR effects) from cross-fitted
    P(T=1|x) = e, E[Y|x,T=0] = m0 and E[Y|x,T=1] = m1.

    ATT = Σ [T (Y − m0) − (1 − T) e/(1 − e) (Y − m0)] / Σ T, the doubly robust score of the
    effect on the treated; its influence value per row is [that term − T·ATT] / P(T = 1).
    """
    y, t, e, m0, m1 = (np.asarray(v, float) for v in (y, t, e, m0, m1))
    term = t * (y - m0) - (1 - t) * e / (1 - e) * (y - m0)
    att = float(term.sum() / t.sum())
    influence = (term - t * att) / t.mean()
    pseudo = m1 - m0 + t * (y - m1) / e - (1 - t) * (y - m0) / (1 - e)
    return att, clustered_se(influence, clusters), pseudo


def estimate_att(x: np.ndarray, y: np.ndarray, t: np.ndarray, clusters: np.ndarray, config: RetailConfig) -> AttEstimate:
    """The effect on the treated: cross-fitted (by household) LightGBM nuisances of the
    incentive stage's estimator, units outside its overlap band trimmed, AIPW score."""
    est = config.estimator()
    t = np.asarray(t, int)
    folds = household_folds(clusters, est.folds, est.random_state)
    e, m0, m1 = np.zeros(len(y)), np.zeros(len(y)), np.zeros(len(y))
    for k in range(est.folds):
        train, test = folds != k, folds == k
        e[test] = _lgbm("classifier", est).fit(x[train], t[train]).predict_proba(x[test])[:, 1]
        m0[test] = _lgbm("regressor", est).fit(x[train & (t == 0)], y[train & (t == 0)]).predict(x[test])
        m1[test] = _lgbm("regressor", est).fit(x[train & (t == 1)], y[train & (t == 1)]).predict(x[test])
    low, high = OVERLAP_BAND
    inside = (e >= low) & (e <= high)
    if inside[t == 1].sum() < config.min_rows or inside[t == 0].sum() < config.min_rows:
        inside = np.ones(len(y), bool)  # too few left to trim: keep all, the overlap warning says so
    att, se, pseudo = att_from_nuisances(y[inside], t[inside], e[inside], m0[inside], m1[inside], clusters[inside])
    full_pseudo = np.full(len(y), np.nan)
    full_pseudo[inside] = pseudo
    return AttEstimate(att, att - Z95 * se, att + Z95 * se, se, int(t[inside].sum()), int((1 - t[inside]).sum()),
                       int((~inside).sum()), e, inside, full_pseudo)


def modifiers_of(frame: pd.DataFrame) -> np.ndarray:
    return frame[list(MODIFIERS)].fillna(0.0).to_numpy(float)


def fit_projection(pseudo: np.ndarray, modifiers: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear projection of the DR effects on the modifiers (with intercept): its coefficients
    and their household-clustered covariance."""
    keep = ~np.isnan(pseudo)
    x = np.column_stack([np.ones(keep.sum()), modifiers[keep]])
    xtx_inv = np.linalg.pinv(x.T @ x)
    beta = xtx_inv @ x.T @ pseudo[keep]
    resid = pseudo[keep] - x @ beta
    scores = pd.DataFrame(x * resid[:, None]).groupby(np.asarray(clusters)[keep]).sum().to_numpy()
    cov = xtx_inv @ (scores.T @ scores) @ xtx_inv
    return beta, cov


def project(beta: np.ndarray, cov: np.ndarray, at: np.ndarray):
    """(cate, lower, upper) of a fitted projection at the modifier rows `at`, 95 % intervals."""
    z = np.column_stack([np.ones(len(at)), at])
    cate = z @ beta
    half = Z95 * np.sqrt(np.einsum("ij,jk,ik->i", z, cov, z))
    return cate, cate - half, cate + half


def cate_projection(pseudo: np.ndarray, modifiers: np.ndarray, clusters: np.ndarray, at: np.ndarray):
    """Linear projection of the DR effects on the modifiers (with intercept), evaluated at
    `at`: (cate, lower, upper) with household-clustered 95 % intervals."""
    return project(*fit_projection(pseudo, modifiers, clusters), at)
