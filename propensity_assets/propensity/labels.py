"""The propensity label (CONTRACTS §4), in Spark: did household h buy any product of
group g on a day d ≤ day < d + 30? Defined only while the window lies inside the data."""

from collections.abc import Sequence
from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from propensity_assets.features.labels import LabelWindowError, forward_totals
from propensity_assets.propensity.space import HORIZON_DAYS
from propensity_assets.shared import tables


__all__ = ["HORIZON_DAYS", "LabelWindowError", "propensity_labels"]


def propensity_labels(
    transactions: DataFrame,
    members: DataFrame,
    as_of_dates: Sequence[date],
    groups: Sequence[str],
    horizon: int = HORIZON_DAYS,
) -> DataFrame:
    """Labels (as_of, product_group, household_id, label) for the population at each as_of:
    1 when the household bought in the group on one of the `horizon` days from as_of."""
    lines = forward_totals(
        transactions, members, as_of_dates, groups, horizon, F.lit(1).cast("bigint"), table=tables.PROPENSITY_LABELS
    )
    # the total counts lines, so it is positive exactly when there was a purchase
    return lines.select("as_of", "product_group", "household_id", (F.col("total") > 0).cast("int").alias("label"))
