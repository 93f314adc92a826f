"""The customer profile marketing reads: household × product group scores, per as_of."""

import dagster as dg
import pandas as pd
import pyarrow.dataset as ds

from propensity_assets.partitions import as_of_partitions, product_group_partitions, requested_keys
from propensity_assets.propensity.assets import SCORES_TABLE, propensity_scores
from propensity_assets.propensity.model import deciles
from propensity_assets.resources import LakeResource

PROFILE_TABLE = "customer_profile"
LONG_TABLE = "customer_profile_long"


def build_profile(scores: pd.DataFrame, groups: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(wide, long) profiles from long scores (as_of, product_group, household_id, score, model_version).

    Wide: one row per (as_of, household_id), a `propensity__<group>` and a
    `propensity_decile__<group>` column per group (decile 1 = the top 10 %). Long:
    one row per (as_of, household_id, product_group) with score, decile, model_version.
    """
    scores = scores[scores["product_group"].isin(groups)].copy()
    scores["decile"] = scores.groupby(["as_of", "product_group"])["score"].transform(deciles)
    long = scores[["as_of", "household_id", "product_group", "score", "decile", "model_version"]]
    long = long.sort_values(["as_of", "household_id", "product_group"]).reset_index(drop=True)
    wide = scores.pivot_table(index=["as_of", "household_id"], columns="product_group", values=["score", "decile"], aggfunc="first")
    columns = {}
    for group in groups:
        if ("score", group) in wide.columns:
            columns[f"propensity__{group}"] = wide[("score", group)]
            columns[f"propensity_decile__{group}"] = wide[("decile", group)].astype("Int32")
    wide = pd.DataFrame(columns, index=wide.index).reset_index()
    return wide, long


@dg.asset(
    group_name="profile",
    partitions_def=as_of_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"pandas", "parquet"},
    deps=[propensity_scores],
    # Rebuilt whenever any group's scores for the date change (any date, not only the latest).
    automation_condition=(
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ),
    description=(
        "The customer profile (the seed's Figure 1): one row per household with a "
        "`propensity__<group>` score and a `propensity_decile__<group>` (1 = top 10 %) for every "
        "active product group. Also writes the long form `customer_profile_long` (household, "
        "group, score, decile, model_version) for marketing tools to filter. Rebuilt when any "
        "group's scores for the date change."
    ),
)
def customer_profile(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    dates = sorted(set(requested_keys(context)))
    groups = context.instance.get_dynamic_partitions(product_group_partitions.name)
    scores = lake.lake.read_pandas(
        SCORES_TABLE,
        filters=ds.field("as_of").isin(dates),
        columns=["as_of", "product_group", "household_id", "score", "model_version"],
    ) if lake.lake.exists(SCORES_TABLE) else pd.DataFrame()
    if scores.empty:
        raise dg.Failure(f"No propensity_scores for as_of {dates}: score the product groups first")
    wide, long = build_profile(scores, groups)
    specs = [{"as_of": d} for d in dates]
    lake.lake.write_pandas(PROFILE_TABLE, wide, ["as_of"], specs)
    lake.lake.write_pandas(LONG_TABLE, long, ["as_of"], specs)
    present = sorted(long["product_group"].unique())
    absent = sorted(set(groups) - set(present))
    preview = wide[wide["as_of"] == dates[-1]].head(5)
    return dg.MaterializeResult(
        metadata={
            "rows": len(wide),
            "households": int(wide["household_id"].nunique()),
            "as_of_min": dates[0],
            "as_of_max": dates[-1],
            "groups": ", ".join(present),
            "groups_without_scores": ", ".join(absent) or "none",
            "model_versions": dg.MetadataValue.json(
                long.groupby("product_group")["model_version"].agg(lambda s: sorted(set(s))).to_dict()
            ),
            "preview": dg.MetadataValue.md(preview.round(4).to_markdown(index=False)),
        }
    )
