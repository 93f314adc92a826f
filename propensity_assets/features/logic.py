"""Point-in-time features in Spark (CONTRACTS §4). Pure logic: DataFrames in, DataFrames out.

A feature *as of d* sees only transactions whose day is before d; a window of W
days at d covers d − W ≤ day < d.

The computation runs for many as_of dates at once, in one Spark job, and never
re-sums a window. Transactions are reduced once to one row per entity (a household,
or a household and product group) and active day; one sort per entity gives running
totals, and a window's sum is the difference of two of them: the total at d − 1 less
the one at d − W − 1 (`running_totals`). Sums are carried in fixed point, so that
difference is exact. The label windows (`features.labels`) reuse the same totals,
looking forward instead of back.

Distinct baskets use each basket's first and last day: a basket is in the window
when it starts before d and ends on or after d − W, so the count is
(baskets started by d − 1) − (baskets ended by d − W − 1). A basket is a run of
consecutive days (in the embedded data none spans two); a basket id that comes
back after a gap counts as a new basket.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, StructType

from propensity_assets.groups.membership import group_transactions

CONTRACT_WINDOWS = (30, 90, 365)
# Short windows beyond the contract: a 30-day purchase horizon is best predicted by
# the last week or two.
WINDOWS = (7, 14, *CONTRACT_WINDOWS)
_EPOCH = "1970-01-01"
METRICS = ("baskets", "spend", "units", "days")


def household_feature_columns() -> list[str]:
    return [f"hh_{m}_{w}d" for w in WINDOWS for m in METRICS] + ["hh_days_since_last", "hh_days_since_first"]


def group_feature_columns() -> list[str]:
    cols = [f"grp_{m}_{w}d" for w in WINDOWS for m in METRICS]
    return cols + ["grp_days_since_last", "grp_days_since_first"] + [f"grp_spend_share_{w}d" for w in WINDOWS]


def with_day(transactions: DataFrame) -> DataFrame:
    """The contract's day: the stored date part of the naive timestamp (session TZ is UTC)."""
    return transactions.withColumn("day", F.to_date("transaction_timestamp"))


def literal_frame(spark: SparkSession, rows: Iterable[tuple], schema: str) -> DataFrame:
    """A small frame of `rows` ("as_of date, product_group string") that travels inside the
    query plan, as one string literal split and cast by Spark.

    `spark.createDataFrame` of a Python list is read by Python workers on the executors,
    started at the driver's interpreter path (PYSPARK_PYTHON): on a cluster whose executors
    do not share the driver's filesystem that path does not exist. A literal needs no
    Python on the executors: the feature and label jobs run in the JVM alone. (One literal
    per value would also do, but Catalyst takes a minute over the 4,000 pairs of a year's
    backfill; one string costs nothing.)
    """
    struct = DataType.fromDDL(schema)
    assert isinstance(struct, StructType), schema
    lines = []
    for row in rows:
        values = [v.isoformat() if isinstance(v, date) else str(v) for v in row]
        assert len(values) == len(struct.fields) and not any(c in v for v in values for c in "\t\n"), row
        lines.append("\t".join(values))
    if not lines:
        return spark.range(0).select(*[F.lit(None).cast(f.dataType).alias(f.name) for f in struct.fields]).to(struct)
    text = spark.range(1).select(F.explode(F.split(F.lit("\n".join(lines)), "\n")).alias("line"))
    cells = text.select(F.split("line", "\t").alias("cells"))
    # `to` keeps createDataFrame's nullable columns.
    return cells.select(*[F.col("cells")[i].cast(f.dataType).alias(f.name) for i, f in enumerate(struct.fields)]).to(struct)


# Sums are carried in fixed point (millionths): a running sum and the difference of two
# running sums are then exact, so a window's total does not depend on where the running
# sum started (which dates a call covers) and is exactly 0 when nothing was bought.
_SCALE = 1_000_000


def to_fixed(col: str) -> F.Column:
    return F.round(F.col(col) * F.lit(_SCALE)).cast("bigint")


def from_fixed(col: F.Column) -> F.Column:
    return col.cast("double") / F.lit(float(_SCALE))


