"""Feature assets: `household_features` (per as_of) and `group_features` (per as_of × group).

A run computes all of its partitions in one Spark job per asset, whether it is
one partition or a year-long backfill, and swaps each partition into the lake.
"""


from collections.abc import Callable, Iterator
from datetime import date, timedelta

import warnings

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

warnings.filterwarnings("ignore", category=dg.BetaWarning)
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from propensity_assets.features import checks as quality
from propensity_assets.features import logic
from propensity_assets.shared.partitions import (
    as_of_group_partitions,
    as_of_partitions,
    requested_keys,
    split_key,
)
from propensity_assets.shared.resources import LakeResource
from propensity_assets.shared.retries import SPARK_AND_TRAINING
from propensity_assets.shared import tables


def _summary(lake: LakeResource, table: str, specs: list[dict], written: int, as_of_dates: list[date]) -> dict:
    rows, households = 0, set()
    for _, part in stored_partitions(lake, table, specs, ["household_id"]):
        rows += part.num_rows
        households.update(pc.unique(part["household_id"]).to_pylist())
    return {
        "rows": rows,
        "households": len(households),
        "partitions_written": written,
        "as_of_min": str(min(as_of_dates)),
        "as_of_max": str(max(as_of_dates)),
        "as_of_dates": len(as_of_dates),
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


def stored_partitions(
    lake: LakeResource, table: str, specs: list[dict], columns: list[str]
) -> Iterator[tuple[dict, pa.Table]]:
    """(spec, its `columns`) for each partition of `specs` that `table` holds, read back from
    the lake on the driver one data file at a time (Arrow, only those columns): the run's
    summary costs neither a cache of what it wrote, nor a second Spark job over thousands
    of small files, nor the whole run's rows in memory at once."""
    if not specs or not lake.lake.exists(table):
        return
    keys = list(specs[0])
    wanted = {tuple(spec[k] for k in keys) for spec in specs}
    first = ds.field(keys[0]).isin(sorted({spec[keys[0]] for spec in specs}))
    for values, fragment in lake.lake.partition_files(table, first):
        if values in wanted:
            yield dict(zip(keys, values)), fragment.to_table(columns=columns)


def materialize_group_table(
    context: dg.AssetExecutionContext,
    spark: PySparkResource,
    lake: LakeResource,
    table: str,
    compute: Callable[[DataFrame, DataFrame, list[date], list[str]], DataFrame],
    summarize: Callable[[LakeResource, list[dict], int, list[date], list[str]], dict],
    checks: Callable[[LakeResource, list[dict], quality.NonFinite], list[dg.AssetCheckResult]],
    fresh: bool = False,
) -> dg.MaterializeResult:
    """Compute an as_of × product_group table for every key of the run in one Spark job,
    keep exactly the requested keys, and swap each partition into the lake.

    `compute(transactions, members, as_of_dates, groups)` returns rows with as_of and
    product_group columns; a run over a date range × groups computes the rectangle.
    With `fresh`, as_of dates the transactions do not reach are refused (`check_fresh`).
    `checks(lake, specs written, non-finite counts)` gives the asset's check results.
    """
    pairs = sorted({split_key(key) for key in requested_keys(context)})
    as_of_dates = sorted({date.fromisoformat(d) for d, _ in pairs})
    groups = sorted({g for _, g in pairs})
    session = spark.spark_session
    tx = logic.read_transactions(session, lake.input_uri(tables.TRANSACTIONS))
    if fresh:
        check_fresh(tx, as_of_dates, table)
    members = session.read.parquet(lake.input_uri(tables.PRODUCT_GROUP_MEMBERS))
    missing = sorted(set(groups) - {row[0] for row in members.select("product_group").distinct().collect()})
    unresolved = (
        f"product group(s) {', '.join(missing)} are not in the lake table {tables.PRODUCT_GROUP_MEMBERS!r} (the catalogue "
        f"resolved against products): fix the group in the catalogue, materialize `{tables.PRODUCT_GROUP_MEMBERS}`, "
        f"then re-run {table} for {'them' if len(missing) > 1 else 'it'}"
    )
    if missing and len(missing) == len(groups):
        raise dg.Failure(f"{table}: {unresolved}. Nothing was written.", allow_retries=False)
    # One unresolvable group must not hold back the others: they are computed and written,
    # and the run then fails naming the group (below).
    groups = [g for g in groups if g not in missing]
    pairs = [(d, g) for d, g in pairs if g not in missing]
    wanted = logic.literal_frame(session, [(date.fromisoformat(d), g) for d, g in pairs], "as_of date, product_group string")
    rows = compute(tx, members, as_of_dates, groups).join(F.broadcast(wanted), ["as_of", "product_group"])
    rows, non_finite = quality.NonFinite.observe(rows)
    specs = [{"as_of": d, "product_group": g} for d, g in pairs]
    written = lake.write_spark(table, rows, specs)
    metadata = summarize(lake, specs, written, as_of_dates, groups)
    if missing:
        raise dg.Failure(
            f"{table}: {unresolved}. The other {len(groups)} group(s) ({', '.join(groups)}) were written: "
            f"{written} partition(s).",
            metadata=metadata,
            allow_retries=False,
        )
    return dg.MaterializeResult(metadata=metadata, check_results=checks(lake, specs if written else [], non_finite))


def feature_checks(table: str) -> Callable:
    """The population and finiteness checks of a features table."""

    def checks(lake: LakeResource, specs: list[dict], non_finite: quality.NonFinite) -> list[dg.AssetCheckResult]:
        pairs = [tuple(spec.values()) for spec in specs]
        return [quality.population_result(lake.lake, table, pairs), non_finite.result(lake.lake, table, specs)]

    return checks


@dg.asset(
    group_name="features",
    partitions_def=as_of_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=SPARK_AND_TRAINING,
    kinds={"spark", "parquet"},
    deps=[tables.TRANSACTIONS],
    check_specs=[quality.POPULATION.spec(tables.HOUSEHOLD_FEATURES), quality.FEATURES_FINITE.spec(tables.HOUSEHOLD_FEATURES)],
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
    session = spark.spark_session
    tx = logic.read_transactions(session, lake.input_uri(tables.TRANSACTIONS))
    check_fresh(tx, as_of_dates, tables.HOUSEHOLD_FEATURES)
    feats, non_finite = quality.NonFinite.observe(logic.household_features(tx, as_of_dates))
    specs = [{"as_of": d.isoformat()} for d in as_of_dates]
    written = lake.write_spark(tables.HOUSEHOLD_FEATURES, feats, specs)
    specs = specs if written else []
    return dg.MaterializeResult(
        metadata=_summary(lake, tables.HOUSEHOLD_FEATURES, specs, written, as_of_dates),
        check_results=feature_checks(tables.HOUSEHOLD_FEATURES)(lake, specs, non_finite),
    )


@dg.asset(
    group_name="features",
    partitions_def=as_of_group_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=SPARK_AND_TRAINING,
    kinds={"spark", "parquet"},
    deps=[tables.TRANSACTIONS, tables.PRODUCT_GROUP_MEMBERS],
    check_specs=[quality.POPULATION.spec(tables.GROUP_FEATURES), quality.FEATURES_FINITE.spec(tables.GROUP_FEATURES)],
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
    def summarize(lake, specs, written, as_of_dates, groups) -> dict:
        return {**_summary(lake, tables.GROUP_FEATURES, specs if written else [], written, as_of_dates),
                "product_groups": ", ".join(groups)}

    return materialize_group_table(
        context, spark, lake, tables.GROUP_FEATURES, logic.group_features, summarize, feature_checks(tables.GROUP_FEATURES), fresh=True
    )
