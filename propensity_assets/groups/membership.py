"""Which transactions belong to which product group, in Spark.

Every stage that restricts transactions to a group (features, labels, studies) goes
through `group_transactions`, so an `all: true` group means the same everywhere.
"""

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

# The entity key of a household's whole basket, beside the product groups' keys (which
# are never empty): `group_transactions(..., household=True)` adds it to every line.
HOUSEHOLD = ""


def group_transactions(
    transactions: DataFrame, members: DataFrame, groups: Sequence[str], household: bool = False
) -> DataFrame:
    """Transactions with a `product_group` column, one row per (transaction, group it is in).

    `members` is the lake table `product_group_members`: (product_group, product_id),
    where a null product_id means every product (an `all: true` group), including
    product ids that `products` does not know. A product in two groups yields two rows.
    With `household`, every line also yields one row with product_group `HOUSEHOLD`.

    One pass over the transactions: a broadcast lookup of each product's groups, exploded.
    """
    members = members.where(F.col("product_group").isin(list(groups)))
    by_product = (
        members.where(F.col("product_id").isNotNull())
        .groupBy("product_id")
        .agg(F.collect_set("product_group").alias("_groups"))
    )
    whole = members.where(F.col("product_id").isNull()).agg(F.collect_set("product_group").alias("_whole"))
    none = F.array().cast("array<string>")
    own = F.array(F.lit(HOUSEHOLD)) if household else none
    return (
        transactions.join(F.broadcast(by_product), "product_id", "left")
        .crossJoin(F.broadcast(whole))
        .withColumn("product_group", F.explode(F.concat(own, F.col("_whole"), F.coalesce("_groups", none))))
        .drop("_groups", "_whole")
    )
