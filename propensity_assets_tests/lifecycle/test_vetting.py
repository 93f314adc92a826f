"""The vetting rule as a pure function of metrics: no MLflow, no Dagster."""

import numpy as np
import pytest

from propensity_assets.lifecycle.vetting import VettingRule, decide, probability_worse

AP_RULE = VettingRule(metric="average_precision", baseline_metrics=("roc_auc", "average_precision"))
RMSE_RULE = VettingRule(
    metric="rmse", higher_is_better=False, tolerance=1.0, baseline_metrics=("rmse", "normalized_gini"),
    directions={"rmse": False, "normalized_gini": True},
)
BASELINES = {"recency": {"roc_auc": 0.70, "average_precision": 0.60}, "baskets_90d": {"roc_auc": 0.75, "average_precision": 0.65}}


def test_first_version_that_beats_the_baselines_becomes_champion():
    d = decide(AP_RULE, {"roc_auc": 0.8, "average_precision": 0.7}, BASELINES)
    assert (d.decision, d.reason) == ("champion", "no champion existed; first version that beats the baselines")
    assert d.promote and d.challenger


def test_losing_to_one_baseline_on_one_metric_rejects_and_names_it():
    d = decide(AP_RULE, {"roc_auc": 0.8, "average_precision": 0.64}, BASELINES, {"average_precision": 0.5}, "1")
    assert d.decision == "rejected"
    assert d.reason == "does not beat the naive baseline(s): baskets_90d on average_precision (0.6400 vs 0.6500)"


def test_tie_with_a_baseline_is_not_beating_it():
    d = decide(AP_RULE, {"roc_auc": 0.75, "average_precision": 0.9}, BASELINES)
    assert d.decision == "rejected" and "baskets_90d on roc_auc (0.7500 vs 0.7500)" in d.reason


@pytest.mark.parametrize(
    ("auto", "candidate", "expected"),
    [
        (False, 0.72, ("challenger", "average_precision 0.7200 ≥ champion v3 0.7100 − 0.0")),
        (True, 0.72, ("champion", "auto-promoted: average_precision 0.7200 ≥ champion v3 0.7100 − 0.0")),
        (True, 0.71, ("champion", "auto-promoted: average_precision 0.7100 ≥ champion v3 0.7100 − 0.0")),
        (True, 0.70, ("rejected", "average_precision 0.7000 < champion v3 0.7100 − 0.0")),
    ],
)
def test_against_the_champion(auto, candidate, expected):
    rule = VettingRule(**{**AP_RULE.__dict__, "auto_promote": auto})
    d = decide(rule, {"roc_auc": 0.8, "average_precision": candidate}, BASELINES, {"average_precision": 0.71}, "3")
    assert (d.decision, d.reason) == expected


def test_lower_is_better_with_tolerance():
    base = {"previous_spend": {"rmse": 300.0, "normalized_gini": 0.80}}
    champion = {"rmse": 250.0, "normalized_gini": 0.85}
    # Within the tolerance: 250.9 ≤ 250 + 1.
    d = decide(RMSE_RULE, {"rmse": 250.9, "normalized_gini": 0.86}, base, champion, "2")
    assert (d.decision, d.reason) == ("challenger", "rmse 250.9000 ≤ champion v2 250.0000 + 1.0")
    d = decide(RMSE_RULE, {"rmse": 251.5, "normalized_gini": 0.86}, base, champion, "2")
    assert (d.decision, d.reason) == ("rejected", "rmse 251.5000 > champion v2 250.0000 + 1.0")
    # A higher RMSE than the baseline loses to it even with a better Gini.
    d = decide(RMSE_RULE, {"rmse": 301.0, "normalized_gini": 0.9}, base)
    assert d.reason == "does not beat the naive baseline(s): previous_spend on rmse (301.0000 vs 300.0000)"


