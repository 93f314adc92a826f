"""Feature assets: `household_features` (per as_of) and `group_features` (per as_of × group).

A run computes all of its partitions in one Spark job per asset, whether it is
one partition or a year-long backfill, and swaps each partition into the lake
(`shared.group_tables`).
"""

import warnings
from datetime import date, timedelta

import dagster as dg
import pyarrow.compute as pc

warnings.filterwarnings("ignore", category=dg.BetaWarning)
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from propensity_assets.features import checks as quality
from propensity_assets.features import logic
from propensity_assets.shared import freshness, tables
from propensity_assets.shared.group_tables import (
    Checks,
    CheckResults,
    as_of_range,
    group_table_asset,
    materialize_group_table,
    stored_partitions,
)
from propensity_assets.shared.metadata import each_partition, lake_partition
from propensity_assets.shared.partitions import as_of_partitions, requested_keys
from propensity_assets.shared.resources import LakeResource
from propensity_assets.shared.retries import retried_asset
from propensity_assets.shared.spark_frames import read_transactions


def _summary(lake: LakeResource, table: str, specs: list[dict], written: int, as_of_dates: list[date]) -> dict:
    """The run's figures (each partition has its own: `_partition_figures`)."""
    rows, households = 0, set()
    for _, part in stored_partitions(lake, table, specs, ["household_id"]):
        rows += part.num_rows
        households.update(pc.unique(part["household_id"]).to_pylist())
    return {
        "run_rows": rows,
        "run_households": len(households),
        "partitions_written": written,
        **as_of_range(as_of_dates),
        "as_of_dates": len(as_of_dates),
    }


def _household_figures(lake: LakeResource, spec: dict) -> dict:
    """One as_of of household features: its rows (one per household), schema, location."""
    own = lake_partition(lake.lake, tables.HOUSEHOLD_FEATURES, spec)
    return {**own, "rows": own["dagster/row_count"].value, "households": own["dagster/row_count"].value}


def _group_figures(lake: LakeResource, spec: dict) -> dict:
    """One as_of × group of group features: its households, how many bought in the group in
    the 30 days before as_of, and their spend on it."""
    part = lake.lake.read_partition(tables.GROUP_FEATURES, spec, columns=["grp_baskets_30d", "grp_spend_30d"])
    return {
        "rows": len(part), "households": len(part),
        "buyers_30d": int((part["grp_baskets_30d"] > 0).sum()),
        "group_spend_30d": float(part["grp_spend_30d"].sum()),
    }


def check_fresh(tx: DataFrame, as_of_dates: list[date], table: str) -> None:
    """Refuse as_of dates the ingested transactions do not reach: features as of d read
    every day before d, so the data must run at least to d − 1. Without this, a stale
    ingest would yield features that look like a sudden stop in buying."""
    last = tx.agg(F.max(F.to_date("transaction_timestamp"))).first()[0]
    if last is None:
        raise dg.Failure(f"{table}: the lake's transactions table is empty; ingest transactions first",
                         allow_retries=False)
    stale = [d for d in as_of_dates if d - timedelta(days=1) > last]
    if stale:
        behind = (stale[-1] - timedelta(days=1) - last).days
        shown = str(stale[0]) if len(stale) == 1 else f"{stale[0]}..{stale[-1]} ({len(stale)} dates)"
        raise dg.Failure(
            f"{table} as_of {shown}: the ingested transactions end on {last}, {behind} day(s) short of "
            f"the day before as_of {stale[-1]}; features would read the missing days as no purchases. "
            f"Ingest newer transactions, or materialize as_of up to {last + timedelta(days=1)}.",
            allow_retries=False,
        )


def feature_checks(lake: LakeResource, table: str) -> Checks:
    """The population and finiteness checks of a features table: non-finite values are
    counted while Spark writes the rows."""

    def observe(rows: DataFrame) -> tuple[DataFrame, CheckResults]:
        rows, non_finite = quality.NonFinite.observe(rows)

        def results(specs: list[dict]) -> list[dg.AssetCheckResult]:
            pairs = [tuple(spec.values()) for spec in specs]
            return [quality.population_result(lake.lake, table, pairs), non_finite.result(lake.lake, table, specs)]

        return rows, results

    return observe


@retried_asset(
    group_name="features",
    partitions_def=as_of_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"spark", "parquet"},
    deps=[tables.TRANSACTIONS],
    check_specs=quality.check_specs(tables.HOUSEHOLD_FEATURES),
    freshness_policy=freshness.daily("features"),
    description=(
        "Household features as of each date (CONTRACTS §4): baskets, spend, units and "
        "active days over 30/90/365-day windows before as_of, and days since the last "
        "visit. One row per household with a transaction before as_of. Lake table "
        "`household_features/as_of=YYYY-MM-DD/`."
    ),
)
def household_features(
    context: dg.AssetExecutionContext, spark: PySparkResource, lake: LakeResource
) -> dg.MaterializeResult:
    as_of_dates = sorted({date.fromisoformat(key) for key in requested_keys(context)})
    tx = read_transactions(spark.spark_session, lake.input_uri(tables.TRANSACTIONS))
    check_fresh(tx, as_of_dates, tables.HOUSEHOLD_FEATURES)
    feats, results = feature_checks(lake, tables.HOUSEHOLD_FEATURES)(logic.household_features(tx, as_of_dates))
    specs = [{"as_of": d.isoformat()} for d in as_of_dates]
    written = lake.write_spark(tables.HOUSEHOLD_FEATURES, feats, specs)
    stored = specs if written else []
    each_partition(context, {spec["as_of"]: _household_figures(lake, spec) for spec in stored
                             if lake.lake.exists(tables.HOUSEHOLD_FEATURES, spec)})
    return dg.MaterializeResult(
        metadata=_summary(lake, tables.HOUSEHOLD_FEATURES, stored, written, as_of_dates),
        check_results=results(stored),
    )


@group_table_asset(
    name=tables.GROUP_FEATURES,
    group_name="features",
    check_specs=quality.check_specs(tables.GROUP_FEATURES),
    freshness_policy=freshness.daily("features"),
    description=(
        "Group features as of each date for each product group (CONTRACTS §4): the "
        "household windows restricted to the group's products, days since the last "
        "group purchase (null if never) and the group's share of spend. One row per "
        "household in the population, zeros where it never bought in the group. Lake "
        "table `group_features/as_of=YYYY-MM-DD/product_group=<key>/`."
    ),
)
def group_features(
    context: dg.AssetExecutionContext, spark: PySparkResource, lake: LakeResource
) -> dg.MaterializeResult:
    def summarize(specs, written, as_of_dates, groups) -> dict:
        return {**_summary(lake, tables.GROUP_FEATURES, specs, written, as_of_dates), "product_groups": ", ".join(groups)}

    return materialize_group_table(
        context, spark, lake, tables.GROUP_FEATURES, logic.group_features, summarize,
        feature_checks(lake, tables.GROUP_FEATURES),
        refuse=lambda tx, as_of_dates: check_fresh(tx, as_of_dates, tables.GROUP_FEATURES),
        figures=lambda spec: _group_figures(lake, spec),
    )
