"""Every stage's labels, as its `LabelSpec` declares them, against hand-computed answers on
real Spark: the population at as_of and the forward window are one mechanism
(`lifecycle.labels`).

The propensity label (CONTRACTS §4): at (h, g, d) = 1 if h bought any product of g on a
day with d ≤ day < d + 30.

Groups: product 1 is in A, product 2 is in A *and* B (overlap), product 3 is in B,
product 4 is only in C, which the tests never ask for. The data's last day is
2017-04-30, so the last as_of with a complete window is 2017-04-30 − 29 = 2017-04-01.

as_of dates and their windows [d, d + 29]:
  D  = 2017-03-10: [03-10, 04-08]   (D − 1 = 03-09, D + 29 = 04-08, D + 30 = 04-09)
  D2 = 2017-03-20: [03-20, 04-18]
  D3 = 2017-04-01: [04-01, 04-30]   (the last labelable as_of)
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from propensity_assets.lifecycle import labels
from propensity_assets.ltv.stage import LTV
from propensity_assets.propensity.stage import PROPENSITY

# Every test on a classic session and on Spark Connect (conftest `spark_mode`).
pytestmark = pytest.mark.classic_and_connect

D, D2, D3 = date(2017, 3, 10), date(2017, 3, 20), date(2017, 4, 1)
LAST_DAY = date(2017, 4, 30)

# (household_id, basket_id, product_id, quantity, sales_value, "YYYY-MM-DD HH:MM:SS")
TX = [
    # H1: A on D itself (counted); B on D + 30 (not counted at D, counted at D2 and D3).
    (1, 100, 4, 1, 1.0, "2017-01-05 10:00:00"),
    (1, 101, 1, 1, 2.0, "2017-03-10 00:00:00"),
    (1, 102, 3, 1, 2.0, "2017-04-09 00:00:00"),
    # H2: A on D + 29, late in the day (counted at D, D2 and D3).
    (2, 200, 4, 1, 1.0, "2017-01-05 10:00:00"),
    (2, 201, 1, 1, 2.0, "2017-04-08 23:59:59"),
    # H3: A on D + 30, first second of the day (NOT counted at D; counted at D2, D3).
    (3, 300, 4, 1, 1.0, "2017-01-05 10:00:00"),
    (3, 301, 1, 1, 2.0, "2017-04-09 00:00:00"),
    # H4: A on D − 1, the last second of the day (not counted anywhere).
    (4, 400, 4, 1, 1.0, "2017-01-05 10:00:00"),
    (4, 401, 1, 1, 2.0, "2017-03-09 23:59:59"),
    # H5: first purchase on D -> not in the population at D (no row); at D2 it is, and
    #     buys B on 03-25 (B = 1 at D2), while its A purchase on 03-10 is before D2.
    (5, 501, 1, 1, 2.0, "2017-03-10 12:00:00"),
    (5, 502, 3, 1, 2.0, "2017-03-25 12:00:00"),
    # H6: never buys in A or B (0 everywhere).
    (6, 601, 4, 1, 1.0, "2017-02-01 10:00:00"),
    # H7: the overlap product 2 on 03-15 -> A = 1 and B = 1 at D, nothing at D2 or D3.
    (7, 700, 4, 1, 1.0, "2017-02-01 10:00:00"),
    (7, 701, 2, 1, 2.0, "2017-03-15 12:00:00"),
    # H9: B on the last day of the data (counted at D3 only).
    (9, 900, 4, 1, 1.0, "2017-01-02 10:00:00"),
    (9, 901, 3, 1, 2.0, "2017-04-30 20:00:00"),
]

MEMBERS = [("A", 1), ("A", 2), ("B", 2), ("B", 3), ("C", 4)]

EXPECTED = {
    # (as_of, group): {household: label}
    (D, "A"): {1: 1, 2: 1, 3: 0, 4: 0, 6: 0, 7: 1, 9: 0},
    (D, "B"): {1: 0, 2: 0, 3: 0, 4: 0, 6: 0, 7: 1, 9: 0},
    (D2, "A"): {1: 0, 2: 1, 3: 1, 4: 0, 5: 0, 6: 0, 7: 0, 9: 0},
    (D2, "B"): {1: 1, 2: 0, 3: 0, 4: 0, 5: 1, 6: 0, 7: 0, 9: 0},
    (D3, "A"): {1: 0, 2: 1, 3: 1, 4: 0, 5: 0, 6: 0, 7: 0, 9: 0},
    (D3, "B"): {1: 1, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 0, 9: 1},
}


def propensity_labels(transactions, members, as_of_dates, groups):
    horizon = PROPENSITY.horizon_days()  # 30 days
    return labels.stage_labels(PROPENSITY.label, "propensity_labels", transactions, members, as_of_dates, groups, horizon)


def _tx(spark, rows=TX):
    # Aware UTC datetimes into `timestamp` are exact whatever the machine's zone (session TZ is UTC).
    data = [
        (h, b, p, float(q), float(s), datetime.strptime(t, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc))
        for h, b, p, q, s, t in rows
    ]
    return spark.createDataFrame(
        data,
        "household_id long, basket_id long, product_id long, quantity double, sales_value double, "
        "transaction_timestamp timestamp",
    )


def _members(spark):
    return spark.createDataFrame(MEMBERS, "product_group string, product_id long")


def _collect(df) -> dict:
    out: dict = {}
    for row in df.collect():
        key = (row["as_of"], row["product_group"])
        assert row["household_id"] not in out.setdefault(key, {}), f"duplicate row {row}"
        out[key][row["household_id"]] = row["label"]
    return out


@pytest.fixture(scope="module")
def all_labels(spark):
    return propensity_labels(_tx(spark), _members(spark), [D3, D, D2, D], ["A", "B"])


def test_columns(all_labels):
    assert all_labels.columns == ["as_of", "product_group", "household_id", "label"]
    assert dict(all_labels.dtypes)["label"] == "int"
    assert dict(all_labels.dtypes)["as_of"] == "date"


def test_labels_by_hand(all_labels):
    got = _collect(all_labels)
    assert got == EXPECTED


def test_window_boundaries(all_labels):
    got = _collect(all_labels)
    assert got[(D, "A")][1] == 1  # bought on d
    assert got[(D, "A")][2] == 1  # bought on d + 29
    assert got[(D, "A")][3] == 0  # bought on d + 30
    assert got[(D, "A")][4] == 0  # bought on d − 1
    assert 5 not in got[(D, "A")] and 5 not in got[(D, "B")]  # first purchase on d: not in the population
    assert got[(D, "A")][6] == 0 and got[(D, "B")][6] == 0  # never buys in the group
    assert got[(D, "A")][7] == 1 and got[(D, "B")][7] == 1  # one product, two overlapping groups
    assert got[(D3, "B")][9] == 1  # the last day of the data is inside the last window


def test_single_date_single_group_matches_multi(spark):
    """One as_of and one group at a time gives the same rows as the combined call, and
    only the requested group."""
    got = _collect(propensity_labels(_tx(spark), _members(spark), [D2], ["B"]))
    assert got == {(D2, "B"): EXPECTED[(D2, "B")]}


def test_last_labelable_as_of():
    assert labels.last_labelable_as_of(LAST_DAY, 30) == D3
    # The contract's holdout: data ends 2018-01-01, as_of 2017-12-01 is labelable.
    assert labels.last_labelable_as_of(date(2018, 1, 1), 30) == date(2017, 12, 3)
    labels.check_label_window([date(2017, 12, 1)], date(2018, 1, 1), 30, "propensity_labels")


def test_window_past_the_data_is_refused(spark):
    late = date(2017, 4, 2)  # window 04-02 .. 05-01 runs past 04-30
    with pytest.raises(labels.LabelWindowError) as info:
        propensity_labels(_tx(spark), _members(spark), [D, late], ["A"])
    message = str(info.value)
    assert "2017-04-02" in message  # the refused as_of
    assert "2017-04-30" in message  # the end of the data
    assert "2017-04-01" in message  # the last as_of that works
    assert "30-day" in message
    assert str(D) not in message.split("undefined for as_of")[1].split(":")[0]  # only the late date is blamed


def test_empty_transactions(spark):
    with pytest.raises(labels.LabelWindowError, match="empty"):
        propensity_labels(_tx(spark, []), _members(spark), [D], ["A"])


# The LTV label (CONTRACTS §8): at (h, g, d) = h's spend on g's products on days
# d ≤ day < d + H; 0 for a household of the population that bought nothing in g then;
# `all` = every product, including ids no product table knows. H = 10 here: the data's last
# day is 2017-04-30, so the last as_of with a complete window is 2017-04-30 − 9 = 2017-04-21.
#
#   LTV_D  = 2017-03-10: window [03-10, 03-19]
#   LTV_D2 = 2017-03-15: window [03-15, 03-24]

H = 10
LTV_D, LTV_D2 = date(2017, 3, 10), date(2017, 3, 15)

LTV_TX = [
    # H1: 2.50 of A on LTV_D (counted), 4.00 of A on LTV_D + 9 late in the day (counted), 8.00 of A on
    #     LTV_D + 10 (not counted at LTV_D; counted at LTV_D2, whose window ends 03-24).
    (1, 100, 9, 1, 1.0, "2017-01-05 10:00:00"),
    (1, 101, 1, 1, 2.5, "2017-03-10 00:00:00"),
    (1, 102, 1, 2, 4.0, "2017-03-19 23:59:59"),
    (1, 103, 1, 1, 8.0, "2017-03-20 00:00:00"),
    # H2: the overlap product 2 (A and B) for 3.00 on 03-12, and product 99, which no
    #     product table knows, for 5.00 on 03-16: A = B = 3 at LTV_D; all = 8 at LTV_D, 5 at LTV_D2.
    (2, 200, 9, 1, 1.0, "2017-01-05 10:00:00"),
    (2, 201, 2, 1, 3.0, "2017-03-12 12:00:00"),
    (2, 202, 99, 1, 5.0, "2017-03-16 12:00:00"),
    # H3: bought only before LTV_D: in the population, label 0 everywhere.
    (3, 300, 1, 1, 6.0, "2017-02-01 10:00:00"),
    # H4: first purchase on LTV_D: not in the population at LTV_D; at LTV_D2 its spend from 03-15 on counts.
    (4, 400, 1, 1, 7.0, "2017-03-10 09:00:00"),
    (4, 401, 3, 1, 1.5, "2017-03-17 09:00:00"),
    # The last day of the data.
    (5, 500, 9, 1, 1.0, "2017-04-30 10:00:00"),
]
LTV_MEMBERS = [("A", 1), ("A", 2), ("B", 2), ("B", 3), ("all", None)]

LTV_EXPECTED = {
    (LTV_D, "A"): {1: 6.5, 2: 3.0, 3: 0.0},
    (LTV_D, "B"): {1: 0.0, 2: 3.0, 3: 0.0},
    (LTV_D, "all"): {1: 6.5, 2: 8.0, 3: 0.0},
    (LTV_D2, "A"): {1: 12.0, 2: 0.0, 3: 0.0, 4: 0.0},
    (LTV_D2, "B"): {1: 0.0, 2: 0.0, 3: 0.0, 4: 1.5},
    (LTV_D2, "all"): {1: 12.0, 2: 5.0, 3: 0.0, 4: 1.5},
}


def ltv_labels(transactions, members, as_of_dates, groups, horizon):
    return labels.stage_labels(LTV.label, "ltv_labels", transactions, members, as_of_dates, groups, horizon)


def _ltv_tx(spark, rows=LTV_TX):
    # Aware UTC datetimes into `timestamp` are exact whatever the machine's zone (session TZ is UTC).
    frame = spark.createDataFrame(
        [(h, b, p, float(q), float(v), datetime.fromisoformat(ts).replace(tzinfo=timezone.utc)) for h, b, p, q, v, ts in rows],
        "household_id long, basket_id long, product_id long, quantity double, sales_value double, "
        "transaction_timestamp timestamp",
    )
    return frame


def _ltv_members(spark):
    return spark.createDataFrame(LTV_MEMBERS, "product_group string, product_id long")


def test_ltv_labels_by_hand(spark):
    out = ltv_labels(_ltv_tx(spark), _ltv_members(spark), [LTV_D2, LTV_D], ["A", "B", "all"], horizon=H)
    assert out.columns == ["as_of", "product_group", "household_id", "label"]
    got: dict = {}
    for row in out.collect():
        got.setdefault((row["as_of"], row["product_group"]), {})[row["household_id"]] = row["label"]
    assert got == LTV_EXPECTED


def test_ltv_window_past_the_data_is_refused(spark):
    with pytest.raises(labels.LabelWindowError) as info:
        ltv_labels(_ltv_tx(spark), _ltv_members(spark), [LTV_D, date(2017, 4, 22)], ["A"], horizon=H)
    assert str(info.value) == (
        "ltv_labels undefined for as_of 2017-04-22: the 10-day label window runs past the end of the data "
        "(2017-04-30); the last as_of with a complete window is 2017-04-21"
    )
