"""Refutation: DoWhy's refuters run on the EconML estimate (EconML's `.dowhy` wrapper).

Pure logic. Each refuter re-fits the same estimator on altered data:

- placebo treatment: the treatment permuted; the effect must vanish;
- random common cause: a random confounder added; the effect must not move;
- data subset: refit on 80 % of the units; the effect must not move beyond noise;
- dummy outcome: the outcome replaced by noise; the effect must vanish.

DoWhy's own p-values need many simulations (each a full DML fit), so the verdict
uses the estimate's own precision instead: with h the half-width of the original
ATE's 95 % interval, a refutation passes when the placebo effect is within 4 standard errors of a
permuted treatment's estimate (sd of the outcome residual / (√n · sd(T)): the residual keeps the real
treatment's variation, so ±2h would be too tight) of 0,
the dummy-outcome effect within 4 standard errors of 0 (the dummy is unit noise: 1 / (√n · the sd of
the treatment's DML residual)), the random-common-cause effect within
h of the original, and the subset effect within 2h of it. DoWhy's p-values are
reported beside.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

REFUTERS = {
    "placebo_treatment": ("placebo_treatment_refuter", {"placebo_type": "permute"}),
    "random_common_cause": ("random_common_cause", {}),
    "data_subset": ("data_subset_refuter", {"subset_fraction": 0.8}),
    "dummy_outcome": ("dummy_outcome_refuter", {}),
}


@dataclass(frozen=True)
class Refutation:
    refuter: str
    treatment: str
    effect: str
    original: float
    new: float
    tolerance: float
    passed: bool
    p_value: float | None
    detail: str

    def row(self) -> dict:
        return {k: getattr(self, k) for k in ("refuter", "treatment", "effect", "original", "new", "tolerance", "passed", "p_value", "detail")}


def judge(refuter: str, original: float, new: float, half_width: float, dummy_scale: float | None = None,
          placebo_scale: float | None = None) -> tuple[bool, float, str]:
    """Pass/fail of one refutation, from the original ATE, the refuted one and the CI half-width
    (and, when given, the standard error of a placebo treatment's estimate)."""
    if refuter == "placebo_treatment":
        tol = 2 * half_width if placebo_scale is None else 4 * placebo_scale
        return abs(new) <= tol, tol, f"placebo effect {new:,.1f} must be within ±{tol:,.1f} of 0"
    if refuter == "random_common_cause":
        tol = half_width
        return abs(new - original) <= tol, tol, f"effect with a random confounder {new:,.1f} must be within ±{tol:,.1f} of {original:,.1f}"
    if refuter == "data_subset":
        tol = 2 * half_width
        return abs(new - original) <= tol, tol, f"effect on an 80 % subset {new:,.1f} must be within ±{tol:,.1f} of {original:,.1f}"
    if refuter == "dummy_outcome":
        # DoWhy's dummy outcome is standard normal noise, so the interval of the original
        # outcome says nothing about it: use 4 standard errors of DML's estimate on unit-variance
        # noise, 1 / (√n · sd of the treatment's residual).
        if dummy_scale is None:
            raise ValueError("dummy_outcome needs dummy_scale (the standard error on unit noise)")
        tol = 4 * dummy_scale
        return abs(new) <= tol, tol, f"effect on a dummy outcome {new:,.3f} must be within ±{tol:,.1f} of 0"
    raise ValueError(f"unknown refuter {refuter!r}; expected one of {list(REFUTERS)}")


def _safe(name: str) -> str:
    return re.sub(r"\W+", "_", name)


def refute(
    estimator,
    data: pd.DataFrame,
    treatment: str,
    outcome: str,
    modifiers: list[str],
    controls: list[str],
    effect: str,
    half_width: float | None,
    refuters: list[str] | None = None,
    num_simulations: int = 2,
    seed: int = 0,
) -> list[Refutation]:
    """Fit `estimator` (an unfitted EconML estimator) through DoWhy and run the refuters; the
    tolerances come from `half_width`, or, when None, from the refitted estimator's own interval."""
    wrapper = estimator.dowhy
    x = data[modifiers].to_numpy(float) if modifiers else None
    w = data[controls].to_numpy(float) if controls else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapper.fit(
            data[outcome].to_numpy(float), data[treatment].to_numpy().astype(int), X=x, W=w,
            outcome_names=[_safe(outcome)], treatment_names=[_safe(treatment)],
            feature_names=[_safe(c) for c in modifiers] or None, confounder_names=[_safe(c) for c in controls] or None,
            cache_values=True,
        )
        original = float(wrapper.estimate_.value)
        # DML's standard error on unit noise is 1 / (√n · sd of the treatment's residual): under
        # near-deterministic assignment that residual, not the treatment, is what varies. A permuted
        # treatment's residual is the treatment's spread, and its outcome residual keeps the real
        # treatment's variation: sd(outcome residual) / (√n · sd(T)).
        y_res, t_res = (np.asarray(v, float).ravel() for v in wrapper.residuals_[:2])
        n = len(t_res)
        dummy_se = 1.0 / (np.sqrt(n) * max(float(t_res.std()), 1e-9))
        t_sd = max(float(data[treatment].to_numpy(float).std()), 1e-9)
        placebo_se = float(y_res.std()) / (np.sqrt(n) * t_sd)
        if half_width is None:  # the refitted estimator's own 95 % interval
            lo, hi = (wrapper.ate_interval(X=x, alpha=0.05) if x is not None else wrapper.ate_interval(alpha=0.05))
            half_width = (float(hi) - float(lo)) / 2
        results = []
        for name in refuters or list(REFUTERS):
            method, kwargs = REFUTERS[name]
            res = wrapper.refute_estimate(method_name=method, num_simulations=num_simulations, random_seed=seed, **kwargs)
            res = res[0] if isinstance(res, list) else res
            new = float(np.asarray(res.new_effect).ravel()[0])
            p = (res.refutation_result or {}).get("p_value") if isinstance(res.refutation_result, dict) else None
            passed, tol, detail = judge(name, original, new, half_width, dummy_se, placebo_se)
            results.append(Refutation(name, treatment, effect, original, new, tol, bool(passed),
                                      None if p is None else float(p), detail))
    return results
