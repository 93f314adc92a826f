"""Pure modelling logic: snapshots, the search space, metrics, deciles, baselines, the
feature matrix. Expected numbers are worked out by hand in the comments."""

from __future__ import annotations

import itertools
import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from propensity_assets.shared.deciles import deciles
from propensity_assets.lifecycle.frames import selection_split, snapshot_plan
from propensity_assets.propensity import model as M

HOLDOUT = date(2017, 12, 1)


# -- snapshot_plan (the lifecycle's; propensity's 30-day window) ----------------------------

FIRST = date(2017, 1, 1)


@pytest.mark.parametrize("cutoff, history", [(HOLDOUT, 30), (date(2017, 6, 2), 4), (date(2017, 9, 1), 10)])
def test_snapshot_plan_never_crosses_the_cutoff(cutoff, history):
    plan = snapshot_plan(cutoff, 30, history, FIRST)
    train = list(plan.train)
    assert len(train) == history and train == sorted(train)
    horizon = timedelta(days=30)
    # Every label window d .. d + 29 ends by the cutoff: d + 30 ≤ cutoff.
    assert all(d + horizon <= cutoff for d in [*train, plan.vetting])
    # The vetting snapshot is the last one allowed, and later than every training snapshot.
    assert plan.vetting == cutoff - horizon
    assert max(train) < plan.vetting
    # Weekly spacing, on one grid with the vetting snapshot.
    assert all((b - a).days == 7 for a, b in zip(train, [*train[1:], plan.vetting]))


def test_snapshot_plan_for_the_holdout_by_hand():
    # cutoff 2017-12-01: vetting 2017-11-01 (= cutoff − 30); training one week earlier,
    # 2017-10-25, and 30 weekly snapshots back to 2017-04-05 (10-25 − 29 weeks).
    plan = snapshot_plan(HOLDOUT, 30, 30, FIRST)
    assert plan.vetting == date(2017, 11, 1)
    assert plan.train[-1] == date(2017, 10, 25)
    assert plan.train[0] == date(2017, 4, 5)
    assert plan.tags()["train_as_of_max"] == "2017-10-25" and plan.tags()["vetting_as_of"] == "2017-11-01"


def test_snapshot_plan_drops_snapshots_before_the_data():
    # cutoff 2017-03-03: vetting 2017-02-01; weekly back: 01-25, 01-18, 01-11, 01-04, (12-28 dropped).
    plan = snapshot_plan(date(2017, 3, 3), 30, 5, FIRST)
    assert plan.train == (date(2017, 1, 4), date(2017, 1, 11), date(2017, 1, 18), date(2017, 1, 25))


def test_snapshot_plan_refuses_a_cutoff_without_history():
    with pytest.raises(ValueError) as info:
        snapshot_plan(date(2017, 4, 7), 90, 10, FIRST)
    assert str(info.value) == (
        "cutoff 2017-04-07: with a 90-day label window the vetting snapshot is 2017-01-07, and no weekly "
        "training snapshot before it falls after the first as_of 2017-01-01; choose a later cutoff"
    )


def test_selection_split_is_grouped_by_household():
    frame = pd.DataFrame({"household_id": [h for h in range(1, 11) for _ in range(3)], "as_of": ["a", "b", "c"] * 10})
    fit, select = selection_split(frame, share=0.2, seed=1)
    assert len(select) == 6 and select["household_id"].nunique() == 2  # 20 % of 10 households, all 3 rows each
    assert not set(fit["household_id"]) & set(select["household_id"])
    assert len(fit) + len(select) == 30
    assert selection_split(frame, share=0.2, seed=1)[1].equals(select)


# -- SearchSpace --------------------------------------------------------------------------

NAMES = ["num_leaves", "learning_rate", "min_child_samples", "feature_fraction", "lambda_l2"]


def _grid(space: M.SearchSpace) -> list[dict]:
    return [dict(zip(NAMES, v)) for v in itertools.product(*(getattr(space, n) for n in NAMES))]


def test_trials_are_a_deterministic_sample_of_the_grid():
    space = M.SearchSpace()
    trials = space.trials()
    assert len(trials) == space.max_trials == 6
    grid = _grid(space)
    assert len(grid) == 3 * 2 * 2 * 2 * 2
    assert all(t in grid for t in trials)
    assert len({tuple(t.values()) for t in trials}) == len(trials)  # no repeats
    assert trials == space.trials() == M.SearchSpace().trials()  # same seed, same sample
    assert all(set(t) == set(NAMES) for t in trials)


def test_trials_depend_on_the_seed():
    samples = {tuple(tuple(t.values()) for t in M.SearchSpace(seed=s).trials()) for s in range(5)}
    assert len(samples) > 1


def test_small_grid_is_taken_whole():
    space = M.SearchSpace(num_leaves=[7, 15], learning_rate=[0.1], min_child_samples=[20], feature_fraction=[1.0],
                          lambda_l2=[0.0], max_trials=5)
    assert space.trials() == _grid(space)
    assert [t["num_leaves"] for t in space.trials()] == [7, 15]


@pytest.mark.parametrize("max_trials", [1, 3, 10])
def test_at_most_max_trials(max_trials):
    space = M.SearchSpace(max_trials=max_trials)
    trials = space.trials()
    assert len(trials) == max_trials
    assert all(t in _grid(space) for t in trials)


# -- evaluate -----------------------------------------------------------------------------


