"""The LTV label (CONTRACTS §8), in Spark: household h's spend on group g's products on
days d ≤ day < d + H, 0 for a household of the population that bought nothing in g
then. Defined only while the window lies inside the data."""

from collections.abc import Sequence
from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from propensity_assets.features.logic import _fixed, _unfixed, with_day
from propensity_assets.propensity.labels import LabelWindowError, check_label_window, forward_sums


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
    last_day = with_day(transactions).agg(F.max("day")).first()[0]
    if last_day is None:
        raise LabelWindowError("ltv_labels: the transactions table is empty")
    check_label_window(as_of_dates, last_day, horizon, table="ltv_labels")
    spend = forward_sums(transactions, members, as_of_dates, groups, horizon, _fixed("sales_value"))
    return spend.select("as_of", "product_group", "household_id", _unfixed(F.col("total")).alias("label"))
