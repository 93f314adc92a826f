"""The LTV label (CONTRACTS §8), in Spark: household h's spend on group g's products on
days d ≤ day < d + H, 0 for a household of the population that bought nothing in g
then. Defined only while the window lies inside the data."""

from collections.abc import Sequence
from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from propensity_assets.features.labels import LabelWindowError, forward_totals
from propensity_assets.features.logic import from_fixed, to_fixed
from propensity_assets.shared import tables

__all__ = ["LabelWindowError", "ltv_labels"]


def ltv_labels(
    transactions: DataFrame,
    members: DataFrame,
    as_of_dates: Sequence[date],
    groups: Sequence[str],
    horizon: int = 90,
) -> DataFrame:
    """Labels (as_of, product_group, household_id, label) for the population at each as_of:
    the household's spend in the group on the `horizon` days from as_of (exact: summed
    in fixed point)."""
    spend = forward_totals(transactions, members, as_of_dates, groups, horizon, to_fixed("sales_value"), table=tables.LTV_LABELS)
    return spend.select("as_of", "product_group", "household_id", from_fixed(F.col("total")).alias("label"))
