"""Point-in-time features in Spark (CONTRACTS §4). Pure logic: DataFrames in, DataFrames out.

A feature *as of d* sees only transactions whose day is before d; a window of W
days at d covers d − W ≤ day < d.

The computation runs for many as_of dates at once, in one Spark job. Rather than
re-summing a sliding window for every date, it reduces transactions to daily
events per entity (a household, or a household and product group), places one
query row per (entity, as_of) among them, and reads every window with range
frames ending the day before as_of: Spark sorts each entity's rows once and
evaluates all frames in that pass.

Distinct baskets use each basket's first and last day: a basket is in the window
when it starts before d and ends on or after d − W, so the count is
(baskets started by d − 1) − (baskets ended by d − W − 1). A basket is a run of
consecutive days (in the embedded data none spans two); a basket id that comes
back after a gap counts as a new basket.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from propensity_assets.groups.membership import group_transactions

CONTRACT_WINDOWS = (30, 90, 365)
# Short windows beyond the contract: a 30-day purchase horizon is best predicted by
# the last week or two.
WINDOWS = (7, 14, *CONTRACT_WINDOWS)
_EPOCH = "1970-01-01"
_ZEROS = (("spend", "double"), ("units", "double"), ("started", "bigint"), ("ended", "bigint"))
METRICS = ("baskets", "spend", "units", "days")


def household_feature_columns() -> list[str]:
    return [f"hh_{m}_{w}d" for w in WINDOWS for m in METRICS] + ["hh_days_since_last", "hh_days_since_first"]


def group_feature_columns() -> list[str]:
    cols = [f"grp_{m}_{w}d" for w in WINDOWS for m in METRICS]
    return cols + ["grp_days_since_last", "grp_days_since_first"] + [f"grp_spend_share_{w}d" for w in WINDOWS]


def with_day(transactions: DataFrame) -> DataFrame:
    """The contract's day: the stored date part of the naive timestamp (session TZ is UTC)."""
    return transactions.withColumn("day", F.to_date("transaction_timestamp"))


def _events(tx: DataFrame, keys: Sequence[str]) -> DataFrame:
    """Rows (keys, t, spend, units, started, ended, active) that window sums add up.

    t is the day number. One row per entity and active day carries its spend and
    units (active = 1); one row per basket marks the day it started and the day it
    ended. Everything else is a sum over a range of t, so rows need not be unique.
    """
    keys = list(keys)
    # The only pass over raw transactions: everything after runs on basket-days.
    basket_days = tx.groupBy(*keys, "basket_id", "day").agg(
        F.sum("sales_value").alias("spend"), F.sum("quantity").alias("units")
    ).withColumn("t", F.datediff("day", F.lit(_EPOCH)))
    days = basket_days.groupBy(*keys, "t").agg(F.sum("spend").alias("spend"), F.sum("units").alias("units"))
    # A basket is a run of consecutive days; a basket id seen again after a gap is a new
    # run, so no run's end ever lies beyond a day it has no lines on (no future leaks).
    by_basket = Window.partitionBy(*keys, "basket_id").orderBy("t")
    runs = basket_days.withColumn(
        "run", F.sum(F.coalesce((F.col("t") - F.lag("t", 1).over(by_basket) > 1).cast("int"), F.lit(0))).over(by_basket)
    )
    spans = runs.groupBy(*keys, "basket_id", "run").agg(F.min("t").alias("first"), F.max("t").alias("last"))
    zero, one = F.lit(0).cast("bigint"), F.lit(1).cast("bigint")
    return (
        days.select(*keys, "t", "spend", "units", zero.alias("started"), zero.alias("ended"), F.lit(1).alias("active"))
        .unionByName(
            spans.select(
                *keys, F.col("first").alias("t"), F.lit(0.0).alias("spend"), F.lit(0.0).alias("units"),
                one.alias("started"), (F.col("first") == F.col("last")).cast("bigint").alias("ended"),
                F.lit(0).alias("active"),
            )
        )
        .unionByName(
            spans.where(F.col("first") != F.col("last")).select(
                *keys, F.col("last").alias("t"), F.lit(0.0).alias("spend"), F.lit(0.0).alias("units"),
                zero.alias("started"), one.alias("ended"), F.lit(0).alias("active"),
            )
        )
    )


