"""Tables partitioned as_of × product_group computed from the transactions: group features
and every stage's labels. One Spark job computes all of a run's partitions, whether it is
one partition or a year-long backfill, and swaps each into the lake; the run's summary is
read back from the lake one data file at a time.
"""

from collections.abc import Callable, Iterator
from datetime import date

import dagster as dg
import pyarrow as pa
import pyarrow.dataset as ds
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from propensity_assets.shared import tables
from propensity_assets.shared.metadata import each_partition, lake_partition
from propensity_assets.shared.partitions import as_of_group_partitions, requested_keys, split_key
from propensity_assets.shared.resources import LakeResource
from propensity_assets.shared.retries import retried_asset
from propensity_assets.shared.spark_frames import literal_frame, read_transactions

# (transactions, members, as_of_dates, groups) → rows with as_of and product_group columns.
Compute = Callable[[DataFrame, DataFrame, list[date], list[str]], DataFrame]
# What gives the check results for the partitions written (their specs).
CheckResults = Callable[[list[dict]], list[dg.AssetCheckResult]]
# The rows about to be written → those rows (observed, when a check counts something while
# Spark writes them) and what gives the check results.
Checks = Callable[[DataFrame], tuple[DataFrame, CheckResults]]
# (specs written, partitions written, as_of dates, groups) → the run's metadata.
Summarize = Callable[[list[dict], int, list[date], list[str]], dict]
# A partition written (its spec) → its own figures, beside its row count, schema and location.
PartitionFigures = Callable[[dict], dict]


def group_table_asset(name: str, group_name: str, check_specs: list[dg.AssetCheckSpec], description: str,
                      freshness_policy: dg.FreshnessPolicy | None = None):
    """The asset decorator of an as_of × product_group table computed from the transactions
    and the group members: a backfill is one run (one Spark job), retried like every Spark step
    (transient errors only: `retries.retried_asset`)."""
    return retried_asset(
        name=name,
        group_name=group_name,
        partitions_def=as_of_group_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"spark", "parquet"},
        deps=[tables.TRANSACTIONS, tables.PRODUCT_GROUP_MEMBERS],
        check_specs=check_specs,
        description=description,
        freshness_policy=freshness_policy,
    )


def as_of_range(as_of_dates: list[date]) -> dict:
    """The first and last as_of of a run, for its metadata."""
    return {"as_of_min": str(min(as_of_dates)), "as_of_max": str(max(as_of_dates))}


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
    compute: Compute,
    summarize: Summarize,
    checks: Checks,
    refuse: Callable[[DataFrame, list[date]], None] | None = None,
    figures: PartitionFigures | None = None,
) -> dg.MaterializeResult:
    """Compute an as_of × product_group table for every key of the run in one Spark job,
    keep exactly the requested keys, and swap each partition into the lake.

    `compute(transactions, members, as_of_dates, groups)` returns rows with as_of and
    product_group columns; a run over a date range × groups computes the rectangle.
    `refuse(transactions, as_of_dates)` may raise before anything is computed (e.g. as_of
    dates the transactions do not reach). `summarize` and the check results see the specs
    of the partitions written (none when nothing was); each partition written gets its own
    row count, schema, location and `figures(spec)` (`shared.metadata.each_partition`).
    """
    pairs = sorted({split_key(key) for key in requested_keys(context)})
    as_of_dates = sorted({date.fromisoformat(d) for d, _ in pairs})
    groups = sorted({g for _, g in pairs})
    session = spark.spark_session
    tx = read_transactions(session, lake.input_uri(tables.TRANSACTIONS))
    if refuse is not None:
        refuse(tx, as_of_dates)
    members_table = tables.PRODUCT_GROUP_MEMBERS
    members = session.read.parquet(lake.input_uri(members_table))
    missing = sorted(set(groups) - {row[0] for row in members.select("product_group").distinct().collect()})
    unresolved = (
        f"product group(s) {', '.join(missing)} are not in the lake table {members_table!r} (the catalogue "
        f"resolved against products): fix the group in the catalogue, materialize `{members_table}`, "
        f"then re-run {table} for {'them' if len(missing) > 1 else 'it'}"
    )
    if missing and len(missing) == len(groups):
        raise dg.Failure(f"{table}: {unresolved}. Nothing was written.", allow_retries=False)
    # One unresolvable group must not hold back the others: they are computed and written,
    # and the run then fails naming the group (below).
    groups = [g for g in groups if g not in missing]
    pairs = [(d, g) for d, g in pairs if g not in missing]
    wanted = literal_frame(session, [(date.fromisoformat(d), g) for d, g in pairs], "as_of date, product_group string")
    rows, results = checks(compute(tx, members, as_of_dates, groups).join(F.broadcast(wanted), ["as_of", "product_group"]))
    specs = [{"as_of": d, "product_group": g} for d, g in pairs]
    written = lake.write_spark(table, rows, specs)
    stored = specs if written else []
    metadata = summarize(stored, written, as_of_dates, groups)
    each_partition(context, {
        f"{spec['as_of']}|{spec['product_group']}": {**lake_partition(lake.lake, table, spec),
                                                     **(figures(spec) if figures else {})}
        for spec in stored if lake.lake.exists(table, spec)
    })
    if missing:
        raise dg.Failure(
            f"{table}: {unresolved}. The other {len(groups)} group(s) ({', '.join(groups)}) were written: "
            f"{written} partition(s).",
            metadata=metadata,
            allow_retries=False,
        )
    return dg.MaterializeResult(metadata=metadata, check_results=results(stored))
