"""Which transactions belong to which product group, in Spark.

Every stage that restricts transactions to a group (features, labels, studies) goes
through `group_transactions`, so an `all: true` group means the same everywhere.
"""

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def group_transactions(transactions: DataFrame, members: DataFrame, groups: Sequence[str]) -> DataFrame:
    """Transactions with a `product_group` column, one row per (transaction, group it is in).

    `members` is the lake table `product_group_members`: (product_group, product_id),
    where a null product_id means every product (an `all: true` group), including
    product ids that `products` does not know. A product in two groups yields two rows.
    """
    members = members.where(F.col("product_group").isin(list(groups))).select("product_group", "product_id")
    by_product = transactions.join(F.broadcast(members.where(F.col("product_id").isNotNull())), "product_id")
    whole = members.where(F.col("product_id").isNull()).select("product_group")
    return by_product.unionByName(transactions.crossJoin(F.broadcast(whole)))
