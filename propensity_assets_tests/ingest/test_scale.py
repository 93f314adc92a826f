"""The scale generator (`propensity-assets scale-data`, ingest/scale.py) on a slice of the
embedded data: the first 40 households, 3× (copy 0 unchanged, two shifted copies).

Checked: the canonical schema, N × the households, new and unique basket ids and no
basket repeated, every date inside the data's range, one shift per household (distinct
across its copies, time of day kept), the same files for the same seed, clear errors for
bad arguments, and a generated directory that ingests through the `dagster` CLI into
household features.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from propensity_assets import cli
from propensity_assets.ingest.scale import ScaleError, generate, original_tables
from propensity_assets.ingest.sources import SCHEMA, RawTable, read_source
from propensity_assets.ingest.validation import validate
from propensity_assets_tests.cli_helpers import instance_at

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FACTOR, HOUSEHOLDS, SEED = 3, 40, 11
DAY = pd.Timedelta(days=1)


def read(directory: Path, table: str) -> pd.DataFrame:
    return pq.read_table(directory / f"{table}.parquet").to_pandas()


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    out = tmp_path_factory.mktemp("scale") / "x3"
    report = generate(FACTOR, out, seed=SEED, households=HOUSEHOLDS)
    original = {name: table.to_pandas() for name, table in original_tables(HOUSEHOLDS).items()}
    return out, report, original


def copies(frame: pd.DataFrame, original: pd.DataFrame) -> list[pd.DataFrame]:
    """The generated rows split into copies: copy k is rows k*n .. (k+1)*n - 1, in the original's order."""
    n = len(original)
    assert len(frame) == FACTOR * n
    return [frame.iloc[k * n:(k + 1) * n].reset_index(drop=True) for k in range(FACTOR)]


def test_every_table_has_the_canonical_schema(scaled):
    out, _, original = scaled
    kinds = {"int": pa.types.is_integer, "number": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t), "timestamp": pa.types.is_timestamp,
             "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t)}
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.parquet" for t in SCHEMA)
    for table, (required, optional) in SCHEMA.items():
        schema = pq.read_schema(out / f"{table}.parquet")
        assert schema.names == list(original[table].columns), table
        assert set(required) <= set(schema.names), table
        for col, kind in {**required, **optional}.items():
            if col in schema.names:
                assert kinds[kind](schema.field(col).type), f"{table}.{col}: {schema.field(col).type} is not {kind}"
        # The only columns beyond the contract's are the households' demographics (CONTRACTS §1).
        if table != "households":
            assert set(schema.names) <= set(required) | set(optional), table
        # Ingest's own validation reads the file and loses no row; the only rows it sets
        # aside are the embedded data's own exact duplicates (4.2 % of `coupons`), once per copy.
        result = validate(read_source(table, str(out)))
        assert result.invalid_share == 0, (table, result.invalid_counts)
        own = validate(RawTable(table, original[table], "original")).invalid_counts.get("duplicate_row", 0)
        copies_of_table = 1 if table in ("products", "coupons", "campaign_descriptions") else FACTOR
        assert result.invalid_counts.get("duplicate_row", 0) == copies_of_table * own, table


def test_copy_zero_is_the_data_unchanged_and_factor_one_writes_it(scaled, tmp_path):
    out, _, original = scaled
    for table in SCHEMA:
        generated = read(out, table)
        n = len(original[table])
        pd.testing.assert_frame_equal(generated.iloc[:n].reset_index(drop=True), original[table], check_dtype=True)
    generate(1, tmp_path / "x1", households=HOUSEHOLDS)
    for table in SCHEMA:
        pd.testing.assert_frame_equal(read(tmp_path / "x1", table), original[table])


def test_n_times_the_households_with_new_ids(scaled):
    out, report, original = scaled
    for table in ("transactions", "households", "campaigns", "coupon_redemptions"):
        ids = read(out, table)["household_id"]
        assert ids.nunique() == FACTOR * original[table]["household_id"].nunique(), table
        # The copies' ids are new: none is an id of the original, nor of another copy.
        parts = [set(c["household_id"]) for c in copies(read(out, table), original[table])]
        assert all(not (parts[i] & parts[j]) for i in range(FACTOR) for j in range(i + 1, FACTOR)), table
    assert read(out, "transactions")["household_id"].nunique() == FACTOR * HOUSEHOLDS
    known = set().union(*(original[t]["household_id"] for t in ("transactions", "households", "campaigns", "coupon_redemptions")))
    assert report.households == FACTOR * len(known)
    for table in ("products", "coupons", "campaign_descriptions"):
        pd.testing.assert_frame_equal(read(out, table), original[table])


def test_no_duplicate_basket_ids_and_no_repeated_baskets(scaled):
    out, _, original = scaled
    tx = read(out, "transactions")
    orig_baskets = original["transactions"]["basket_id"].nunique()
    # New and unique ids: N x the baskets, each in one household and at one time.
    assert tx["basket_id"].nunique() == FACTOR * orig_baskets
    per_basket = tx.groupby("basket_id").agg(h=("household_id", "nunique"), t=("transaction_timestamp", "nunique"))
    assert (per_basket["h"] == 1).all()
    assert per_basket["t"].max() == original["transactions"].groupby("basket_id")["transaction_timestamp"].nunique().max()
    # No basket is a copy of another: its origin household, time and content never repeat.
    stride = 10 ** len(str(int(original["transactions"]["household_id"].max())))
    tx["origin"] = tx["household_id"] % stride
    content = (tx.sort_values(["basket_id", "product_id", "quantity", "sales_value"])
               .groupby("basket_id")
               .agg(origin=("origin", "first"), time=("transaction_timestamp", "min"),
                    items=("product_id", tuple), values=("sales_value", tuple)))
    assert not content.duplicated().any()


