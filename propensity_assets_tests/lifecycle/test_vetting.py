"""The vetting rule as a pure function of metrics: no MLflow, no Dagster."""

import pytest

from propensity_assets.lifecycle.vetting import VettingRule, decide

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


def test_a_baseline_tolerance_accepts_a_near_tie_and_names_itself_when_exceeded():
    """LTV's BTYD baseline ties the regressors on RMSE on small groups (bread at 2017-09-29:
    7.2627 vs 7.2624); with a 1 % tolerance on the vetting metric that counts, 1.5 % worse
    does not, and Gini must still beat the baseline."""
    rule = VettingRule(metric="rmse", higher_is_better=False, baseline_metrics=("rmse", "normalized_gini"),
                       baseline_tolerance=0.01, directions={"rmse": False, "normalized_gini": True})
    baselines = {"btyd": {"rmse": 7.2624, "normalized_gini": 0.7842}}
    tie = decide(rule, {"rmse": 7.2627, "normalized_gini": 0.8026}, baselines)
    assert tie.decision == "champion"
    worse = decide(rule, {"rmse": 7.2624 * 1.015, "normalized_gini": 0.8026}, baselines)
    assert (worse.decision, worse.reason) == (
        "rejected", "does not beat the naive baseline(s) (nor within 1.0% on rmse): btyd on rmse (7.3713 vs 7.2624)"
    )
    # The tolerance is for the vetting metric only: ranking must still beat the baseline.
    assert decide(rule, {"rmse": 7.0, "normalized_gini": 0.7840}, baselines).reason == (
        "does not beat the naive baseline(s) (nor within 1.0% on rmse): btyd on normalized_gini (0.7840 vs 0.7842)"
    )
    # Without a tolerance the near tie is a loss.
    strict = VettingRule(metric="rmse", higher_is_better=False, baseline_metrics=("rmse",), directions={"rmse": False})
    assert decide(strict, {"rmse": 7.2627}, baselines).decision == "rejected"
