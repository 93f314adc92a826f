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


def test_the_recommenders_policy_value_is_the_held_out_policys():
    """A hand-built evaluator (outcome model μ per option, propensity 0.5, 4 units): the
    recommender's DR value is its held-out policy's, 13.5, not the in-sample policy's 16.0."""
    ev = rec.DoublyRobustEvaluator()
    ev.names, ev.y = ["none", "A"], np.array([10.0, 20.0, 12.0, 18.0])
    ev.actions = np.array(["none", "A", "none", "A"])
    ev.mu = np.array([[10.0, 15.0], [11.0, 20.0], [12.0, 14.0], [13.0, 16.0]])
    ev.p = np.full((4, 2), 0.5)
    data, costs = pd.DataFrame({"A": [0, 1, 0, 1]}), {"A": np.ones(4)}
    in_sample = np.array(["A", "A", "none", "A"])
    held_out = np.array(["none", "A", "none", "none"])
    # in-sample: μ(π) = 15, 20, 12, 16; unit 4 got A as observed: + (18 − 16) / 0.5 = 4; − 3 costs of 1
    assert ev.value(in_sample, costs) == (15 + 20 + 12 + 16 + 4) / 4 - 0.75 == 16.0
    table = rec.policy_comparison(in_sample, data, costs, ["A"], ev, held_out=held_out)
    values = dict(zip(table["policy"], table["dr_value"]))
    # held out: μ(π) = 10, 20, 12, 13, every observed match has a zero residual; − 1 cost
    assert values["recommended"] == (10 + 20 + 12 + 13) / 4 - 0.25 == 13.5
    assert values["no incentive"] == (10 + 11 + 12 + 13) / 4 == 11.5
    assert rec.policy_comparison(in_sample, data, costs, ["A"], ev).loc[0, "dr_value"] == 16.0


def test_uplift_curve_on_hand_computed_values():
    """Four units, one treatment A costing 1; nobody was treated and every outcome is the
    outcome model's, so a policy's DR value is the mean of μ(x, π) minus the mean cost."""
    evaluator = rec.DoublyRobustEvaluator()
    evaluator.names = [rec.NONE, "A"]
    evaluator.actions = np.array([rec.NONE] * 4, dtype=object)
    evaluator.mu = np.array([[0.0, 10.0], [0.0, 4.0], [0.0, -2.0], [0.0, 6.0]])
    evaluator.p = np.full((4, 2), 0.5)
    evaluator.y = np.zeros(4)
    policy = np.array(["A", "A", rec.NONE, "A"], dtype=object)
    gain = np.array([9.0, 3.0, 0.0, 5.0])  # units 0, 3, 1, then 2 (recommended none)

    curve = rec.uplift_curve(evaluator, policy, gain, {"A": np.ones(4)}, steps=4)

    assert curve["share_targeted"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    # (10 − 1)/4; (10 + 6 − 2)/4; (10 + 6 + 4 − 3)/4; unit 2 keeps none at 100 %.
    assert curve["dr_value"].tolist() == [0.0, 2.25, 3.5, 4.25, 4.25]
    assert curve["random"].tolist() == [0.0, 1.0625, 2.125, 3.1875, 4.25]