def day_number(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def _daily(tx: DataFrame, keys: Sequence[str]) -> DataFrame:
    """One row per entity and active day: (keys, t, spend, units, active, started, ended).

    t is the day number; spend and units are fixed point. `started` and `ended` count the
    basket runs that start and end that day. A basket is a run of consecutive days (in the
    embedded data none spans two); a basket id that comes back after a gap is a new run,
    so no run's end ever lies beyond a day it has no lines on (no future leaks).
    """
    keys = list(keys)
    # The only pass over raw transactions: everything after runs on basket-days.
    basket_days = tx.groupBy(*keys, "basket_id", "day").agg(
        F.sum(to_fixed("sales_value")).alias("spend"), F.sum(to_fixed("quantity")).alias("units")
    ).withColumn("t", F.datediff("day", F.lit(_EPOCH)))
    by_basket = Window.partitionBy(*keys, "basket_id").orderBy("t")
    gap = F.coalesce((F.col("t") - F.lag("t", 1).over(by_basket) > 1).cast("int"), F.lit(0))
    runs = basket_days.withColumn("run", F.sum(gap).over(by_basket))
    spans = runs.groupBy(*keys, "basket_id", "run").agg(F.min("t").alias("first"), F.max("t").alias("last"))
    zero, one = F.lit(0).cast("bigint"), F.lit(1).cast("bigint")
    marks = spans.select(*keys, F.col("first").alias("t"), one.alias("started"), zero.alias("ended")).unionByName(
        spans.select(*keys, F.col("last").alias("t"), zero.alias("started"), one.alias("ended"))
    ).groupBy(*keys, "t").agg(F.sum("started").alias("started"), F.sum("ended").alias("ended"))
    days = basket_days.groupBy(*keys, "t").agg(F.sum("spend").alias("spend"), F.sum("units").alias("units"))
    # every start or end day is a day with lines: the join loses nothing
    return days.join(marks, [*keys, "t"]).withColumn("active", one)


def _lookup_grid(ends: Sequence[int], back: Sequence[int]) -> tuple[list[int], dict[int, int]]:
    """Grid days and, per look-back b, the row offset from an end day e to e − b.

    The grid holds every end day and every e − b. When the offset from e to e − b is
    the same for every end day (one date, or a run of consecutive dates), that sparse
    grid is used; otherwise every day from min(ends) − max(back) to max(ends).
    """
    points = sorted({e - b for e in ends for b in (0, *back)})
    index = {p: i for i, p in enumerate(points)}
    offsets = {}
    for b in back:
        found = {index[e] - index[e - b] for e in ends}
        if len(found) != 1:
            lo, hi = min(ends) - max(back), max(ends)
            return list(range(lo, hi + 1)), {b: b for b in back}
        offsets[b] = found.pop()
    return points, offsets


def running_totals(
    daily: DataFrame,
    keys: Sequence[str],
    ends: Sequence[int],
    back: Sequence[int],
    metrics: Sequence[str] = ("spend", "units", "active", "started", "ended"),
) -> DataFrame:
    """Running totals of `daily` at every end day e and at every e − b, on one row per (entity, e).

    Rows: keys, t (= e), first_t (the entity's first day), last_t (its last day ≤ e),
    cum_<m> (sum over days ≤ e) and cum_<m>_<b> (sum over days ≤ e − b, 0 before the
    entity's first day) for m in `metrics` (bigint columns of `daily`). Only entities
    with a day ≤ e get a row at e.

    Grid rows (entity × grid day from the entity's first day on) go among the entity's
    daily rows; one sort by day gives running sums at the grid rows, and lags over the
    grid rows read the earlier grid days.
    """
    keys, metrics = list(keys), list(metrics)
    points, offsets = _lookup_grid(ends, back)
    spark = daily.sparkSession
    grid_days = literal_frame(spark, [(p,) for p in points], "t int")
    firsts = daily.groupBy(*keys).agg(F.min("t").alias("first_t"))
    grid = (
        firsts.crossJoin(F.broadcast(grid_days))
        .where(F.col("t") >= F.col("first_t"))
        .select(*keys, "t", "first_t", *[F.lit(None).cast("bigint").alias(m) for m in metrics], F.lit(1).alias("grid"))
    )
    rows = daily.select(*keys, "t", F.lit(None).cast("int").alias("first_t"), *metrics, F.lit(0).alias("grid"))
    so_far = Window.partitionBy(*keys).orderBy("t", "grid").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    running = rows.unionByName(grid).select(
        *keys, "t", "first_t", "grid",
        *[F.coalesce(F.sum(m).over(so_far), F.lit(0).cast("bigint")).alias(f"cum_{m}") for m in metrics],
        F.max(F.when(F.col("grid") == 0, F.col("t"))).over(so_far).alias("last_t"),
    ).where(F.col("grid") == 1)
    by_day = Window.partitionBy(*keys).orderBy("t")
    zero = F.lit(0).cast("bigint")
    lagged = [
        F.coalesce(F.lag(f"cum_{m}", offsets[b]).over(by_day), zero).alias(f"cum_{m}_{b}")
        for b in back for m in metrics
    ]
    return running.select(*keys, "t", "first_t", "last_t", *[f"cum_{m}" for m in metrics], *lagged).where(
        F.col("t").isin(sorted(set(ends)))
    )


def _windowed(daily: DataFrame, keys: Sequence[str], as_of_dates: Sequence[date], prefix: str) -> DataFrame:
    """Window features for every entity at every as_of in `as_of_dates` after its first day.

    A window of W days at d sums the days d − W .. d − 1: the running total at d − 1 less
    the one at d − W − 1. A basket run is in it when it started by d − 1 and had not
    ended by d − W − 1.
    """
    keys = list(keys)
    ends = [day_number(d) - 1 for d in sorted(set(as_of_dates))]
    run = running_totals(daily, keys, ends, WINDOWS)
    out = [F.date_add(F.lit(_EPOCH), F.col("t") + 1).alias("as_of"), *keys]
    for w in WINDOWS:
        out += [
            (F.col("cum_started") - F.col(f"cum_ended_{w}")).alias(f"{prefix}_baskets_{w}d"),
            from_fixed(F.col("cum_spend") - F.col(f"cum_spend_{w}")).alias(f"{prefix}_spend_{w}d"),
            from_fixed(F.col("cum_units") - F.col(f"cum_units_{w}")).alias(f"{prefix}_units_{w}d"),
            (F.col("cum_active") - F.col(f"cum_active_{w}")).alias(f"{prefix}_days_{w}d"),
        ]
    out.append((F.col("t") + 1 - F.col("last_t")).alias(f"{prefix}_days_since_last"))
    out.append((F.col("t") + 1 - F.col("first_t")).alias(f"{prefix}_days_since_first"))
    return run.select(*out)


def whole_groups(members: DataFrame, groups: Sequence[str]) -> list[str]:
    """The requested groups that hold every product (a null product_id: `all: true`)."""
    rows = members.where(F.col("product_id").isNull() & F.col("product_group").isin(list(groups)))
    return sorted({r[0] for r in rows.select("product_group").distinct().collect()})


def household_features(transactions: DataFrame, as_of_dates: Sequence[date]) -> DataFrame:
    """`household_features` at every date in `as_of_dates`: one row per household in the population.

    The population at d is every household with a transaction before d, which is
    exactly the entities whose first day is before d.
    """
    tx = with_day(transactions).where(F.col("day") < F.lit(max(as_of_dates)))
    feats = _windowed(_daily(tx, ["household_id"]), ["household_id"], as_of_dates, "hh")
    return feats.select("as_of", "household_id", *household_feature_columns())


def group_features(
    transactions: DataFrame,
    members: DataFrame,
    as_of_dates: Sequence[date],
    groups: Sequence[str],
) -> DataFrame:
    """`group_features` for every (as_of, group): one row per household in the population.

    A product in two groups counts in both. Households that never bought in a group
    get zeros, a null `grp_days_since_last`, and a spend share of 0. A group of every
    product (`all: true`) restricts nothing: its features are the household windows,
    computed once for all groups.
    """
    tx = with_day(transactions).where(F.col("day") < F.lit(max(as_of_dates)))
    hh = _windowed(_daily(tx, ["household_id"]), ["household_id"], as_of_dates, "hh")
    hh_cols = [f"hh_{m}_{w}d" for w in WINDOWS for m in METRICS] + ["hh_days_since_last", "hh_days_since_first"]
    zero_cols = [f"grp_{m}_{w}d" for w in WINDOWS for m in METRICS]
    grp_cols = [*zero_cols, "grp_days_since_last", "grp_days_since_first"]
    spark = transactions.sparkSession
    whole = whole_groups(members, groups)
    parts = []
    if whole:
        whole_list = literal_frame(spark, [(g,) for g in whole], "product_group string")
        parts.append(
            hh.crossJoin(F.broadcast(whole_list)).select(
                "as_of", "product_group", "household_id", *[F.col(h).alias(g) for h, g in zip(hh_cols, grp_cols)],
                *[f"hh_spend_{w}d" for w in WINDOWS],
            )
        )
    restricted = [g for g in groups if g not in whole]
    if restricted:
        keys = ["household_id", "product_group"]
        grp_tx = group_transactions(tx, members, restricted)
        grp = _windowed(_daily(grp_tx, keys), keys, as_of_dates, "grp")
        group_list = literal_frame(spark, [(g,) for g in restricted], "product_group string")
        population = hh.select("as_of", "household_id", *[f"hh_spend_{w}d" for w in WINDOWS]).crossJoin(
            F.broadcast(group_list)
        )
        joined = population.join(grp, ["as_of", *keys], "left").na.fill(0, zero_cols)
        parts.append(joined.select("as_of", "product_group", "household_id", *grp_cols, *[f"hh_spend_{w}d" for w in WINDOWS]))
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.unionByName(part)
    shares = [
        F.when(F.col(f"hh_spend_{w}d") == 0, F.lit(0.0))
        .otherwise(F.col(f"grp_spend_{w}d") / F.col(f"hh_spend_{w}d"))
        .alias(f"grp_spend_share_{w}d")
        for w in WINDOWS
    ]
    return joined.select("as_of", "product_group", "household_id", *grp_cols, *shares)


def read_transactions(spark: SparkSession, uri: str) -> DataFrame:
    return spark.read.parquet(uri).select(
        "household_id", "basket_id", "product_id",
        F.col("quantity").cast("double").alias("quantity"),
        F.col("sales_value").cast("double").alias("sales_value"),
        "transaction_timestamp",
    )
