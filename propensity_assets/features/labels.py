"""Forward label windows in Spark, shared by every stage's labels (CONTRACTS §4, §8).

A label *at d* looks at the days d ≤ day < d + H of a household in a group; it is
defined only while that window lies inside the data. The population at d is the
features' population: every household with a transaction before d.
"""

from collections.abc import Sequence
from datetime import date, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from propensity_assets.features.logic import day_number, literal_frame, running_totals, whole_groups, with_day
from propensity_assets.groups.membership import group_transactions

_EPOCH = "1970-01-01"


class LabelWindowError(ValueError):
    """A label window runs past the end of the data, or there is no data."""


def last_labelable_as_of(last_day: date, horizon: int) -> date:
    """The last as_of whose window d .. d + horizon − 1 ends on or before the last day of data."""
    return last_day - timedelta(days=horizon - 1)


def check_label_window(as_of_dates: Sequence[date], last_day: date, horizon: int, table: str) -> None:
    limit = last_labelable_as_of(last_day, horizon)
    late = sorted(d for d in as_of_dates if d > limit)
    if late:
        shown = ", ".join(str(d) for d in late[:5]) + (" …" if len(late) > 5 else "")
        raise LabelWindowError(
            f"{table} undefined for as_of {shown}: the {horizon}-day label window runs past "
            f"the end of the data ({last_day}); the last as_of with a complete window is {limit}"
        )


def forward_totals(
    transactions: DataFrame,
    members: DataFrame,
    as_of_dates: Sequence[date],
    groups: Sequence[str],
    horizon: int,
    value: F.Column,
    table: str,
) -> DataFrame:
    """(as_of, product_group, household_id, total) over the population at each as_of:
    the sum of `value` (a bigint per transaction line) over h's lines in g with
    d ≤ day < d + horizon, 0 when there are none.

    Refuses (LabelWindowError, naming `table`) an empty transactions table or an as_of
    whose window runs past the data. A daily series per (household, group) over
    [min(as_of), max(as_of) + horizon) and its running total: the total at d is the
    running total at d + horizon − 1 less the one at d − 1. A group of every product
    (`all: true`) restricts nothing: it reuses the household series.
    """
    tx = with_day(transactions)
    last_day = tx.agg(F.max("day")).first()[0]
    if last_day is None:
        raise LabelWindowError(f"{table}: the transactions table is empty")
    check_label_window(as_of_dates, last_day, horizon, table)
    spark = transactions.sparkSession
    first, last = min(as_of_dates), max(as_of_dates)
    t = F.datediff("day", F.lit(_EPOCH))
    wanted = literal_frame(spark, [(d,) for d in sorted(set(as_of_dates))], "as_of date")
    firsts = tx.groupBy("household_id").agg(F.min("day").alias("first_day"))
    population = firsts.crossJoin(F.broadcast(wanted)).where(F.col("first_day") < F.col("as_of")).select(
        "household_id", "as_of"
    )
    window_tx = tx.where((F.col("day") >= F.lit(first)) & (F.col("day") < F.date_add(F.lit(last), horizon)))
    whole = whole_groups(members, groups)
    restricted = [g for g in groups if g not in whole]
    keys = ["household_id", "product_group"]
    parts = []
    if whole:
        hh_daily = window_tx.groupBy("household_id", t.alias("t")).agg(F.sum(value).alias("value"))
        whole_list = literal_frame(spark, [(g,) for g in whole], "product_group string")
        parts.append(hh_daily.crossJoin(F.broadcast(whole_list)).select(*keys, "t", "value"))
    if restricted:
        parts.append(
            group_transactions(window_tx, members, restricted)
            .groupBy(*keys, t.alias("t"))
            .agg(F.sum(value).alias("value"))
        )
    daily = parts[0]
    for part in parts[1:]:
        daily = daily.unionByName(part)
    ends = [day_number(d) + horizon - 1 for d in sorted(set(as_of_dates))]
    sums = running_totals(daily, keys, ends, [horizon], ["value"]).select(
        *keys,
        F.date_add(F.lit(_EPOCH), F.col("t") - horizon + 1).alias("as_of"),
        (F.col("cum_value") - F.col(f"cum_value_{horizon}")).alias("total"),
    )
    group_list = literal_frame(spark, [(g,) for g in groups], "product_group string")
    return (
        population.crossJoin(F.broadcast(group_list))
        .join(sums, [*keys, "as_of"], "left")
        .select("as_of", "product_group", "household_id", F.coalesce("total", F.lit(0).cast("bigint")).alias("total"))
    )