def _windowed(events: DataFrame, keys: Sequence[str], as_of_dates: Sequence[date], prefix: str) -> DataFrame:
    """Window features for every entity at every as_of in `as_of_dates` after its first day.

    Each (entity, as_of) is a query row placed among the entity's daily rows at day
    number as_of; range frames ending one day before it read the windows. Spark sorts
    each entity's rows once and evaluates every frame in the same pass.
    """
    keys = list(keys)
    spark = events.sparkSession
    wanted = spark.createDataFrame([(d,) for d in sorted(set(as_of_dates))], "as_of date")
    firsts = events.where(F.col("active") == 1).groupBy(*keys).agg(F.min("t").alias("first_t"))
    queries = (
        firsts.crossJoin(F.broadcast(wanted))
        .select(*keys, F.datediff("as_of", F.lit(_EPOCH)).alias("t"), "first_t")
        .where(F.col("first_t") < F.col("t"))
        .select(*keys, "t", *[F.lit(0).cast(c).alias(n) for n, c in _ZEROS], F.lit(None).cast("int").alias("active"), "first_t")
    )
    rows = events.withColumn("first_t", F.lit(None).cast("int")).unionByName(queries)
    by_day = Window.partitionBy(*keys).orderBy("t")

    def frame(lo, hi):
        return by_day.rangeBetween(lo, hi)

    before = frame(Window.unboundedPreceding, -1)
    out = [F.date_add(F.lit(_EPOCH), F.col("t")).alias("as_of"), *keys]
    for w in WINDOWS:
        recent = frame(-w, -1)
        out += [
            (
                F.coalesce(F.sum("started").over(before), F.lit(0))
                - F.coalesce(F.sum("ended").over(frame(Window.unboundedPreceding, -w - 1)), F.lit(0))
            ).alias(f"{prefix}_baskets_{w}d"),
            F.coalesce(F.sum("spend").over(recent), F.lit(0.0)).alias(f"{prefix}_spend_{w}d"),
            F.coalesce(F.sum("units").over(recent), F.lit(0.0)).alias(f"{prefix}_units_{w}d"),
            F.coalesce(F.sum("active").over(recent), F.lit(0)).alias(f"{prefix}_days_{w}d"),
        ]
    out.append((F.col("t") - F.max(F.when(F.col("active") == 1, F.col("t"))).over(before)).alias(f"{prefix}_days_since_last"))
    out.append((F.col("t") - F.col("first_t")).alias(f"{prefix}_days_since_first"))
    return rows.select(*out, "active").where(F.col("active").isNull()).drop("active")


def household_features(transactions: DataFrame, as_of_dates: Sequence[date]) -> DataFrame:
    """`household_features` at every date in `as_of_dates`: one row per household in the population.

    The population at d is every household with a transaction before d, which is
    exactly the entities whose grid starts before d.
    """
    tx = with_day(transactions).where(F.col("day") < F.lit(max(as_of_dates)))
    feats = _windowed(_events(tx, ["household_id"]), ["household_id"], as_of_dates, "hh")
    return feats.select("as_of", "household_id", *household_feature_columns())


def group_features(
    transactions: DataFrame,
    members: DataFrame,
    as_of_dates: Sequence[date],
    groups: Sequence[str],
) -> DataFrame:
    """`group_features` for every (as_of, group): one row per household in the population.

    A product in two groups counts in both. Households that never bought in a group
    get zeros, a null `grp_days_since_last`, and a spend share of 0.
    """
    tx = with_day(transactions).where(F.col("day") < F.lit(max(as_of_dates)))
    hh = _windowed(_events(tx, ["household_id"]), ["household_id"], as_of_dates, "hh").select(
        "as_of", "household_id", *[f"hh_spend_{w}d" for w in WINDOWS]
    )
    grp_tx = group_transactions(tx, members, groups)
    keys = ["household_id", "product_group"]
    grp = _windowed(_events(grp_tx, keys), keys, as_of_dates, "grp")
    spark = transactions.sparkSession
    group_list = spark.createDataFrame([(g,) for g in groups], "product_group string")
    population = hh.crossJoin(F.broadcast(group_list))
    joined = population.join(grp, ["as_of", *keys], "left")
    zero_cols = [f"grp_{m}_{w}d" for w in WINDOWS for m in METRICS]
    joined = joined.na.fill(0, zero_cols)
    shares = [
        F.when(F.col(f"hh_spend_{w}d") == 0, F.lit(0.0))
        .otherwise(F.col(f"grp_spend_{w}d") / F.col(f"hh_spend_{w}d"))
        .alias(f"grp_spend_share_{w}d")
        for w in WINDOWS
    ]
    return joined.select(
        "as_of", "product_group", "household_id", *zero_cols, "grp_days_since_last", "grp_days_since_first", *shares
    )


def read_transactions(spark: SparkSession, uri: str) -> DataFrame:
    return spark.read.parquet(uri).select(
        "household_id", "basket_id", "product_id",
        F.col("quantity").cast("double").alias("quantity"),
        F.col("sales_value").cast("double").alias("sales_value"),
        "transaction_timestamp",
    )
