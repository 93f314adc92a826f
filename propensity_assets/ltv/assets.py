"""The LTV room: its cohorts; its labels and model → champion → scores → decay, from the shared
lifecycle and the stage's declaration (`ltv.stage`)."""

import warnings

import dagster as dg
import pyarrow.dataset as ds

from propensity_assets.lifecycle.assets import stage_definitions
from propensity_assets.lifecycle.label_assets import labels_definitions
from propensity_assets.ltv.cohorts import cohort_summary
from propensity_assets.ltv.stage import LTV, SCORES_TABLE, LtvTraining
from propensity_assets.shared.metadata import md_table
from propensity_assets.shared.partitions import as_of_partitions, requested_keys
from propensity_assets.shared.resources import LakeResource

warnings.filterwarnings("ignore", category=dg.BetaWarning)

COHORTS_TABLE = "ltv_cohorts"


ltv_labels, labels_job, labels_schedule = labels_definitions(LTV)
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

