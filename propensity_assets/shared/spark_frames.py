"""Spark frames every Spark room builds the same way: the lake's transactions as the
contract types them (CONTRACTS §1), and small literal frames that travel inside the plan.
Pure Spark, no Dagster."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, StructType


def read_transactions(spark: SparkSession, uri: str) -> DataFrame:
    """The transactions table at `uri` with quantity and sales_value as doubles, whatever the
    source stored."""
    return spark.read.parquet(uri).select(
        "household_id", "basket_id", "product_id",
        F.col("quantity").cast("double").alias("quantity"),
        F.col("sales_value").cast("double").alias("sales_value"),
        "transaction_timestamp",
    )


def literal_frame(spark: SparkSession, rows: Iterable[tuple], schema: str) -> DataFrame:
    """A small frame of `rows` ("as_of date, product_group string") that travels inside the
    query plan, as one string literal split and cast by Spark.

    `spark.createDataFrame` of a Python list is read by Python workers on the executors,
    started at the driver's interpreter path (PYSPARK_PYTHON): on a cluster whose executors
    do not share the driver's filesystem that path does not exist. A literal needs no
    Python on the executors: the feature and label jobs run in the JVM alone. (One literal
    per value would also do, but Catalyst takes a minute over the 4,000 pairs of a year's
    backfill; one string costs nothing.)
    """
    struct = DataType.fromDDL(schema)
    assert isinstance(struct, StructType), schema
    lines = []
    for row in rows:
        values = [v.isoformat() if isinstance(v, date) else str(v) for v in row]
        assert len(values) == len(struct.fields) and not any(c in v for v in values for c in "\t\n"), row
        lines.append("\t".join(values))
    if not lines:
        return spark.range(0).select(*[F.lit(None).cast(f.dataType).alias(f.name) for f in struct.fields]).to(struct)
    text = spark.range(1).select(F.explode(F.split(F.lit("\n".join(lines)), "\n")).alias("line"))
    cells = text.select(F.split("line", "\t").alias("cells"))
    # `to` keeps createDataFrame's nullable columns.
    return cells.select(*[F.col("cells")[i].cast(f.dataType).alias(f.name) for i, f in enumerate(struct.fields)]).to(struct)
