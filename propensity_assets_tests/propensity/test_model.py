"""Pure modelling logic: snapshots, the search space, metrics, deciles, baselines, the
feature matrix. Expected numbers are worked out by hand in the comments."""

from __future__ import annotations

import itertools
import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from propensity_assets.propensity import model as M

HOLDOUT = date(2017, 12, 1)


# -- snapshot_dates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "cutoff, history, validation",
    [(HOLDOUT, 30, 1), (date(2017, 6, 2), 4, 1), (date(2017, 6, 2), 6, 2), (date(2017, 9, 1), 10, 3)],
)
def test_snapshot_dates_never_cross_the_cutoff(cutoff, history, validation):
    train, valid = M.snapshot_dates(cutoff, history, validation)
    assert len(train) == history and len(valid) == validation
    assert train == sorted(train) and valid == sorted(valid)
    horizon = timedelta(days=30)
    # Every label window d .. d + 29 ends before the cutoff: d + 30 ≤ cutoff.
    assert all(d + horizon <= cutoff for d in train + valid)
    # The latest validation snapshot is the last one allowed.
    assert valid[-1] == cutoff - horizon
    # Training label windows end before the first validation as_of (no overlap).
    assert max(train) + horizon <= min(valid)
    # Weekly spacing, on one grid across training and validation.
    for dates in (train, valid):
        assert all((b - a).days == 7 for a, b in zip(dates, dates[1:]))
    assert (min(valid) - max(train)).days % 7 == 0


def test_snapshot_dates_for_the_holdout_by_hand():
    # cutoff 2017-12-01: validation 2017-11-01 (= cutoff − 30); training ends 5 weeks
    # earlier, 2017-09-27 (its window ends 10-26 < 11-01), 30 weekly snapshots back to 2017-03-08.
    train, valid = M.snapshot_dates(HOLDOUT, 30)
    assert valid == [date(2017, 11, 1)]
    assert train[-1] == date(2017, 9, 27)
    assert train[0] == date(2017, 3, 8)


def test_snapshot_dates_for_the_lifecycle_cutoff():
    train, valid = M.snapshot_dates(date(2017, 6, 2), history_weeks=4)
    assert valid == [date(2017, 5, 3)]
    assert train == [date(2017, 3, 8), date(2017, 3, 15), date(2017, 3, 22), date(2017, 3, 29)]


# -- SearchSpace --------------------------------------------------------------------------

NAMES = ["num_leaves", "learning_rate", "min_child_samples", "feature_fraction", "lambda_l2", "balance_classes"]


def _grid(space: M.SearchSpace) -> list[dict]:
    return [dict(zip(NAMES, v)) for v in itertools.product(*(getattr(space, n) for n in NAMES))]


def test_trials_are_a_deterministic_sample_of_the_grid():
    space = M.SearchSpace()
    trials = space.trials()
    assert len(trials) == space.max_trials == 6
    grid = _grid(space)
    assert len(grid) == 3 * 2 * 2 * 2 * 2 * 2
    assert all(t in grid for t in trials)
    assert len({tuple(t.values()) for t in trials}) == len(trials)  # no repeats
    assert trials == space.trials() == M.SearchSpace().trials()  # same seed, same sample
    assert all(set(t) == set(NAMES) for t in trials)


def test_trials_depend_on_the_seed():
    samples = {tuple(tuple(t.values()) for t in M.SearchSpace(seed=s).trials()) for s in range(5)}
    assert len(samples) > 1


def test_small_grid_is_taken_whole():
    space = M.SearchSpace(num_leaves=[7, 15], learning_rate=[0.1], min_child_samples=[20], feature_fraction=[1.0],
                          lambda_l2=[0.0], balance_classes=[False], max_trials=5)
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
    d = M.deciles(scores)
    assert d.dtype == "int32"
    # Rank r (1 = highest) -> ceil(r / 20 * 10): two rows per decile.
    assert d.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10]
    assert d.index.equals(scores.index)


def test_deciles_keep_the_index_and_order_by_score():
    scores = pd.Series([0.1, 0.9, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.0], index=list("abcdefghij"))
    d = M.deciles(scores)
    assert d["b"] == 1 and d["j"] == 10 and d["g"] == 2
    assert d.sort_values().index.tolist() == scores.sort_values(ascending=False).index.tolist()


