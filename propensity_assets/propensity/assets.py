"""The propensity room: labels here; model → champion → scores → decay from the shared lifecycle."""

import warnings

import dagster as dg
from dagster_pyspark import PySparkResource
from pyspark.sql import functions as F

from propensity_assets import schedules
from propensity_assets.features.assets import materialize_group_table
from propensity_assets.groups.assets import MEMBERS_TABLE
from propensity_assets.lifecycle.assets import stage_definitions
from propensity_assets.metadata import md_table
from propensity_assets.partitions import as_of_group_partitions
from propensity_assets.propensity import labels as label_logic
from propensity_assets.propensity.stage import LABELS_TABLE, PROPENSITY, PropensityTraining
from propensity_assets.resources import LakeResource

warnings.filterwarnings("ignore", category=dg.BetaWarning)


# -- labels -------------------------------------------------------------------------------


@dg.asset(
    group_name="propensity",
    partitions_def=as_of_group_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"spark", "parquet"},
    deps=["transactions", MEMBERS_TABLE],
    description=(
        "The propensity label (CONTRACTS §4): 1 if the household bought any product of the "
        "group on a day d ≤ day < d + 30, else 0, for every household in the population at d. "
        "A partition whose label window runs past the end of the data is refused. Lake table "
        "`propensity_labels/as_of=/product_group=`."
    ),
)
def propensity_labels(context: dg.AssetExecutionContext, spark: PySparkResource, lake: LakeResource):
    def compute(tx, members, as_of_dates, groups):
        try:
            return label_logic.propensity_labels(tx, members, as_of_dates, groups)
        except label_logic.LabelWindowError as exc:
            raise dg.Failure(str(exc)) from None

    def summarize(labels, written, as_of_dates, groups) -> dict:
        rates = labels.groupBy("product_group").agg(F.count("*").alias("rows"), F.avg("label").alias("positive_rate"))
        rows = sorted((r.asDict() for r in rates.collect()), key=lambda r: r["product_group"])
        return {
            "rows": sum(r["rows"] for r in rows),
            "partitions_written": written,
            "as_of_min": str(min(as_of_dates)),
            "as_of_max": str(max(as_of_dates)),
            "positive_rate": md_table(rows),
        }

    return materialize_group_table(context, spark, lake, LABELS_TABLE, compute, summarize)


lifecycle = stage_definitions(PROPENSITY, PropensityTraining, decay_step_days=1)
labels_job, labels_schedule = schedules.labels_schedule(LABELS_TABLE, PROPENSITY.horizon_days)

defs = dg.Definitions(
    assets=[propensity_labels, *lifecycle.assets],
    jobs=[*lifecycle.jobs, labels_job],
    schedules=[labels_schedule],
    sensors=lifecycle.sensors,
)
