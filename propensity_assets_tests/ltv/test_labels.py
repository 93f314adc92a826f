"""The LTV label (CONTRACTS §8) against hand-computed answers, on real Spark.

Label at (h, g, d) = h's spend on g's products on days d ≤ day < d + H; 0 for a household
of the population that bought nothing in g then; `all` = every product, including ids
no product table knows. H = 10 here: the data's last day is 2017-04-30, so the last as_of
with a complete window is 2017-04-30 − 9 = 2017-04-21.

  D  = 2017-03-10: window [03-10, 03-19]
  D2 = 2017-03-15: window [03-15, 03-24]
"""

from datetime import date, datetime, timezone

import pytest

from propensity_assets.ltv import labels

# Every test on a classic session and on Spark Connect (conftest `spark_mode`).
pytestmark = pytest.mark.classic_and_connect

H = 10
D, D2 = date(2017, 3, 10), date(2017, 3, 15)

TX = [
    # H1: 2.50 of A on D (counted), 4.00 of A on D + 9 late in the day (counted), 8.00 of A on
    #     D + 10 (not counted at D; counted at D2, whose window ends 03-24).
    (1, 100, 9, 1, 1.0, "2017-01-05 10:00:00"),
    (1, 101, 1, 1, 2.5, "2017-03-10 00:00:00"),
    (1, 102, 1, 2, 4.0, "2017-03-19 23:59:59"),
    (1, 103, 1, 1, 8.0, "2017-03-20 00:00:00"),
    # H2: the overlap product 2 (A and B) for 3.00 on 03-12, and product 99, which no
    #     product table knows, for 5.00 on 03-16: A = B = 3 at D; all = 8 at D, 5 at D2.
    (2, 200, 9, 1, 1.0, "2017-01-05 10:00:00"),
    (2, 201, 2, 1, 3.0, "2017-03-12 12:00:00"),
    (2, 202, 99, 1, 5.0, "2017-03-16 12:00:00"),
    # H3: bought only before D: in the population, label 0 everywhere.
    (3, 300, 1, 1, 6.0, "2017-02-01 10:00:00"),
    # H4: first purchase on D: not in the population at D; at D2 its spend from 03-15 on counts.
    (4, 400, 1, 1, 7.0, "2017-03-10 09:00:00"),
    (4, 401, 3, 1, 1.5, "2017-03-17 09:00:00"),
    # The last day of the data.
    (5, 500, 9, 1, 1.0, "2017-04-30 10:00:00"),
]
MEMBERS = [("A", 1), ("A", 2), ("B", 2), ("B", 3), ("all", None)]

EXPECTED = {
    (D, "A"): {1: 6.5, 2: 3.0, 3: 0.0},
    (D, "B"): {1: 0.0, 2: 3.0, 3: 0.0},
    (D, "all"): {1: 6.5, 2: 8.0, 3: 0.0},
    (D2, "A"): {1: 12.0, 2: 0.0, 3: 0.0, 4: 0.0},
    (D2, "B"): {1: 0.0, 2: 0.0, 3: 0.0, 4: 1.5},
    (D2, "all"): {1: 12.0, 2: 5.0, 3: 0.0, 4: 1.5},
}


def _tx(spark, rows=TX):
    # Aware UTC datetimes into `timestamp` are exact whatever the machine's zone (session TZ is UTC).
    frame = spark.createDataFrame(
        [(h, b, p, float(q), float(v), datetime.fromisoformat(ts).replace(tzinfo=timezone.utc)) for h, b, p, q, v, ts in rows],
        "household_id long, basket_id long, product_id long, quantity double, sales_value double, "
        "transaction_timestamp timestamp",
    )
    return frame


def _members(spark):
    return spark.createDataFrame(MEMBERS, "product_group string, product_id long")


def test_labels_by_hand(spark):
    out = labels.ltv_labels(_tx(spark), _members(spark), [D2, D], ["A", "B", "all"], horizon=H)
    assert out.columns == ["as_of", "product_group", "household_id", "label"]
    got: dict = {}
    for row in out.collect():
        got.setdefault((row["as_of"], row["product_group"]), {})[row["household_id"]] = row["label"]
    assert got == EXPECTED


def test_window_past_the_data_is_refused(spark):
    with pytest.raises(labels.LabelWindowError) as info:
        labels.ltv_labels(_tx(spark), _members(spark), [D, date(2017, 4, 22)], ["A"], horizon=H)
    assert str(info.value) == (
        "ltv_labels undefined for as_of 2017-04-22: the 10-day label window runs past the end of the data "
        "(2017-04-30); the last as_of with a complete window is 2017-04-21"
    )
