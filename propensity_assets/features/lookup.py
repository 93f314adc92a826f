"""Feature lookups: one product group's features at as_of dates, read from the lake's
feature views (`declaration.HOUSEHOLD`, `declaration.GROUP`) and joined per household,
with the ratios derived from the joined row.

Pure pandas and pyarrow, no Spark, no Dagster: the registered models import this module
to look up their own features, and must load in a bare virtualenv. `spark_features` is
the same lookup as a Spark frame, for scoring on the executors; it imports pyspark when
called.

The same `feature_matrix` builds the training set from lake snapshots and the scoring
input from a lake lookup, so training and inference cannot drift apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from propensity_assets.features.declaration import (
    GRP,
    GROUP,
    HH,
    HOUSEHOLD,
    KEYS,
    OVERDUE_VS_YEARLY_GAP,
    PROPENSITY,
    RATIO_WINDOWS,
    basket_share,
    day_share,
    windowed,
)
from propensity_assets.shared.lake import Lake, partition_dir


class FeatureLookupError(LookupError):
    """The lake lacks the partitions a lookup or a training set needs; the message names them."""


def views(group: str) -> list[tuple[str, dict[str, str]]]:
    """(table, partition spec beside as_of) of each feature view, for one product group."""
    return [(HOUSEHOLD.table, {}), (GROUP.table, {"product_group": group})]


def feature_matrix(household: pd.DataFrame, group: pd.DataFrame) -> pd.DataFrame:
    """One row per (as_of, household_id), sorted by those keys: household features, the
    group's features, and ratios.

    `household` has KEYS + hh_*; `group` has KEYS + grp_* for a single product group. The
    order never depends on how the lake's files lay the rows out, so a model fitted on the
    same data written twice is the same model.
    """
    household = household.assign(as_of=household["as_of"].astype(str))
    group = group.assign(as_of=group["as_of"].astype(str))
    frame = household.merge(group, on=KEYS, how="inner", validate="one_to_one")
    return with_ratios(frame.sort_values(KEYS, ignore_index=True))


def with_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """Adds the ratio features (`declaration.GROUP_RATIOS`) to `frame` (KEYS + hh_* + grp_*
    of one group, one row per key), in place, and makes every feature float64. Row by row:
    Spark scoring applies it to each Arrow batch of the joined features and gets exactly the
    driver's values."""
    for w in RATIO_WINDOWS:
        hh_baskets = frame[windowed(HH, "baskets", w)].replace(0, np.nan)
        hh_days = frame[windowed(HH, "days", w)].replace(0, np.nan)
        frame[basket_share(w)] = (frame[windowed(GRP, "baskets", w)] / hh_baskets).fillna(0.0)
        frame[day_share(w)] = (frame[windowed(GRP, "days", w)] / hh_days).fillna(0.0)
    year = RATIO_WINDOWS[-1]
    gap = float(year) / frame[windowed(GRP, "days", year)].replace(0, np.nan)
    frame[OVERDUE_VS_YEARLY_GAP] = frame["grp_days_since_last"] / gap
    features = [c for c in PROPENSITY.columns if c in frame.columns]
    frame[features] = frame[features].astype("float64")
    return frame


def missing_partitions(lake: Lake, group: str, dates: list[str], labels_table: str | None = None) -> list[str]:
    """The feature partitions (and, with `labels_table`, label partitions) of `group` at
    `dates` that the lake lacks, as `<table>/as_of=<d>[/product_group=<g>]`."""
    needed = dict(views(group))
    if labels_table:
        needed[labels_table] = {"product_group": group}
    return [
        f"{table}/" + partition_dir({"as_of": d, **spec})
        for table, spec in needed.items()
        for d in dates
        if not lake.exists(table, {"as_of": d, **spec})
    ]


def require_features(lake: Lake, group: str, dates: list[str]) -> None:
    """Raise FeatureLookupError, naming the partitions, when the lake lacks features of
    `group` at any of `dates` or one of their files is not a readable Parquet file. Checked
    per group before Spark reads them: one group's unreadable partition then fails that
    group only, instead of the one Spark job that scores every group."""
    missing = missing_partitions(lake, group, dates)
    if missing:
        raise FeatureLookupError(
            f"the lake at {lake.root} lacks {len(missing)} feature partition(s), e.g. {', '.join(missing[:3])}: "
            f"materialize {HOUSEHOLD.table} and {GROUP.table} for those as_of dates first"
        )
    for d in dates:
        for table, spec in views(group):
            bad = lake.unreadable_files(table, {"as_of": d, **spec})
            if bad:
                raise FeatureLookupError(
                    f"lake table {table!r} partition {partition_dir({'as_of': d, **spec})} holds {len(bad)} file(s) that "
                    f"are not readable Parquet: {'; '.join(bad[:3])}. Remove a stray file, or re-materialize {table} "
                    f"for as_of {d}"
                )


def feature_rows(lake: Lake, group: str, when: ds.Expression) -> pd.DataFrame:
    """The feature matrix of one group on the lake rows `when` keeps (pyarrow filters while
    scanning, so the rest never reaches memory). Callers check the partitions first."""
    household = lake.read_pandas(HOUSEHOLD.table, filters=when)
    grp = lake.read_pandas(GROUP.table, filters=when & (ds.field("product_group") == group))
    return feature_matrix(household, grp.drop(columns=["product_group"]))


def read_features(lake: Lake, group: str, dates: list[str]) -> pd.DataFrame:
    """The feature matrix of one group at `dates`, for every household of each population."""
    require_features(lake, group, dates)
    return feature_rows(lake, group, ds.field("as_of").isin(dates))


def lookup_features(lake: Lake, keys: pd.DataFrame, group: str) -> pd.DataFrame:
    """Feature rows for (household_id, as_of) keys. Keys outside the population at their
    as_of get no row."""
    dates = sorted(keys["as_of"].astype(str).unique())
    for d in dates:
        for table, spec in views(group):
            if not lake.exists(table, {"as_of": d, **spec}):
                where = partition_dir({"as_of": d, **spec})
                raise FeatureLookupError(
                    f"lake table {table!r} has no partition {where}: materialize {table} for as_of {d} first"
                )
    return read_features(lake, group, dates)


def spark_features(spark, lake: Lake, group: str, dates: list[str]):
    """The joined lake features of one group at `dates` as a Spark frame: KEYS (as_of a
    string, as in the lake's partition paths) + hh_* + grp_*, one row per household of each
    population. Spark reads only those partitions; the ratios are added per batch
    (`with_ratios`)."""
    from pyspark.sql import functions as F

    def table(name: str, spec: dict):
        base = lake.uri(name)
        paths = [f"{base}/{partition_dir({'as_of': d, **spec})}" for d in dates]
        frame = spark.read.option("basePath", base).parquet(*paths)
        # Partition values are inferred (as_of as a date): the key is the path's string.
        return frame.drop(*spec).withColumn("as_of", F.col("as_of").cast("string"))

    (household_table, household_spec), (group_table, group_spec) = views(group)
    return table(household_table, household_spec).join(table(group_table, group_spec), KEYS, "inner")
