"""Each DoWhy refuter on a case built to fail it, and the pass rules."""

import sys
import types

import numpy as np
import pandas as pd
import pytest
from econml.dml import LinearDML
from scipy.special import expit
from sklearn.linear_model import LinearRegression, LogisticRegression

from propensity_assets.incentives.refutation import judge, refute


def _data(n=800, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = rng.binomial(1, expit(x))
    y = 1_000 * t + 2_000 * x + rng.normal(0, 300, n)
    return pd.DataFrame({"x": x, "w": rng.normal(size=n), "t": t, "y": y})


class _Saboteur(LinearDML):
    """LinearDML with a flaw a refuter should catch; DoWhy re-creates it by class path."""

    def __init__(self, *, model_y=None, model_t=None, discrete_treatment=True, cv=2, random_state=0):
        super().__init__(model_y=model_y or LinearRegression(), model_t=model_t or LogisticRegression(),
                         discrete_treatment=discrete_treatment, cv=cv, random_state=random_state)

    def _bias(self):
        return 0.0

    def effect(self, X=None, *, T0=0, T1=1):
        return super().effect(X, T0=T0, T1=T1) + self._bias()

    def fit(self, Y, T, *, X=None, W=None, **kwargs):
        self._n, self._w = len(Y), 0 if W is None else np.shape(W)[1]
        return super().fit(Y, T, X=X, W=W, **kwargs)


class ConstantEffect(_Saboteur):
    """Reports 1,000 whatever the data: placebo and dummy outcome must fail."""

    def effect(self, X=None, *, T0=0, T1=1):
        return np.full(len(X), 1_000.0)


class ConfounderSensitive(_Saboteur):
    """Moves with every added control: random common cause must fail."""

    def _bias(self):
        return 500.0 * self._w


class SampleSizeSensitive(_Saboteur):
    """Depends on n: the 80 % subset must fail."""

    def _bias(self):
        return 2e6 / self._n


# DoWhy loads a third-party estimator by its dotted path and treats the first component as
# the package ("econml"), so the saboteurs are published under an econml module name.
_module = types.ModuleType("econml._incentive_saboteurs")
for _cls in (_Saboteur, ConstantEffect, ConfounderSensitive, SampleSizeSensitive):
    _cls.__module__ = _module.__name__
    setattr(_module, _cls.__name__, _cls)
sys.modules[_module.__name__] = _module


def _run(estimator, refuters):
    return {r.refuter: r for r in refute(estimator, _data(), "t", "y", ["x"], ["w"], "total", half_width=60,
                                         refuters=refuters)}


def test_sound_estimator_passes_all():
    results = _run(_Saboteur(), None)
    assert all(r.passed for r in results.values()), {k: r.detail for k, r in results.items()}


@pytest.mark.parametrize(
    "estimator, refuter",
    [
        (ConstantEffect(), "placebo_treatment"),
        (ConstantEffect(), "dummy_outcome"),
        (ConfounderSensitive(), "random_common_cause"),
        (SampleSizeSensitive(), "data_subset"),
    ],
)
def test_each_refuter_fails_its_case(estimator, refuter):
    result = _run(estimator, [refuter])[refuter]
    assert not result.passed, result.detail


def test_judge_rules():
    assert judge("placebo_treatment", 5_000, 100, 60)[0] and not judge("placebo_treatment", 5_000, 130, 60)[0]
    assert judge("random_common_cause", 5_000, 5_050, 60)[0] and not judge("random_common_cause", 5_000, 5_070, 60)[0]
    assert judge("data_subset", 5_000, 4_900, 60)[0] and not judge("data_subset", 5_000, 4_870, 60)[0]
    assert judge("dummy_outcome", 5_000, 0.05, 60, 0.02)[0] and not judge("dummy_outcome", 5_000, 0.1, 60, 0.02)[0]


def test_the_dummy_outcome_tolerance_follows_the_treatment_residual():
    """Under near-deterministic assignment (t ≈ 1{x > 0}) DML learns from the residual t − p(x),
    whose spread is far below t's: the tolerance is 4 / (√n · sd of that residual)."""
    rng = np.random.default_rng(3)
    n = 800
    x = rng.normal(size=n)
    t = rng.binomial(1, expit(6 * x))
    data = pd.DataFrame({"x": x, "w": rng.normal(size=n), "t": t, "y": 1_000 * t + 2_000 * x + rng.normal(0, 300, n)})
    [result] = refute(_Saboteur(), data, "t", "y", ["x"], ["w"], "total", half_width=60, refuters=["dummy_outcome"])
    naive = 4 / (np.sqrt(n) * t.std())  # what sd(t) would allow
    assert result.tolerance > 1.5 * naive
    assert result.passed, result.detail