def test_vetting_on_the_champions_own_training_rows_is_refused():
    d = decide(
        AP_RULE, {"roc_auc": 0.9, "average_precision": 0.9}, BASELINES, None, "4",
        evaluated_on="2017-10-25", champion_trained_until="2017-10-25",
    )
    assert d.decision == "refused" and not d.challenger
    assert d.reason.startswith(
        "the vetting snapshot 2017-10-25 is not later than champion v4's training data (up to 2017-10-25)"
    )
    later = decide(
        AP_RULE, {"roc_auc": 0.9, "average_precision": 0.9}, BASELINES, {"average_precision": 0.8}, "4",
        evaluated_on="2017-11-01", champion_trained_until="2017-10-25",
    )
    assert later.decision == "challenger"


def test_a_tie_with_a_baseline_on_the_vetting_metric_passes_and_a_confident_loss_does_not():
    """LTV's BTYD baseline ties the regressors on RMSE on small groups (cheese at 2017-09-29:
    10.0578 vs 9.8116, worse in 89 % of paired resamples); with a 95 % confidence that is a
    tie and the decision says so, a loss in 97 % of resamples is not, and Gini must still
    beat the baseline."""
    rule = VettingRule(metric="rmse", higher_is_better=False, baseline_metrics=("rmse", "normalized_gini"),
                       baseline_confidence=0.95, directions={"rmse": False, "normalized_gini": True})
    baselines = {"btyd": {"rmse": 9.8116, "normalized_gini": 0.7946}}
    candidate = {"rmse": 10.0578, "normalized_gini": 0.8094}
    tie = decide(rule, candidate, baselines, p_worse={"btyd": 0.887})
    assert (tie.decision, tie.reason) == (
        "champion", "no champion existed; first version that beats the baselines "
        "(a tie with btyd on rmse (10.0578 vs 9.8116, worse with probability 0.887 < 0.95))"
    )
    worse = decide(rule, candidate, baselines, p_worse={"btyd": 0.97})
    assert (worse.decision, worse.reason) == (
        "rejected", "does not beat the naive baseline(s): btyd on rmse (10.0578 vs 9.8116, worse with probability 0.970 ≥ 0.95)"
    )
    # The test is for the vetting metric only: ranking must still beat the baseline.
    assert decide(rule, {"rmse": 9.0, "normalized_gini": 0.7940}, baselines, p_worse={"btyd": 0.0}).reason == (
        "does not beat the naive baseline(s): btyd on normalized_gini (0.7940 vs 0.7946)"
    )
    # Without a confidence (propensity's rule) the tie is a loss.
    strict = VettingRule(metric="rmse", higher_is_better=False, baseline_metrics=("rmse",), directions={"rmse": False})
    assert decide(strict, candidate, baselines, p_worse={"btyd": 0.887}).reason == (
        "does not beat the naive baseline(s): btyd on rmse (10.0578 vs 9.8116)"
    )


def _rmse(y, p):
    return float(np.sqrt(np.mean((y - p) ** 2)))


def test_the_paired_bootstrap_counts_resamples_where_the_candidate_is_strictly_worse():
    y = np.zeros(50)
    # Worse on every row: worse on every resample. Identical: never strictly worse.
    assert probability_worse(y, np.full(50, 2.0), np.full(50, 1.0), _rmse, higher_is_better=False) == 1.0
    assert probability_worse(y, np.full(50, 2.0), np.full(50, 2.0), _rmse, higher_is_better=False) == 0.0
    # Worse on one row only, equal elsewhere: worse exactly when the resample draws that
    # row, which happens with probability 1 − (1 − 1/50)^50 = 0.6358.
    candidate = np.r_[3.0, np.zeros(49)]
    p = probability_worse(y, candidate, np.zeros(50), _rmse, higher_is_better=False, resamples=4000)
    assert abs(p - (1 - (1 - 1 / 50) ** 50)) < 0.025  # 3.3 standard errors
    # The direction flips with the metric's.
    assert probability_worse(y, np.full(50, 2.0), np.full(50, 1.0), _rmse, higher_is_better=True) == 0.0
    # The same seed, the same answer.
    assert probability_worse(y, candidate, np.zeros(50), _rmse, False, seed=3) == probability_worse(
        y, candidate, np.zeros(50), _rmse, False, seed=3)