"""Generator threshold mode, the specification choice, populations, the extrapolation check and the fallback."""

import numpy as np
import pandas as pd
import pytest

from propensity_assets.incentives import specification as spec
from propensity_assets.incentives.estimation import EffectEstimate, population_label
from propensity_assets.incentives.generator import GeneratorConfig, generate_software_company
from propensity_assets.incentives.recommender import DoublyRobustEvaluator, best_single_option
from propensity_assets.incentives.study import verdict
from propensity_assets.incentives.validation import extrapolation_check


def test_threshold_assignment_is_near_deterministic_and_keeps_the_effects():
    data = generate_software_company(GeneratorConfig(n=4000, seed=2, assignment="threshold", mediator_noise=0.0))
    # Discount is a threshold of log Employee Count shifted by the Major and Commercial flags.
    score = np.log(data["Employee Count"])
    score = (score - score.mean()) / score.std() + 0.8 * data["Major Flag"] - 0.4 * data["Commercial Flag"]
    agree = ((score > score.median()).astype(int) == data["Discount"]).mean()
    assert agree > 0.99
    assert data[["Tech Support", "Discount", "New Engagement Strategy"]].mean().between(0.45, 0.55).all()
    tau_ts = 5_000 + 500 * data["Global Flag"] + 0.02 * data["Size"]
    assert np.allclose(data["Total Treatment Effect: Tech Support"], tau_ts + 924.2317, atol=1e-3)
    with pytest.raises(ValueError, match="unknown assignment 'lottery'; expected one of \\('random', 'threshold'\\)"):
        generate_software_company(GeneratorConfig(n=10, assignment="lottery"))


def test_declared_modifiers_are_the_specification_else_the_candidates_compete_simplest_first():
    # The study's declared modifiers (those the graph admits) are its one specification.
    assert spec.candidates(["Size", "Global Flag", "Not A Modifier"], ["Global Flag", "Size", "PC Count"]) == [
        spec.Spec("declared", ("Size", "Global Flag"), "linear")]
    assert [s.name for s in spec.candidates(["Not A Modifier"], ["Size", "PC Count"])] == [
        "sparse", "all_covariates", "causal_forest"]
    assert spec.candidates([], []) == []


def test_the_one_standard_error_rule():
    scores = {"declared": 0.100, "sparse": 0.104, "all_covariates": 0.106, "causal_forest": 0.090}
    # declared is 0.006 below the best: within one standard error of 0.007, it wins as the simplest
    assert spec.pick(scores, {"declared": 0.007, "sparse": 0.001, "all_covariates": 0.0, "causal_forest": 0.01},
                     list(scores)) == "declared"
    # with a standard error of 0.005 it does not; sparse (0.002 below, se 0.003) does
    assert spec.pick(scores, {"declared": 0.005, "sparse": 0.003, "all_covariates": 0.0, "causal_forest": 0.01},
                     list(scores)) == "sparse"


def test_population_label_and_verdict():
    inside = np.array([True] * 15 + [False] * 85)
    assert population_label(np.ones(4, bool)) == "all units"
    assert population_label(inside) == "the 15 units inside overlap (15.0 %)"
    e = EffectEstimate("T", "total", [], [], np.zeros(100), np.zeros(100), np.zeros(100), 0, 0, 0, inside, None,
                       population=inside)
    assert verdict(e, True) == "identified on the 15 % of units inside overlap"
    assert verdict(EffectEstimate("T", "total", [], [], np.zeros(3), np.zeros(3), np.zeros(3), 0, 0, 0,
                                  np.ones(3, bool), None), True) == "identified"
    assert verdict(e, False) == verdict(None, True) == "not identified"


