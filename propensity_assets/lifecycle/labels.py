"""Every stage's labels in Spark (CONTRACTS §4, §8): the population at as_of and the forward
window are one mechanism; a stage declares only what its label is (`stage.LabelSpec`).

A label *at d* looks at the days d ≤ day < d + H of a household in a group; it is
defined only while that window lies inside the data. The population at d is the
features' population: every household with a transaction before d.
"""

from collections.abc import Sequence
from datetime import date, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from propensity_assets.features.logic import (
    KEYS,
    day_number,
    from_fixed,
    household_starts,
    per_group,
    running_totals,
    to_fixed,
    whole_groups,
    with_day,
)
from propensity_assets.groups.membership import HOUSEHOLD, group_transactions
from propensity_assets.lifecycle.stage import LabelSpec

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
    whose window runs past the data. The running totals of the features
    (`features.logic.running_totals`), read forward: the total at d is the running total at
    d + horizon − 1 less the one at d − 1, for every household (from its first day)
    and group. A group of every product (`all: true`) restricts nothing: it is the
    household's own total (HOUSEHOLD), relabelled.
    """
    tx = with_day(transactions)
    last_day = tx.agg(F.max("day")).first()[0]
    if last_day is None:
        raise LabelWindowError(f"{table}: the transactions table is empty")
    check_label_window(as_of_dates, last_day, horizon, table)
    whole = whole_groups(members, groups)
    restricted = [g for g in groups if g not in whole]
    lines = group_transactions(
        tx.where(F.col("day") < F.date_add(F.lit(max(as_of_dates)), horizon)), members, restricted, household=True
    )
    daily = (
        lines.groupBy(*KEYS, F.datediff("day", F.lit(_EPOCH)).alias("t"))
        .agg(F.sum(value).alias("value"))
        .repartition("household_id")
    )
    ends = [day_number(d) + horizon - 1 for d in sorted(set(as_of_dates))]
    as_of = F.date_add(F.lit(_EPOCH), F.col("t") - horizon + 1)
    sums = (
        running_totals(daily, household_starts(daily, [HOUSEHOLD, *restricted]), ends, [horizon], ["value"])
        .where(F.col("start_t") < F.datediff(as_of, F.lit(_EPOCH)))  # the population: a day before as_of
        .select("product_group", "household_id", as_of.alias("as_of"),
                (F.col("cum_value") - F.col(f"cum_value_{horizon}")).alias("total"))
    )
    return per_group(sums, whole).select("as_of", "product_group", "household_id", "total")


def stage_labels(
    label: LabelSpec,
    table: str,
    transactions: DataFrame,
    members: DataFrame,
    as_of_dates: Sequence[date],
    groups: Sequence[str],
    horizon: int,
) -> DataFrame:
    """Labels (as_of, product_group, household_id, label) of the population at each as_of,
    as `label` declares them over the `horizon` days from as_of: the column's total (exact:
    summed in fixed point, a double), or 1 when the household bought in the group (an int).
    Refuses (LabelWindowError, naming `table`) what `forward_totals` refuses."""
    if label.summed is None:
        # Counting lines: the total is positive exactly when there was a purchase.
        value, as_label = F.lit(1).cast("bigint"), (F.col("total") > 0).cast("int")
    else:
        value, as_label = to_fixed(label.summed), from_fixed(F.col("total"))
    totals = forward_totals(transactions, members, as_of_dates, groups, horizon, value, table)
    return totals.select("as_of", "product_group", "household_id", as_label.alias("label"))
