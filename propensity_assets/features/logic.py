"""Point-in-time features in Spark (CONTRACTS §4). Pure logic: DataFrames in, DataFrames out.

A feature *as of d* sees only transactions whose day is before d; a window of W
days at d covers d − W ≤ day < d.

The computation runs for many as_of dates at once, in one Spark job, and never
re-sums a window. An entity is a household and a product group, or the household as
a whole (the product group HOUSEHOLD): each transaction line is copied once per
entity it counts for (`group_transactions`), so household and group windows come
from one pass. Lines are reduced once to one row per entity and active day, moved
once so that each household's rows sit together; one sort per entity gives running
totals, and a window's sum is the difference of two of them: the total at d − 1 less
the one at d − W − 1 (`running_totals`). Sums are carried in fixed point, so that
difference is exact. Every household gets a row for every entity from its first day
on, so a group it never bought in has zeros without a join against the population.
The label windows (`lifecycle.labels`) reuse the same totals, looking forward
instead of back.

Distinct baskets use each basket's first and last day: a basket is in the window
when it starts before d and ends on or after d − W, so the count is
(baskets started by d − 1) − (baskets ended by d − W − 1). A basket is a run of
consecutive days (in the embedded data none spans two); a basket id that comes
back after a gap counts as a new basket.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from propensity_assets.features import declaration as declared
from propensity_assets.features.declaration import METRICS, WINDOWS, spend_share, windowed
from propensity_assets.groups.membership import HOUSEHOLD, group_transactions
from propensity_assets.shared.spark_frames import literal_frame

_EPOCH = "1970-01-01"
# Every running total is per entity: a household, and a product group or HOUSEHOLD.
KEYS = ("household_id", "product_group")


def with_day(transactions: DataFrame) -> DataFrame:
    """The contract's day: the stored date part of the naive timestamp (session TZ is UTC)."""
    return transactions.withColumn("day", F.to_date("transaction_timestamp"))


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


def _daily(lines: DataFrame) -> DataFrame:
    """One row per entity (household_id, product_group) and active day: (keys, t, spend,
    units, active, started, ended), partitioned by household.

    t is the day number; spend and units are fixed point. `started` and `ended` count the
    basket runs that start and end that day. A basket is a run of consecutive days (in the
    embedded data none spans two); a basket id that comes back after a gap is a new run,
    so no run's end ever lies beyond a day it has no lines on (no future leaks).

    Every later step groups or orders within a household: after the one shuffle by
    household here, none of them moves rows again.
    """
    basket_days = (
        lines.groupBy(*KEYS, "basket_id", "day")
        .agg(F.sum(to_fixed("sales_value")).alias("spend"), F.sum(to_fixed("quantity")).alias("units"))
        .withColumn("t", F.datediff("day", F.lit(_EPOCH)))
        .repartition("household_id")
    )
    by_basket = Window.partitionBy(*KEYS, "basket_id").orderBy("t")
    started = F.coalesce(F.col("t") - F.lag("t", 1).over(by_basket) > 1, F.lit(True))
    ended = F.coalesce(F.lead("t", 1).over(by_basket) - F.col("t") > 1, F.lit(True))
    marked = basket_days.select(
        *KEYS, "t", "spend", "units", started.cast("bigint").alias("started"), ended.cast("bigint").alias("ended")
    )
    return marked.groupBy(*KEYS, "t").agg(
        F.sum("spend").alias("spend"),
        F.sum("units").alias("units"),
        F.sum("started").alias("started"),
        F.sum("ended").alias("ended"),
        F.lit(1).cast("bigint").alias("active"),
    )


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
    starts: DataFrame,
    ends: Sequence[int],
    back: Sequence[int],
    metrics: Sequence[str] = ("spend", "units", "active", "started", "ended"),
) -> DataFrame:
    """Running totals of `daily` at every end day e and at every e − b, on one row per
    entity of `starts` and end day e ≥ its start_t.

    `daily` has KEYS, t and the bigint `metrics`; `starts` has KEYS and start_t: every
    entity there gets a row at each end day from start_t on, whether or not it has
    daily rows (its totals are then 0). Rows: KEYS, t (= e), start_t, first_t and
    last_t (the entity's first and last day ≤ e, null when none), cum_<m> (sum over
    days ≤ e) and cum_<m>_<b> (sum over days ≤ e − b; 0 before start_t).

    Grid rows (entity × grid day from start_t on) go among the entity's daily rows; one
    sort by day gives running sums at the grid rows, and lags over the grid rows read
    the earlier grid days.
    """
    metrics = list(metrics)
    points, offsets = _lookup_grid(ends, back)
    grid_days = literal_frame(daily.sparkSession, [(p,) for p in points], "t int")
    grid = (
        starts.crossJoin(F.broadcast(grid_days))
        .where(F.col("t") >= F.col("start_t"))
        .select(*KEYS, "t", "start_t", *[F.lit(None).cast("bigint").alias(m) for m in metrics], F.lit(1).alias("grid"))
    )
    rows = daily.select(*KEYS, "t", F.lit(None).cast("int").alias("start_t"), *metrics, F.lit(0).alias("grid"))
    so_far = Window.partitionBy(*KEYS).orderBy("t", "grid").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    bought = F.when(F.col("grid") == 0, F.col("t"))
    running = rows.unionByName(grid).select(
        *KEYS, "t", "start_t", "grid",
        *[F.coalesce(F.sum(m).over(so_far), F.lit(0).cast("bigint")).alias(f"cum_{m}") for m in metrics],
        F.min(bought).over(so_far).alias("first_t"),
        F.max(bought).over(so_far).alias("last_t"),
    ).where(F.col("grid") == 1)
    by_day = Window.partitionBy(*KEYS).orderBy("t")
    zero = F.lit(0).cast("bigint")
    lagged = [
        F.coalesce(F.lag(f"cum_{m}", offsets[b]).over(by_day), zero).alias(f"cum_{m}_{b}")
        for b in back for m in metrics
    ]
    return running.select(*KEYS, "t", "start_t", "first_t", "last_t", *[f"cum_{m}" for m in metrics], *lagged).where(
        F.col("t").isin(sorted(set(ends)))
    )