def test_evaluate_by_hand():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.7, 0.1])
    m = M.evaluate(y, p)
    # AUC: positive/negative pairs (0.9>0.8) (0.9>0.1) (0.7<0.8) (0.7>0.1) -> 3/4.
    assert m["roc_auc"] == pytest.approx(0.75)
    # AP: ranked 1, 0, 1, 0 -> precision at the positives 1/1 and 2/3 -> (1 + 2/3) / 2.
    assert m["average_precision"] == pytest.approx(5 / 6)
    # Brier: (0.1² + 0.8² + 0.3² + 0.1²) / 4 = 0.75 / 4.
    assert m["brier"] == pytest.approx(0.1875)
    assert m["log_loss"] == pytest.approx(-(math.log(0.9) + math.log(0.2) + math.log(0.7) + math.log(0.9)) / 4)
    # Top decile: ceil(0.4) = 1 row, the 0.9 one, a positive; base rate 0.5 -> lift 2.
    assert m["lift_top_decile"] == pytest.approx(2.0)
    assert m["positive_rate"] == 0.5
    assert m["rows"] == 4


def test_lift_top_decile_by_hand():
    # 20 rows, top decile = 2 rows (scores 19 and 18); one of them positive -> 0.5;
    # base rate 4/20 = 0.2 -> lift 2.5.
    p = np.arange(20, dtype=float)
    y = np.zeros(20)
    y[[19, 3, 2, 1]] = 1
    assert M.lift_top_decile(y, p) == pytest.approx(2.5)
    assert math.isnan(M.lift_top_decile(np.zeros(20), p))


def test_evaluate_single_class():
    m = M.evaluate(np.zeros(5), np.linspace(0.1, 0.5, 5))
    assert math.isnan(m["roc_auc"]) and math.isnan(m["average_precision"])
    assert math.isnan(m["lift_top_decile"])
    assert m["brier"] == pytest.approx(np.mean(np.linspace(0.1, 0.5, 5) ** 2))
    assert m["positive_rate"] == 0.0


def test_evaluate_clips_certain_predictions():
    m = M.evaluate(np.array([1, 0]), np.array([0.0, 1.0]))  # confidently wrong
    assert np.isfinite(m["log_loss"]) and m["log_loss"] > 10
    assert m["roc_auc"] == 0.0


# -- deciles ------------------------------------------------------------------------------


def test_deciles_top_is_one():
    scores = pd.Series(np.arange(20, dtype=float)[::-1])  # 19, 18, ..., 0
    d = deciles(scores)
    assert d.dtype == "int32"
    # Rank r (1 = highest) -> ceil(r / 20 * 10): two rows per decile.
    assert d.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10]
    assert d.index.equals(scores.index)


def test_deciles_keep_the_index_and_order_by_score():
    scores = pd.Series([0.1, 0.9, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.0], index=list("abcdefghij"))
    d = deciles(scores)
    assert d["b"] == 1 and d["j"] == 10 and d["g"] == 2
    assert d.sort_values().index.tolist() == scores.sort_values(ascending=False).index.tolist()


def test_deciles_ties_split_by_rank_order():
    d = deciles(pd.Series([0.5] * 10))
    assert sorted(d.tolist()) == list(range(1, 11))


# -- baselines ----------------------------------------------------------------------------


def test_baseline_scores():
    frame = pd.DataFrame(
        {"grp_days_since_last": [10.0, 1.0, np.nan, 3.0, 400.0], "grp_baskets_90d": [2, 0, 0, 7, 1]}
    )
    b = M.baseline_scores(frame)
    # Recency: most recent first; the never-bought household (NaN) last, behind even 400 days.
    assert list(np.argsort(-b["recency"], kind="stable")) == [1, 3, 0, 4, 2]
    assert np.all(np.isfinite(b["recency"]))
    assert b["baskets_90d"].tolist() == [2.0, 0.0, 0.0, 7.0, 1.0]
    # As scores they plug into evaluate: label = bought recently.
    y = np.array([0, 1, 0, 1, 0])
    assert M.evaluate(y, b["recency"])["roc_auc"] == 1.0


def test_no_class_reweighting_is_offered():
    # Scores must be probabilities: scale_pos_weight would distort them, so it is not a dimension.
    assert "balance_classes" not in M.SearchSpace.__dataclass_fields__
    params = M._params(M.SearchSpace().trials()[0], M.SearchSpace(), 2)
    assert "scale_pos_weight" not in params and "is_unbalance" not in params


def test_early_stopping_watches_the_selection_metric_only():
    params = M._params(M.SearchSpace().trials()[0], M.SearchSpace(selection_metric="roc_auc"), 2)
    assert params["metric"] == "auc" and params["first_metric_only"] is True
    assert M._params(M.SearchSpace().trials()[0], M.SearchSpace(), 2)["metric"] == "average_precision"


def test_calibration_table_by_hand():
    # Ten scores in two quantile bins of five: the low bin averages 0.1 with 1 positive of 5,
    # the high bin 0.8 with 4 of 5.
    y = np.array([0, 0, 1, 0, 0, 1, 1, 1, 0, 1])
    p = np.array([0.1] * 5 + [0.8] * 5)
    table = M.calibration_table(y, p, bins=2)
    assert table["mean_predicted"].round(6).tolist() == [0.1, 0.8]
    assert table["observed_rate"].tolist() == [0.2, 0.8]
    assert table["rows"].tolist() == [5, 5]
