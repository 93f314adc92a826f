"""The recommender's option choice on hand-computed profits, and the DR policy value."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from propensity_assets.incentives import recommender as rec


def test_options_in_catalogue_order():
    names = [rec.option_name(o) for o in rec.options(["A", "B", "C"])]
    assert names == ["none", "A", "B", "C", "A+B", "A+C", "B+C", "A+B+C"]


def test_option_choice_on_hand_computed_profits():
    # unit 0: A pays (3,000 − 1,000), B loses (500 − 7,000) → A, profit 2,000
    # unit 1: both pay: A 6,000 − 5,000 = 1,000, B 9,000 − 7,000 = 2,000 → A+B, 3,000
    # unit 2: nothing pays → none, 0; unit 3: a tie at 0 goes to none
    effects = {"A": np.array([3_000, 6_000, 100, 1_000]), "B": np.array([500, 9_000, 0, 0])}
    costs = {"A": np.array([1_000, 5_000, 1_000, 1_000]), "B": np.full(4, 7_000)}
    out = rec.recommend(rec.option_profits(effects, costs, ["A", "B"]))
    assert list(out.recommended) == ["A", "A+B", "none", "none"]
    assert list(out.expected_profit) == [2_000, 3_000, 0, 0]
    assert list(out["expected_profit__A+B"]) == [-4_500, 3_000, -7_900, -7_000]
    assert list(out.columns) == ["recommended", "expected_profit", "expected_profit__none", "expected_profit__A",
                                 "expected_profit__B", "expected_profit__A+B"]


def test_doubly_robust_value_matches_the_truth_on_confounded_data():
    rng = np.random.default_rng(0)
    n = 6000
    x = rng.normal(size=n)
    a = rng.binomial(1, expit(x))
    tau = 1_000 + 800 * x
    y = 2_000 * x + tau * a + rng.normal(0, 500, n)
    data = pd.DataFrame({"x": x, "A": a, "y": y})
    ev = rec.DoublyRobustEvaluator(folds=2, n_estimators=100).fit(data, ["x"], ["A"], "y")
    costs = {"A": np.full(n, 1_000.0)}
    targeted = np.where(tau > 1_000, "A", "none")
    truth = np.mean(2_000 * x + np.where(targeted == "A", tau - 1_000, 0))
    assert ev.value(targeted, costs) == pytest.approx(truth, abs=60)
    assert ev.value(targeted, costs) > ev.value(np.full(n, "none"), costs) + 200
