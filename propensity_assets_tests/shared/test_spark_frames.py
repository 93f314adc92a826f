"""The Spark frames every Spark room shares: literal frames match what createDataFrame
makes, without Python on the executors, and plan in seconds at a year's size."""

import time
from datetime import date

import pandas as pd
import pytest

from propensity_assets.shared.spark_frames import literal_frame

# Every test on a classic session and on Spark Connect (conftest `spark_mode`).
pytestmark = pytest.mark.classic_and_connect


@pytest.mark.parametrize(
    ("rows", "schema"),
    [
        ([(1,), (-5,), (17532,)], "t int"),
        ([(date(2017, 3, 2), "a_b"), (date(2018, 1, 1), "x2")], "as_of date, product_group string"),
        ([], "product_group string"),
    ],
)
def test_literal_frame_is_what_create_dataframe_makes(spark, rows, schema):
    # The same rows and schema (nullable columns included), without Python on executors.
    made, expected = literal_frame(spark, rows, schema), spark.createDataFrame(rows, schema)
    assert made.schema == expected.schema
    assert made.collect() == expected.collect()


def test_literal_frame_of_a_year_of_pairs_plans_in_seconds(spark):
    pairs = [(date(2017, 1, 1) + pd.Timedelta(days=i).to_pytimedelta(), f"group_{g:02d}") for i in range(365) for g in range(11)]
    started = time.perf_counter()
    frame = literal_frame(spark, pairs, "as_of date, product_group string")
    assert frame.count() == len(pairs) and frame.distinct().count() == len(pairs)
    assert time.perf_counter() - started < 30  # one literal per value took a minute