def test_extrapolation_check_fails_on_wide_intervals_outside_overlap():
    inside = np.array([True, True, True, False, False])
    lower, upper = np.array([0, 0, 0, -50, -40.0]), np.array([10, 12, 10, 50, 40.0])
    # inside widths 10, 12, 10 (median 10); outside 100, 80 (median 90) > 2 × 10
    check = extrapolation_check(lower, upper, inside)
    assert (check.passed, check.outside, check.width_inside, check.width_outside) == (False, 2, 10.0, 90.0)
    assert check.detail == "median 95 % CATE interval width outside overlap 90.0 > 2 × 10.0 inside (2 units outside)"
    assert extrapolation_check(lower, np.array([10, 12, 10, -30, -28.0]), inside).passed  # widths 20, 12: ≤ 20
    assert extrapolation_check(lower, upper, np.ones(5, bool)).detail == "every unit is inside overlap"


def test_fallback_is_the_best_single_option_by_doubly_robust_value():
    ev = DoublyRobustEvaluator.__new__(DoublyRobustEvaluator)
    ev.names = ["none", "A"]
    ev.y = np.array([10.0, 20.0])
    ev.mu = np.array([[10.0, 15.0], [20.0, 26.0]])  # giving A is worth +5 and +6
    ev.p = np.array([[0.5, 0.5], [0.5, 0.5]])
    ev.actions = np.array(["none", "none"])
    # value(none) = 15; value(A) = 20.5 − cost 4 = 16.5 > 15
    assert best_single_option(ev, {"A": np.array([4.0, 4.0])}) == "A"
    # cost 6: value(A) = 14.5 < 15
    assert best_single_option(ev, {"A": np.array([6.0, 6.0])}) == "none"


def test_a_declared_specification_keeps_the_other_covariates_as_controls():
    """The effect is 2 + 3·M; C confounds (raises both the treatment's odds and the outcome by 10·C)
    and is no modifier. With C dropped from the adjustment the estimate would absorb its 10·C; kept
    as a control, the linear final stage over M recovers 2 and 3."""
    from sklearn.linear_model import LinearRegression, LogisticRegression

    rng = np.random.default_rng(0)
    n = 4000
    m, c = rng.normal(size=n), rng.normal(size=n)
    t = rng.binomial(1, 1 / (1 + np.exp(-1.5 * c)))
    y = (2 + 3 * m) * t + 10 * c + m + rng.normal(0, 0.5, n)
    model = spec.fit(spec.Spec("declared", ("M",), "linear"), ["M", "C"], y, t, np.column_stack([m, c]), None,
                     LinearRegression(), LogisticRegression(), folds=2, random_state=0)
    at = np.array([[0.0, 0.0], [1.0, 0.0]])  # M = 0 and M = 1 (C is not an input of the CATE)
    assert np.asarray(model.effect(at)).ravel() == pytest.approx([2.0, 5.0], abs=0.15)


def test_each_nuisance_is_the_candidate_with_the_lowest_cross_validated_loss():
    from propensity_assets.incentives.estimation import (
        OUTCOME_CANDIDATES, TREATMENT_CANDIDATES, EstimatorConfig, choose_nuisances)

    rng = np.random.default_rng(1)
    f = rng.normal(size=(1500, 3))
    t = (f[:, 0] + rng.normal(0, 0.3, 1500) > 0).astype(int)
    y = 50 * f[:, 1] + 3 * t + rng.normal(0, 1, 1500)  # linear in f: the linear trees fit it best
    chosen = choose_nuisances(f, y, t, EstimatorConfig(n_estimators=100))
    assert set(chosen.losses) == {f"outcome.{n}" for n in OUTCOME_CANDIDATES} | {f"treatment.{n}" for n in TREATMENT_CANDIDATES}
    assert chosen.outcome == min(OUTCOME_CANDIDATES, key=lambda n: chosen.losses[f"outcome.{n}"])
    assert chosen.treatment == min(TREATMENT_CANDIDATES, key=lambda n: chosen.losses[f"treatment.{n}"])
    assert chosen.outcome.startswith("lightgbm_linear_trees")
    assert chosen.losses[f"outcome.{chosen.outcome}"] < chosen.losses["outcome.lightgbm"] / 5
    fixed = choose_nuisances(f, y, t, EstimatorConfig(tune_nuisances=False))
    assert (fixed.outcome, fixed.treatment, fixed.losses) == ("lightgbm", "lightgbm", {})