def test_dates_stay_within_the_data_range(scaled):
    out, report, original = scaled
    first = original["transactions"]["transaction_timestamp"].min().normalize()
    end = original["transactions"]["transaction_timestamp"].max().normalize() + DAY
    assert (report.first_day, report.last_day) == (str(first.date()), str((end - DAY).date()))
    tx = read(out, "transactions")["transaction_timestamp"]
    assert tx.between(first, end, inclusive="left").all()
    redemptions = read(out, "coupon_redemptions")["redemption_date"]
    assert redemptions.between(first, end, inclusive="left").all()
    # Shifted days wrap from the range's end to its start: the copies reach both ends.
    assert (tx.dt.normalize().min(), tx.dt.normalize().max()) == (first, end - DAY)


def test_one_shift_per_household_distinct_across_its_copies(scaled):
    out, report, original = scaled
    span = (pd.Timestamp(report.last_day) - pd.Timestamp(report.first_day)).days + 1
    orig = original["transactions"]
    shifts = {}
    for k, copy in enumerate(copies(read(out, "transactions"), orig)):
        delta = copy["transaction_timestamp"] - orig["transaction_timestamp"]
        # Whole days, time of day kept; modulo the span, one constant per household.
        assert (delta % DAY == pd.Timedelta(0)).all()
        days = (delta // DAY) % span
        per_household = days.groupby(orig["household_id"]).agg(["nunique", "first"])
        assert (per_household["nunique"] == 1).all()
        assert (per_household["first"] == 0).all() if k == 0 else (per_household["first"] > 0).all()
        shifts[k] = per_household["first"]
        # The household's coupon redemptions move with it.
        red, orig_red = copies(read(out, "coupon_redemptions"), original["coupon_redemptions"])[k], original["coupon_redemptions"]
        red_days = ((red["redemption_date"] - orig_red["redemption_date"]) // DAY) % span
        expected = orig_red["household_id"].map(shifts[k])
        known = expected.notna()  # redemptions of households without transactions have their own shift
        assert (red_days[known] == expected[known]).all()
    assert (shifts[1] != shifts[2]).all()


def test_the_same_seed_writes_the_same_data_and_another_seed_does_not(scaled, tmp_path):
    out, _, _ = scaled
    generate(FACTOR, tmp_path / "same", seed=SEED, households=HOUSEHOLDS)
    generate(FACTOR, tmp_path / "other", seed=SEED + 1, households=HOUSEHOLDS)
    for table in SCHEMA:
        assert pq.read_table(tmp_path / "same" / f"{table}.parquet").equals(pq.read_table(out / f"{table}.parquet"))
    assert not read(tmp_path / "other", "transactions").equals(read(out, "transactions"))
    # Copy k does not depend on N: 2x is the first two copies of 3x.
    generate(2, tmp_path / "two", seed=SEED, households=HOUSEHOLDS)
    two = read(tmp_path / "two", "transactions")
    pd.testing.assert_frame_equal(two, read(out, "transactions").iloc[: len(two)].reset_index(drop=True))


def test_bad_arguments_are_refused_with_a_clear_error(tmp_path, capsys):
    with pytest.raises(ScaleError, match="expected a whole number >= 1"):
        generate(0, tmp_path / "zero")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    assert cli.main(["scale-data", "--factor", "2", "--out", str(occupied)]) == 2
    assert "is not empty" in capsys.readouterr().err and (occupied / "keep.txt").read_text() == "mine"
    assert cli.main(["scale-data", "--factor", "-3", "--out", str(tmp_path / "neg")]) == 2
    assert "--factor -3: expected a whole number >= 1" in capsys.readouterr().err
    with pytest.raises(ScaleError, match="too large"):
        generate(400, tmp_path / "huge", households=2)
    assert not (tmp_path / "zero").exists() and not (tmp_path / "neg").exists() and not (tmp_path / "huge").exists()


SPARK_CONF = "spark.sql.shuffle.partitions=2,spark.ui.enabled=false,spark.sql.adaptive.enabled=false," \
             "spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def test_a_generated_directory_runs_through_ingest_and_features(scaled, tmp_path):
    out, _, _ = scaled
    home, lake = tmp_path / "home", tmp_path / "lake"
    home.mkdir()
    (home / "dagster.yaml").symlink_to(REPO / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "PROPENSITY_DATA_DIR": str(tmp_path),
           "PROPENSITY_SOURCE_DIR": str(out), "PROPENSITY_LAKE_URI": str(lake),
           "PROPENSITY_PRODUCT_GROUPS": str(REPO / "data" / "product_groups.yaml"),
           "SPARK_MASTER": "local[1]", "SPARK_DRIVER_MEMORY": "1g", "PROPENSITY_SPARK_CONF": SPARK_CONF,
           "PYSPARK_PYTHON": sys.executable}
    as_of = "2017-07-01"
    # household_features needs no product_group partitions: no `sync-groups` (a process fewer).
    for command in (["dg", "launch", "-m", "propensity_assets.definitions", "--job", "ingest_job"],
                    ["dg", "launch", "-m", "propensity_assets.definitions",
                     "--assets", "household_features", "--partition", as_of]):
        proc = subprocess.run([str(BIN / command[0]), *command[1:]], env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    tx = read(out, "transactions")
    population = set(tx.loc[tx["transaction_timestamp"] < pd.Timestamp(as_of), "household_id"])
    features = pd.read_parquet(lake / "household_features" / f"as_of={as_of}")
    assert set(features["household_id"]) == population
    assert len(population) > 2 * HOUSEHOLDS  # the synthetic households are in it
    with instance_at(home) as instance:
        assert all(run.status.value == "SUCCESS" for run in instance.get_runs())
