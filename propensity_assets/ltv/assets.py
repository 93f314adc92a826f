"""The LTV room: its cohorts; its labels and model → champion → scores → decay, from the shared
lifecycle and the stage's declaration (`ltv.stage`)."""

import warnings

import dagster as dg
import pyarrow.dataset as ds

from propensity_assets.lifecycle.assets import stage_definitions
from propensity_assets.lifecycle.label_assets import labels_definitions
from propensity_assets.ltv.cohorts import cohort_summary
from propensity_assets.ltv.stage import LTV, LtvTraining
from propensity_assets.shared.metadata import md_table
from propensity_assets.shared.partitions import as_of_partitions, requested_keys
from propensity_assets.shared.resources import LakeResource
from propensity_assets.shared import tables

warnings.filterwarnings("ignore", category=dg.BetaWarning)



ltv_labels, labels_job, labels_schedule = labels_definitions(LTV)
lifecycle = stage_definitions(LTV, LtvTraining, decay_step_days=7)


@dg.asset(
    group_name="ltv",
    partitions_def=as_of_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"pandas", "parquet"},
    deps=[tables.LTV_SCORES, tables.HOUSEHOLD_FEATURES],
    description=(
        "Predicted LTV per acquisition cohort (the month of the household's first transaction) for each "
        "product group: households, mean, median, total and p90, the seed's cap on acquisition spend per "
        "acquired customer. Lake table `ltv_cohorts/as_of=`."
    ),
)
def ltv_cohorts(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    dates = sorted(set(requested_keys(context)))
    when = ds.field("as_of").isin(dates)
    if not lake.lake.exists(tables.LTV_SCORES):
        raise dg.Failure(f"lake table {tables.LTV_SCORES!r} does not exist: score LTV for {', '.join(dates)} first")
    scores = lake.lake.read_pandas(tables.LTV_SCORES, filters=when, columns=["as_of", "product_group", "household_id", "ltv"])
    missing = sorted(set(dates) - set(scores["as_of"]))
    if missing:
        raise dg.Failure(f"{tables.LTV_SCORES} has no partition for as_of {', '.join(missing)}: score LTV for those dates first")
    household = lake.lake.read_pandas(tables.HOUSEHOLD_FEATURES, filters=when, columns=["as_of", "household_id", "hh_days_since_first"])
    try:
        cohorts = cohort_summary(scores, household)
    except ValueError as exc:
        raise dg.Failure(str(exc)) from None
    lake.lake.write_pandas(tables.LTV_COHORTS, cohorts, ["as_of"], [{"as_of": d} for d in dates])
    latest = cohorts[cohorts["as_of"] == dates[-1]]
    return dg.MaterializeResult(metadata={
        "rows": len(cohorts),
        "as_of_min": dates[0],
        "as_of_max": dates[-1],
        "groups": int(cohorts["product_group"].nunique()),
        "cohorts": int(cohorts["cohort"].nunique()),
        f"cohorts_{dates[-1]}": md_table(latest.drop(columns=["as_of"]).to_dict("records"), digits=2),
    })

