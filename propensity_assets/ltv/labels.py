"""The LTV label (CONTRACTS §8), in Spark: household h's spend on group g's products on
days d ≤ day < d + H, 0 for a household of the population that bought nothing in g
then. Defined only while the window lies inside the data."""

from collections.abc import Sequence
from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from propensity_assets.features.logic import with_day
from propensity_assets.groups.membership import group_transactions
from propensity_assets.propensity.labels import LabelWindowError, check_label_window

_EPOCH = "1970-01-01"

__all__ = ["LabelWindowError", "ltv_labels"]


def ltv_labels(
    transactions: DataFrame,
    members: DataFrame,
    as_of_dates: Sequence[date],
    groups: Sequence[str],
    horizon: int = 90,
) -> DataFrame:
    """Labels (as_of, product_group, household_id, label) for the population at each as_of.

    Each (household, group, as_of) is a query row among the household's daily spend in
    the group; a range frame over the next `horizon` days sums it.
    """
    tx = with_day(transactions)
    last_day = tx.agg(F.max("day")).first()[0]
    if last_day is None:
        raise LabelWindowError("ltv_labels: the transactions table is empty")
    check_label_window(as_of_dates, last_day, horizon, table="ltv_labels")
    spark = transactions.sparkSession
    t = F.datediff("day", F.lit(_EPOCH))
    wanted = spark.createDataFrame([(d,) for d in sorted(set(as_of_dates))], "as_of date")
    firsts = tx.groupBy("household_id").agg(F.min("day").alias("first_day"))
    population = firsts.crossJoin(F.broadcast(wanted)).where(F.col("first_day") < F.col("as_of")).select(
        "household_id", "as_of"
    )
    first, last = min(as_of_dates), max(as_of_dates)
    window_tx = tx.where((F.col("day") >= F.lit(first)) & (F.col("day") < F.date_add(F.lit(last), horizon)))
    daily = (
        group_transactions(window_tx, members, groups)
        .groupBy("household_id", "product_group", t.alias("t"))
        .agg(F.sum("sales_value").alias("spend"))
    )
    pairs = daily.select("household_id", "product_group").distinct()
    queries = (
        population.join(pairs, "household_id")
        .select("household_id", "product_group", F.datediff("as_of", F.lit(_EPOCH)).alias("t"))
        .withColumn("spend", F.lit(None).cast("double"))
    )
    ahead = Window.partitionBy("household_id", "product_group").orderBy("t").rangeBetween(0, horizon - 1)
    spent = (
        daily.withColumn("query", F.lit(False))
        .unionByName(queries.withColumn("query", F.lit(True)))
        .withColumn("label", F.coalesce(F.sum("spend").over(ahead), F.lit(0.0)))
        .where(F.col("query"))
        .select("household_id", "product_group", F.date_add(F.lit(_EPOCH), F.col("t")).alias("as_of"), "label")
    )
    group_list = spark.createDataFrame([(g,) for g in groups], "product_group string")
    return (
        population.crossJoin(F.broadcast(group_list))
        .join(spent, ["household_id", "product_group", "as_of"], "left")
        .select("as_of", "product_group", "household_id", F.coalesce("label", F.lit(0.0)).alias("label"))
    )