def household_starts(daily: DataFrame, groups: Sequence[str]) -> DataFrame:
    """(KEYS, start_t): every household of `daily` (its HOUSEHOLD rows) with each of
    `groups`, from the household's first day on."""
    firsts = daily.where(F.col("product_group") == HOUSEHOLD).groupBy("household_id").agg(F.min("t").alias("start_t"))
    group_list = literal_frame(daily.sparkSession, [(g,) for g in groups], "product_group string")
    return firsts.crossJoin(F.broadcast(group_list)).select(*KEYS, "start_t")


def _windowed(lines: DataFrame, entities: Sequence[str], as_of_dates: Sequence[date]) -> DataFrame:
    """Window features (without prefix) at every as_of in `as_of_dates` for every household
    with a day before it, and each of `entities` (HOUSEHOLD and product groups).

    A window of W days at d sums the days d − W .. d − 1: the running total at d − 1 less
    the one at d − W − 1. A basket run is in it when it started by d − 1 and had not
    ended by d − W − 1. An entity without a purchase before d has zeros and null days
    since its first and last purchase.
    """
    ends = [day_number(d) - 1 for d in sorted(set(as_of_dates))]
    daily = _daily(lines)
    run = running_totals(daily, household_starts(daily, entities), ends, WINDOWS)
    out = [F.date_add(F.lit(_EPOCH), F.col("t") + 1).alias("as_of"), *KEYS]
    for w in WINDOWS:
        out += [
            (F.col("cum_started") - F.col(f"cum_ended_{w}")).alias(f"baskets_{w}d"),
            from_fixed(F.col("cum_spend") - F.col(f"cum_spend_{w}")).alias(f"spend_{w}d"),
            from_fixed(F.col("cum_units") - F.col(f"cum_units_{w}")).alias(f"units_{w}d"),
            (F.col("cum_active") - F.col(f"cum_active_{w}")).alias(f"days_{w}d"),
        ]
    out.append((F.col("t") + 1 - F.col("last_t")).alias("days_since_last"))
    out.append((F.col("t") + 1 - F.col("first_t")).alias("days_since_first"))
    return run.select(*out)


def _named(prefix: str) -> list[F.Column]:
    return [F.col(f"{m}_{w}d").alias(windowed(prefix, m, w)) for w in WINDOWS for m in METRICS] + [
        F.col("days_since_last").alias(f"{prefix}_days_since_last"),
        F.col("days_since_first").alias(f"{prefix}_days_since_first"),
    ]


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
    lines = tx.withColumn("product_group", F.lit(HOUSEHOLD))
    feats = _windowed(lines, [HOUSEHOLD], as_of_dates).select("as_of", "household_id", *_named(declared.HH))
    return feats.select(*declared.HOUSEHOLD.keys, *declared.HOUSEHOLD.columns)


def group_features(
    transactions: DataFrame,
    members: DataFrame,
    as_of_dates: Sequence[date],
    groups: Sequence[str],
) -> DataFrame:
    """`group_features` for every (as_of, group): one row per household in the population.

    A product in two groups counts in both. Households that never bought in a group
    get zeros, a null `grp_days_since_last`, and a spend share of 0. The household's
    own windows (for the spend shares) come from the same pass, as the entity
    HOUSEHOLD; a group of every product (`all: true`) restricts nothing: its features
    are those household windows, relabelled.
    """
    tx = with_day(transactions).where(F.col("day") < F.lit(max(as_of_dates)))
    whole = whole_groups(members, groups)
    restricted = [g for g in groups if g not in whole]
    feats = _windowed(group_transactions(tx, members, restricted, household=True), [HOUSEHOLD, *restricted], as_of_dates)
    # the household's spend beside each of its groups' rows at the same as_of: the rows
    # are already partitioned by household, so this window only sorts
    same_day = Window.partitionBy("household_id", "as_of")
    hh_spend = {
        w: F.max(F.when(F.col("product_group") == HOUSEHOLD, F.col(f"spend_{w}d"))).over(same_day) for w in WINDOWS
    }
    shares = [
        F.when(hh_spend[w] == 0, F.lit(0.0)).otherwise(F.col(f"spend_{w}d") / hh_spend[w]).alias(spend_share(w))
        for w in WINDOWS
    ]
    named = feats.select("as_of", "product_group", "household_id", *_named(declared.GRP), *shares)
    return per_group(named, whole).select(*declared.GROUP.keys, *declared.GROUP.columns)


def per_group(entities: DataFrame, whole: Sequence[str]) -> DataFrame:
    """Rows of `entities` (product_group a restricted group or HOUSEHOLD) per requested
    group: the restricted groups' own rows, and the HOUSEHOLD rows once for each group of
    every product in `whole` (such a group restricts nothing)."""
    own = entities.where(F.col("product_group") != HOUSEHOLD)
    if not whole:
        return own
    whole_list = literal_frame(entities.sparkSession, [(g,) for g in whole], "whole_group string")
    relabelled = (
        entities.where(F.col("product_group") == HOUSEHOLD)
        .crossJoin(F.broadcast(whole_list))
        .withColumn("product_group", F.col("whole_group"))
        .drop("whole_group")
    )
    return own.unionByName(relabelled)
