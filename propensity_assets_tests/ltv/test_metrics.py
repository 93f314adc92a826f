"""LTV metrics on hand-computed examples."""

import math

import numpy as np
import pandas as pd
import pytest

from propensity_assets.ltv.metrics import (
    decile_table,
    evaluate,
    normalized_gini,
    previous_spend_baseline,
    top_decile_capture,
)

Y = [0.0, 10.0, 30.0, 60.0]


def test_normalized_gini_by_hand():
    # Order by prediction (0.9, 0.4, 0.3, 0.1) → actuals 60, 10, 30, 0; cumulative 60, 70, 100, 100.
    # Gini = (330 / 100 − (4 + 1) / 2) / 4 = 0.2. The perfect order 60, 30, 10, 0 has
    # cumulative 60, 90, 100, 100: (350 / 100 − 2.5) / 4 = 0.25. Normalized: 0.2 / 0.25 = 0.8.
    assert normalized_gini(Y, [0.1, 0.4, 0.3, 0.9]) == pytest.approx(0.8)
    assert normalized_gini(Y, [1, 2, 3, 4]) == pytest.approx(1.0)
    assert normalized_gini(Y, [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_ties_score_their_expected_value_whatever_the_row_order():
    # Two tied blocks: {0, 10} first (mean 5 each), then {30, 60} (mean 45 each).
    # Cumulative 5, 10, 55, 100 → (170 / 100 − 2.5) / 4 = −0.2; / 0.25 = −0.8.
    pred = [1.0, 1.0, 0.0, 0.0]
    assert normalized_gini(Y, pred) == pytest.approx(-0.8)
    assert normalized_gini(Y[::-1], pred[::-1]) == pytest.approx(-0.8)
    # A constant prediction ranks nothing: Gini 0, and the top row earns the mean share.
    assert normalized_gini(Y, [5.0] * 4) == pytest.approx(0.0)
    assert top_decile_capture(Y, [5.0] * 4) == pytest.approx(0.25)


def test_gini_matches_the_kaggle_reference_without_ties():
    rng = np.random.default_rng(0)
    y, p = rng.gamma(1.0, 50.0, 500), rng.normal(size=500)

    def kaggle_gini(actual, pred):  # the Allstate / Porto Seguro reference implementation
        rows = np.c_[actual, pred, np.arange(len(actual))]
        rows = rows[np.lexsort((rows[:, 2], -1 * rows[:, 1]))]
        return (rows[:, 0].cumsum().sum() / rows[:, 0].sum() - (len(actual) + 1) / 2.0) / len(actual)

    assert normalized_gini(y, p) == pytest.approx(kaggle_gini(y, p) / kaggle_gini(y, y))


def test_top_decile_capture_by_hand():
    # 4 rows: the top 10 % is ceil(0.4) = 1 row, the 60 of a total of 100.
    assert top_decile_capture(Y, [0.1, 0.4, 0.3, 0.9]) == pytest.approx(0.6)
    # 20 rows: the top 2 by prediction hold actuals 19 and 18 of a total 190.
    assert top_decile_capture(np.arange(20.0), np.arange(20.0)) == pytest.approx(37 / 190)


def test_evaluate_by_hand():
    # errors 0, 10, 0, −20: MSE 500 / 4 = 125, MAE 30 / 4 = 7.5; means 22.5 / 25 = 0.9.
    m = evaluate(Y, [0.0, 20.0, 30.0, 40.0])
    assert m["rmse"] == pytest.approx(math.sqrt(125))
    assert m["mae"] == pytest.approx(7.5)
    assert m["normalized_gini"] == pytest.approx(1.0)
    assert m["spearman"] == pytest.approx(1.0)
    assert m["top_decile_capture"] == pytest.approx(0.6)
    assert m["calibration"] == pytest.approx(0.9)
    assert m["rows"] == 4
    assert m["mean_actual"] == pytest.approx(25.0)


def test_degenerate_inputs():
    assert math.isnan(normalized_gini([3.0, 3.0], [1.0, 2.0]))  # nothing to rank
    assert math.isnan(evaluate([0.0, 0.0], [1.0, 2.0])["calibration"])
    assert math.isnan(evaluate(Y, [1.0] * 4)["spearman"])
    with pytest.raises(ValueError, match="same length"):
        evaluate([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        evaluate([1.0, 2.0], [1.0, float("nan")])


def test_decile_table():
    pred = np.arange(20.0)
    table = decile_table(2 * pred, pred)
    assert list(table["decile"]) == list(range(1, 11))
    top = table.iloc[0]
    assert (top["mean_prediction"], top["mean_actual"], top["households"]) == (18.5, 37.0, 2)
    bottom = table.iloc[-1]
    assert (bottom["mean_prediction"], bottom["mean_actual"], bottom["households"]) == (0.5, 1.0, 2)


def test_previous_spend_baseline():
    frame = pd.DataFrame({"grp_spend_30d": [1.0, 2.0], "grp_spend_90d": [5.0, 0.0], "grp_spend_share_90d": [0.5, 0.0]})
    assert list(previous_spend_baseline(frame, 90)) == [5.0, 0.0]
    with pytest.raises(ValueError, match=r"'grp_spend_60d'.*windows \[30, 90\]"):
        previous_spend_baseline(frame, 60)
