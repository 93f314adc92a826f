"""The LTV room: labels and cohorts here; model → champion → scores → decay from the shared lifecycle."""

import warnings

import dagster as dg
import pyarrow.dataset as ds
from dagster_pyspark import PySparkResource
from pyspark.sql import functions as F

from propensity_assets import schedules
from propensity_assets.features.assets import materialize_group_table
from propensity_assets.groups.assets import MEMBERS_TABLE
from propensity_assets.lifecycle.assets import stage_definitions
from propensity_assets.ltv import labels as label_logic
from propensity_assets.ltv.cohorts import cohort_summary
from propensity_assets.ltv.stage import LABELS_TABLE, LTV, SCORES_TABLE, LtvTraining
from propensity_assets.metadata import md_table
from propensity_assets.partitions import as_of_group_partitions, as_of_partitions, requested_keys
from propensity_assets.resources import LakeResource

warnings.filterwarnings("ignore", category=dg.BetaWarning)

COHORTS_TABLE = "ltv_cohorts"


@dg.asset(
    group_name="ltv",
    partitions_def=as_of_group_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"spark", "parquet"},
    deps=["transactions", MEMBERS_TABLE],
    description=(
        "The LTV label (CONTRACTS §8): the household's spend on the group's products on days "
        "d ≤ day < d + H (H = PROPENSITY_LTV_HORIZON_DAYS, 90 by default; total spend for `all_products`), "
        "0 for a household of the population that bought nothing in the group then. A partition whose "
        "horizon runs past the end of the data is refused. Lake table `ltv_labels/as_of=/product_group=`."
    ),
)
def ltv_labels(context: dg.AssetExecutionContext, spark: PySparkResource, lake: LakeResource):
    horizon = LTV.horizon_days()

    def compute(tx, members, as_of_dates, groups):
        try:
            return label_logic.ltv_labels(tx, members, as_of_dates, groups, horizon)
        except label_logic.LabelWindowError as exc:
            raise dg.Failure(str(exc)) from None

    def summarize(labels, written, as_of_dates, groups) -> dict:
        stats = labels.groupBy("product_group").agg(
            F.count("*").alias("rows"), F.avg("label").alias("mean_spend"), F.avg((F.col("label") > 0).cast("double")).alias("buyer_share")
        )
        rows = sorted((r.asDict() for r in stats.collect()), key=lambda r: r["product_group"])
        return {
            "rows": sum(r["rows"] for r in rows),
            "partitions_written": written,
            "horizon_days": horizon,
            "as_of_min": str(min(as_of_dates)),
            "as_of_max": str(max(as_of_dates)),
            "by_group": md_table(rows, digits=3),
        }

    return materialize_group_table(context, spark, lake, LABELS_TABLE, compute, summarize)


lifecycle = stage_definitions(LTV, LtvTraining, decay_step_days=7)


@dg.asset(
    group_name="ltv",
    partitions_def=as_of_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"pandas", "parquet"},
    deps=[SCORES_TABLE, "household_features"],
    description=(
        "Predicted LTV per acquisition cohort (the month of the household's first transaction) for each "
        "product group: households, mean, median, total and p90, the seed's cap on acquisition spend per "
        "acquired customer. Lake table `ltv_cohorts/as_of=`."
    ),
)
def ltv_cohorts(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    dates = sorted(set(requested_keys(context)))
    when = ds.field("as_of").isin(dates)
    if not lake.lake.exists(SCORES_TABLE):
        raise dg.Failure(f"lake table {SCORES_TABLE!r} does not exist: score LTV for {', '.join(dates)} first")
    scores = lake.lake.read_pandas(SCORES_TABLE, filters=when, columns=["as_of", "product_group", "household_id", "ltv"])
    missing = sorted(set(dates) - set(scores["as_of"]))
    if missing:
        raise dg.Failure(f"{SCORES_TABLE} has no partition for as_of {', '.join(missing)}: score LTV for those dates first")
    household = lake.lake.read_pandas("household_features", filters=when, columns=["as_of", "household_id", "hh_days_since_first"])
    try:
        cohorts = cohort_summary(scores, household)
    except ValueError as exc:
        raise dg.Failure(str(exc)) from None
    lake.lake.write_pandas(COHORTS_TABLE, cohorts, ["as_of"], [{"as_of": d} for d in dates])
    latest = cohorts[cohorts["as_of"] == dates[-1]]
    return dg.MaterializeResult(metadata={
        "rows": len(cohorts),
        "as_of_min": dates[0],
        "as_of_max": dates[-1],
        "groups": int(cohorts["product_group"].nunique()),
        "cohorts": int(cohorts["cohort"].nunique()),
        f"cohorts_{dates[-1]}": md_table(latest.drop(columns=["as_of"]).to_dict("records"), digits=2),
    })


labels_job, labels_schedule = schedules.labels_schedule(LABELS_TABLE, LTV.horizon_days, minute=40)

defs = dg.Definitions(
    assets=[ltv_labels, *lifecycle.assets, ltv_cohorts],
    jobs=[*lifecycle.jobs, labels_job],
    schedules=[labels_schedule],
    sensors=lifecycle.sensors,
)
