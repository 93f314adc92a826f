"""The propensity label (CONTRACTS §4), in Spark: did household h buy any product of
group g on a day d ≤ day < d + 30? Defined only while the window lies inside the data."""

from collections.abc import Sequence
from datetime import date, timedelta

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from propensity_assets.features.logic import with_day
from propensity_assets.groups.membership import group_transactions

HORIZON_DAYS = 30
_EPOCH = "1970-01-01"


class LabelWindowError(ValueError):
    """A label window runs past the end of the data."""


def last_labelable_as_of(last_day: date, horizon: int = HORIZON_DAYS) -> date:
    """The last as_of whose window d .. d + horizon − 1 ends on or before the last day of data."""
    return last_day - timedelta(days=horizon - 1)


def check_label_window(
    as_of_dates: Sequence[date], last_day: date, horizon: int = HORIZON_DAYS, table: str = "propensity_labels"
) -> None:
    limit = last_labelable_as_of(last_day, horizon)
    late = sorted(d for d in as_of_dates if d > limit)
    if late:
        shown = ", ".join(str(d) for d in late[:5]) + (" …" if len(late) > 5 else "")
        raise LabelWindowError(
            f"{table} undefined for as_of {shown}: the {horizon}-day label window runs past "
            f"the end of the data ({last_day}); the last as_of with a complete window is {limit}"
        )


def propensity_labels(
    transactions: DataFrame,
    members: DataFrame,
    as_of_dates: Sequence[date],
    groups: Sequence[str],
    horizon: int = HORIZON_DAYS,
) -> DataFrame:
    """Labels (as_of, product_group, household_id, label) for the population at each as_of.

    Each (household, group, as_of) is a query row among the household's purchase days
    in the group; a range frame over the next `horizon` days says whether any falls in it.
    """
    tx = with_day(transactions)
    last_day = tx.agg(F.max("day")).first()[0]
    if last_day is None:
        raise LabelWindowError("propensity_labels: the transactions table is empty")
    check_label_window(as_of_dates, last_day, horizon)
    spark = transactions.sparkSession
    t = F.datediff("day", F.lit(_EPOCH))
    wanted = spark.createDataFrame([(d,) for d in sorted(set(as_of_dates))], "as_of date")
    firsts = tx.groupBy("household_id").agg(F.min("day").alias("first_day"))
    population = firsts.crossJoin(F.broadcast(wanted)).where(F.col("first_day") < F.col("as_of")).select(
        "household_id", "as_of"
    )
    bought = (
        group_transactions(tx, members, groups)
        .select("household_id", "product_group", t.alias("t"))
        .distinct()
        .withColumn("bought", F.lit(1))
    )
    pairs = bought.select("household_id", "product_group").distinct()
    queries = (
        population.join(pairs, "household_id")
        .select("household_id", "product_group", F.datediff("as_of", F.lit(_EPOCH)).alias("t"))
        .withColumn("bought", F.lit(None).cast("int"))
    )
    ahead = Window.partitionBy("household_id", "product_group").orderBy("t").rangeBetween(0, horizon - 1)
    positive = (
        bought.unionByName(queries)
        .withColumn("label", (F.coalesce(F.sum("bought").over(ahead), F.lit(0)) > 0).cast("int"))
        .where(F.col("bought").isNull())
        .select("household_id", "product_group", F.date_add(F.lit(_EPOCH), F.col("t")).alias("as_of"), "label")
    )
    group_list = spark.createDataFrame([(g,) for g in groups], "product_group string")
    return (
        population.crossJoin(F.broadcast(group_list))
        .join(positive, ["household_id", "product_group", "as_of"], "left")
        .select("as_of", "product_group", "household_id", F.coalesce("label", F.lit(0)).alias("label"))
    )