def test_deciles_ties_split_by_rank_order():
    d = M.deciles(pd.Series([0.5] * 10))
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


# -- feature_matrix -----------------------------------------------------------------------


def _hh_row(as_of, hid, baskets, days):
    row = {"as_of": as_of, "household_id": hid, "hh_days_since_last": 1}
    for w, b, d in zip(M.WINDOWS, baskets, days):
        row.update({f"hh_baskets_{w}d": b, f"hh_days_{w}d": d, f"hh_spend_{w}d": 10.0 * b})
    return row


def _grp_row(as_of, hid, baskets, days, since):
    row = {"as_of": as_of, "household_id": hid, "grp_days_since_last": since}
    for w, b, d in zip(M.WINDOWS, baskets, days):
        row.update({f"grp_baskets_{w}d": b, f"grp_days_{w}d": d})
    return row


def test_feature_matrix_ratios():
    hh = pd.DataFrame(
        [
            _hh_row(date(2017, 6, 2), 1, (4, 10, 40), (2, 8, 30)),
            _hh_row(date(2017, 6, 2), 2, (0, 0, 5), (0, 0, 5)),  # nothing in 30d/90d
            _hh_row(date(2017, 6, 2), 3, (1, 2, 3), (1, 2, 3)),  # never bought in the group
            _hh_row(date(2017, 6, 2), 9, (1, 1, 1), (1, 1, 1)),  # no group row -> dropped
        ]
    )
    grp = pd.DataFrame(
        [
            # as_of as a string here, a date in `hh`: both sides are normalised.
            _grp_row("2017-06-02", 1, (1, 5, 10), (1, 4, 73), 5.0),
            _grp_row("2017-06-02", 2, (0, 0, 2), (0, 0, 2), 100.0),
            _grp_row("2017-06-02", 3, (0, 0, 0), (0, 0, 0), np.nan),
        ]
    )
    f = M.feature_matrix(hh, grp).set_index("household_id")
    assert sorted(f.index) == [1, 2, 3]
    assert (f["as_of"] == "2017-06-02").all()
    # Household 1: 1/4 baskets, 5/10, 10/40; days 1/2, 4/8, 73/30.
    assert f.loc[1, "grp_basket_share_30d"] == pytest.approx(0.25)
    assert f.loc[1, "grp_basket_share_90d"] == pytest.approx(0.5)
    assert f.loc[1, "grp_basket_share_365d"] == pytest.approx(0.25)
    assert f.loc[1, "grp_day_share_30d"] == pytest.approx(0.5)
    assert f.loc[1, "grp_day_share_90d"] == pytest.approx(0.5)
    # Overdue: 5 days since the last purchase / usual gap 365 / 73 = 5 days -> 1.0.
    assert f.loc[1, "grp_overdue_ratio"] == pytest.approx(1.0)
    # Household 2: zero household baskets/days -> shares 0 (not NaN, not inf).
    assert f.loc[2, "grp_basket_share_30d"] == 0.0 and f.loc[2, "grp_day_share_90d"] == 0.0
    assert f.loc[2, "grp_basket_share_365d"] == pytest.approx(0.4)
    # 100 days / (365 / 2) -> 200 / 365.
    assert f.loc[2, "grp_overdue_ratio"] == pytest.approx(200 / 365)
    # Household 3: never bought in the group -> shares 0, overdue ratio unknown.
    assert f.loc[3, "grp_basket_share_365d"] == 0.0
    assert np.isnan(f.loc[3, "grp_overdue_ratio"])
    assert np.isnan(f.loc[3, "grp_days_since_last"])

    features = M.feature_columns(f.reset_index())
    assert "household_id" not in features and "as_of" not in features
    assert all(c.startswith(("hh_", "grp_")) for c in features)
    assert {"grp_overdue_ratio", "grp_basket_share_30d", "grp_day_share_365d", "hh_baskets_30d"} <= set(features)
    assert all(f[c].dtype == "float64" for c in features)


def test_feature_matrix_refuses_duplicate_keys():
    hh = pd.DataFrame([_hh_row("2017-06-02", 1, (1, 1, 1), (1, 1, 1))] * 2)
    grp = pd.DataFrame([_grp_row("2017-06-02", 1, (1, 1, 1), (1, 1, 1), 1.0)])
    with pytest.raises(Exception):
        M.feature_matrix(hh, grp)
