"""Retail campaign studies as assets, one per product group.

retail_study_data → retail_effects (effects, summary with its verdict checks,
recommendations and the recommender). The study of group g is the lake partition
`study=retail_<g>` of the CONTRACTS §9 tables, beside the catalogue's studies; its
recommender is registered, vetted and promoted through the lifecycle's registry path as
`incentive__retail_<g>`. The logic is in `retail_study.py`, `retail_estimation.py`,
`retail_verdicts.py` and `retail_policy.py`.
"""


import re
import time

import dagster as dg
import pandas as pd

from propensity_assets.incentives import study_tables
from propensity_assets.incentives.study_tables import RETAIL_PREFIX, retail_key as study_key
from propensity_assets.shared import settings, tables
from propensity_assets.shared.metadata import each_partition, lake_partition, md_figure, md_table, mlflow_run_url
from propensity_assets.shared.metadata import table as metadata_table
from propensity_assets.shared.partitions import product_group_partitions, requested_keys
from propensity_assets.shared.resources import LakeResource, MlflowResource
from propensity_assets.shared.tables import (
    CAMPAIGN_DESCRIPTIONS,
    CAMPAIGNS,
    COUPON_REDEMPTIONS,
    COUPONS,
    GROUP_FEATURES,
    HOUSEHOLD_FEATURES,
    PRODUCT_GROUP_MEMBERS,
    TRANSACTIONS,
)

GROUP = "retail_incentives"
CAMPAIGN_TABLES = (CAMPAIGNS, CAMPAIGN_DESCRIPTIONS, COUPONS, COUPON_REDEMPTIONS)
STUDY_DATA, EFFECTS, SUMMARY, RECOMMENDATIONS = (
    tables.INCENTIVE_STUDY_DATA, tables.INCENTIVE_EFFECTS, tables.INCENTIVE_SUMMARY, tables.INCENTIVE_RECOMMENDATIONS)
CHECKS = ("placebo", "plausibility")

# The profile's `incentive__<group>` (CONTRACTS §5, §9), declared like a scores asset's
# columns: the `recommended` option of the group's study partition (keyed by household),
# no decile; `not identified` where the study's verdicts identify nothing.
PROFILE_TAGS = {
    "profile/prefix": "incentive",
    "profile/table": RECOMMENDATIONS,
    "profile/value_column": "recommended",
    "profile/deciles": "false",
    "profile/study_prefix": RETAIL_PREFIX,
    "profile/verdict_table": SUMMARY,
}


class RetailConfigSchema(dg.Config):
    """The retail studies' settings (INCENTIVES.md §2); defaults are documented in docs/configuration.md."""

    window_days: int = 28  # the outcome window after the start; the placebo's window ends at the start
    eligibility_days: int = 90  # eligible: shopped in these days before the start
    min_rows: int = 30  # treated and control rows a campaign type needs to be estimated
    margin_rate: float = 0.30  # gross margin on incremental group spend
    cost_per_coupon: float = 1.00  # what one redeemed coupon costs the retailer
    folds: int = 3  # cross-fitting folds, grouped by household
    n_estimators: int = 200  # of the LightGBM nuisance models


def _campaign_tables(lake: LakeResource):
    from propensity_assets.incentives.retail_study import CampaignTables

    frames = {t: (lake.lake.read_pandas(t) if lake.lake.exists(t) else pd.DataFrame()) for t in CAMPAIGN_TABLES}
    return CampaignTables(frames[CAMPAIGNS], frames[CAMPAIGN_DESCRIPTIONS], frames[COUPONS],
                          frames[COUPON_REDEMPTIONS])


def _transactions(lake: LakeResource) -> pd.DataFrame:
    names = lake.lake.dataset(TRANSACTIONS).schema.names
    cols = ["household_id", "product_id", "sales_value", "transaction_timestamp"] + (
        ["coupon_disc"] if "coupon_disc" in names else [])
    tx = lake.lake.read_pandas(TRANSACTIONS, columns=cols)
    tx["day"] = pd.to_datetime(tx.pop("transaction_timestamp")).dt.tz_localize(None).dt.normalize()
    return tx


def plot_cells(summary: pd.DataFrame, title: str):
    """Adjusted effects with their intervals beside their placebos, per campaign type."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 0.8 + 0.6 * max(len(summary), 1)))
    done = summary.dropna(subset=["ate"]).reset_index(drop=True)
    for i, r in done.iterrows():
        ax.errorbar(r.ate, i + 0.15, xerr=[[r.ate - r.ate_lower], [r.ate_upper - r.ate]], fmt="o", color="C0",
                    label="adjusted effect (ATT)" if i == 0 else None)
        ax.errorbar(r.placebo, i - 0.15, xerr=[[r.placebo - r.placebo_lower], [r.placebo_upper - r.placebo]], fmt="s",
                    color="C3", label="pre-period placebo" if i == 0 else None)
        ax.plot([r.plausibility_bound], [i + 0.15], "|", color="k", markersize=14, label="plausibility bound" if i == 0 else None)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(range(len(done)), [f"type {t}: {v}" for t, v in zip(done.campaign_type, done.verdict)])
    ax.set_xlabel("group spend per household-campaign, 28-day window ($)")
    ax.set_title(title)
    if len(done):
        ax.legend(loc="best", fontsize=7)
    return fig


ASSETS = ("retail_study_data", "retail_effects", "retail_summary", "retail_recommendations")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "retail_study_data", group_name=GROUP, kinds={"pandas", "parquet"},
            deps=[TRANSACTIONS, *CAMPAIGN_TABLES, PRODUCT_GROUP_MEMBERS, HOUSEHOLD_FEATURES, GROUP_FEATURES],
            description=(
                "The retail campaign study of each product group (`incentive_study_data`, study=retail_<group>): one "
                "row per (household, campaign) over the campaigns whose coupon pool holds products of the group. "
                "Eligible: the household shopped in the 90 days before the start. Treated: it received the campaign. "
                "Outcome: the group's spend in the 28 days from the start; placebo outcome: the 28 days before. "
                "Confounders: the CONTRACTS §4 features at the start (at start − 28 for the placebo, `pre__*`) and "
                "prior campaigns. Campaigns without 90 days of history or whose window runs past the data, "
                "recipients who did not shop, and households with another campaign starting within 28 days are "
                "excluded and counted. Features come from the lake: materialize household_features and "
                "group_features over the campaign dates first."),
        ),
        dg.AssetSpec("retail_effects", group_name=GROUP, deps=["retail_study_data"], kinds={"lightgbm", "parquet"},
                     description="Per (household, campaign) row of each estimated campaign type: the CATE, the doubly "
                                 "robust effect projected on 90-day spend and baskets, with a household-clustered 95 % "
                                 "interval (`incentive_effects`, study=retail_<group>)."),
        dg.AssetSpec("retail_summary", group_name=GROUP, deps=["retail_study_data"], kinds={"lightgbm", "parquet"},
                     description="The verdict table (`incentive_summary`, study=retail_<group>): per campaign type the "
                                 "naive difference, the effect on the treated (AIPW, cross-fitted by household, "
                                 "household-clustered interval, overlap-trimmed), the pre-period placebo, the "
                                 "plausibility bound from coupon-line spend, counts and the verdict with its reason. "
                                 "A group with nothing to study has one `not identified` row saying why."),
        dg.AssetSpec("retail_recommendations", group_name=GROUP, deps=["retail_summary"], kinds={"parquet"},
                     tags=PROFILE_TAGS,
                     description="Per household, the campaign option with the highest profit at the lower 95 % bound "
                                 "of its CATE (margin rate × CATE lower bound − cost per coupon × redemptions) over the identified campaign types only "
                                 "(`incentive_recommendations`, study=retail_<group>); empty when nothing is "
                                 "identified, and the profile then reads `not identified`. The recommender is registered "
                                 "as `incentive__retail_<group>` (a pyfunc: household rows with the modifiers in, option "
                                 "and profit per option out), vetted with the shared rule on its mean profit at the lower "
                                 "bound against no incentive and the champion, and promoted."),
    ],
    check_specs=[
        dg.AssetCheckSpec("placebo", asset="retail_summary",
                          description="Every estimated cell's pre-period placebo interval holds 0"),
        dg.AssetCheckSpec("plausibility", asset="retail_summary",
                          description="Every estimated cell's effect is within its plausibility bound"),
    ],
    partitions_def=product_group_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=False,
)
def retail_studies(context: dg.AssetExecutionContext, config: RetailConfigSchema, lake: LakeResource, mlflow: MlflowResource):
    """Build, estimate and judge the retail study of every product group of the run."""
    import mlflow as mlflow_lib  # the resource is named `mlflow`

    from propensity_assets.incentives import tracking
    from propensity_assets.incentives.retail_policy import fit_policy, latest_rows, recommendations
    from propensity_assets.incentives.retail_study import RetailConfig, build_study, no_campaigns
    from propensity_assets.incentives.retail_verdicts import effects_table, estimate_cells, nothing_to_do_row, summary_table
    from propensity_assets.features.lookup import read_features

    retail = RetailConfig(**config.model_dump())
    groups = requested_keys(context)
    started = time.time()
    campaign_tables = _campaign_tables(lake)
    tx = None if campaign_tables.empty else _transactions(lake)
    members = None if tx is None else lake.lake.read_pandas(PRODUCT_GROUP_MEMBERS)
    cells_md, exclusions, statuses, summaries, figures, recs_rows, effect_rows = [], [], [], [], {}, {}, 0
    policies = {}  # group → (its recommender, the households it is vetted on)
    own = {}  # group → its own figures, on each retail asset's partition
    for group in groups:
        if tx is None:
            study = no_campaigns()
        else:
            mine = members[members["product_group"] == group]
            if mine.empty:
                raise dg.Failure(f"product group {group!r} is not in the lake table {PRODUCT_GROUP_MEMBERS!r}: "
                                 f"materialize {PRODUCT_GROUP_MEMBERS} after adding it to the catalogue", allow_retries=False)
            products = None if mine["product_id"].isna().any() else set(mine["product_id"].astype("int64"))
            in_group = pd.Series(True, index=tx.index) if products is None else tx["product_id"].isin(products)
            study = build_study(campaign_tables, tx, in_group, products,
                                lambda dates, g=group: read_features(lake.lake, g, dates), retail)
        study_tables.write(lake.lake, STUDY_DATA, study.data, study_key(group))
        exclusions.append(study.exclusions.assign(group=group))
        statuses.append(study.campaigns.assign(group=group))
        if study.nothing_to_do:
            context.log.info(f"retail study {study_key(group)}: nothing to do: {study.nothing_to_do}")
            cells = []
            summary = nothing_to_do_row(study.nothing_to_do)
        else:
            for kind, rows in study.data.groupby("campaign_type"):
                cells_md.append({"group": group, "campaign_type": kind, "campaigns": rows["campaign_id"].nunique(),
                                 "treated": int(rows["treated"].sum()), "control": int((1 - rows["treated"]).sum())})
            cells = estimate_cells(study.data, retail)
            summary = summary_table(cells)
        effects, recs = effects_table(cells), recommendations(cells, retail)
        for table, frame in ((EFFECTS, effects), (SUMMARY, summary), (RECOMMENDATIONS, recs)):
            study_tables.write(lake.lake, table, frame, study_key(group))
        policy = fit_policy(cells, retail)
        if policy is not None:
            policies[group] = (policy, latest_rows(cells))
        effect_rows += len(effects)
        recs_rows[group] = len(recs)
        for row in summary.itertuples():
            if row.verdict != "identified":
                context.log.warning(f"{study_key(group)} {row.treatment}: not identified: {row.reason}")
        summaries.append(summary.assign(group=group))
        own[group] = {"study_rows": len(study.data), "cells": int(summary["ate"].notna().sum()),
                      "identified": int((summary["verdict"] == "identified").sum()), "effect_rows": len(effects),
                      "households_recommended": len(recs)}
        if summary["ate"].notna().any():
            figures[group] = md_figure(plot_cells(summary, f"{group}: effect on the treated vs placebo"), group)
            own[group]["plot"] = figures[group]
            own[group]["verdicts"] = metadata_table(summary.drop(columns=[c for c in ("reason",) if c in summary]))
    seconds = round(time.time() - started, 1)
    table = pd.concat(summaries, ignore_index=True)
    estimated = table.dropna(subset=["ate"])
    excluded = pd.concat(exclusions, ignore_index=True)
    by_reason = excluded.groupby(["group", "campaign_type", "reason"])["rows"].sum().reset_index() if not excluded.empty else excluded
    status = pd.concat(statuses, ignore_index=True)
    studied = status[status["status"] != "its coupon pool holds no product of the group"] if not status.empty else status
    verdicts = table[["group", "campaign_type", "n_treated", "n_control", "naive", "ate", "ate_lower", "ate_upper",
                      "placebo", "placebo_lower", "placebo_upper", "plausibility_bound", "verdict"]]
    mlflow.client()
    experiment_id = mlflow.experiment_id(tracking.EXPERIMENT)
    with mlflow_lib.start_run(experiment_id=experiment_id, run_name=f"retail studies: {', '.join(groups)}") as run:
        mlflow_lib.set_tags({"stage": "retail_studies", "incentive_study": ",".join(study_key(g) for g in groups)})
        mlflow_lib.log_params(config.model_dump())
        for r in estimated.itertuples():
            tag = f"{r.group}.type_{r.campaign_type}"
            mlflow_lib.log_metrics({f"{tag}.att": r.ate, f"{tag}.placebo": r.placebo, f"{tag}.naive": r.naive,
                                    f"{tag}.bound": r.plausibility_bound})
        mlflow_lib.log_table(table, "retail_summary.json")
    models = [register_and_vet(mlflow, experiment_id, group, policy, rows, config,
                               {"retail_studies_run_id": run.info.run_id, "dagster_run_id": context.run.run_id})
              for group, (policy, rows) in policies.items()]
    for m in models:
        context.log.info(f"{m['model']} v{m['version']}: {m['decision']}: {m['reason']}")
        own[m["group"]].update(model_name=m["model"], model_version=m["version"], decision=m["decision"])
    for asset, table_name in (("retail_study_data", STUDY_DATA), ("retail_effects", EFFECTS), ("retail_summary", SUMMARY),
                              ("retail_recommendations", RECOMMENDATIONS)):
        each_partition(context, {g: {**mine, **(lake_partition(lake.lake, table_name, {"study": study_key(g)})
                                                if lake.lake.exists(table_name, {"study": study_key(g)}) else {})}
                                 for g, mine in own.items()}, asset_key=asset)
    url = dg.MetadataValue.url(mlflow_run_url(mlflow.tracking_uri, experiment_id, run.info.run_id))
    common = {"studies": ", ".join(study_key(g) for g in groups), "seconds": seconds, "mlflow_run": url}
    yield dg.MaterializeResult(asset_key="retail_study_data", metadata={
        **common, "cells": md_table(pd.DataFrame(cells_md), digits=2), "excluded rows by reason": md_table(by_reason, digits=2),
        "excluded rows": int(excluded["rows"].sum()) if not excluded.empty else 0, "campaigns": md_table(studied, digits=2),
        "nothing to do": dg.MetadataValue.json({g: r for g, r in zip(table.group, table.reason) if r.startswith("nothing to do")}),
        "window_days": config.window_days, "eligibility_days": config.eligibility_days,
    })
    yield dg.MaterializeResult(asset_key="retail_effects", metadata={**common, "rows": effect_rows})
    yield dg.MaterializeResult(asset_key="retail_summary", metadata={
        **common, "cells": len(estimated), "identified": int((table["verdict"] == "identified").sum()),
        "verdicts": md_table(verdicts, digits=2),
        "reasons": md_table(table[["group", "campaign_type", "verdict", "reason"]], digits=2),
        **{f"plot {g}": f for g, f in figures.items()},
    })
    yield dg.MaterializeResult(asset_key="retail_recommendations", metadata={
        **common, "households by group": dg.MetadataValue.json(recs_rows),
        "margin_rate": config.margin_rate, "cost_per_coupon": config.cost_per_coupon,
        "models": md_table(pd.DataFrame(models), digits=2),
    })
    for name, what in (("placebo", "placebo interval excludes 0"), ("plausibility", "effect exceeds its plausibility bound")):
        if name == "placebo":
            bad = estimated[(estimated.placebo_lower > 0) | (estimated.placebo_upper < 0)]
        else:
            bad = estimated[~(estimated.ate.abs() <= estimated.plausibility_bound)]
        yield dg.AssetCheckResult(
            check_name=name, asset_key="retail_summary", passed=bad.empty, severity=dg.AssetCheckSeverity.WARN,
            description=(f"{len(bad)} of {len(estimated)} cell(s): {what}; they are `not identified`: "
                         + ", ".join(f"{r.group} type {r.campaign_type}" for r in bad.itertuples())) if len(bad)
                        else f"all {len(estimated)} estimated cell(s) pass",
            metadata={"failing": len(bad), "cells": len(estimated)},
        )


def register_and_vet(mlflow: MlflowResource, experiment_id: str, group: str, policy, rows: pd.DataFrame,
                     config: RetailConfigSchema, tags: dict) -> dict:
    """Register the group's recommender as `incentive__retail_<group>` and vet it on the study's
    households: its mean profit at the lower bound against no incentive and the champion's
    options valued the same way (`incentives/vetting.py`); a row for the metadata."""
    import mlflow as mlflow_lib  # the resource is named `mlflow`

    from propensity_assets.incentives import tracking
    from propensity_assets.incentives.retail_estimation import MODIFIERS
    from propensity_assets.incentives.retail_policy import policy_values, value_of
    from propensity_assets.incentives.retail_study import UNIT_ID
    from propensity_assets.incentives.vetting import LOWER_BOUND_PROFIT, RECOMMENDED, policy_decision, policy_tags
    from propensity_assets.lifecycle import registration

    client = mlflow.client()
    key, units = study_key(group), rows[[UNIT_ID, *MODIFIERS]].reset_index(drop=True)
    champion = tracking.champion_options(key, units, client)
    version, run_id = tracking.register_retail_recommender(
        experiment_id, key, policy, units.head(3), tags,
        {"margin_rate": config.margin_rate, "cost_per_coupon": config.cost_per_coupon, "options": len(policy.options)},
    )
    name = tracking.model_name(key)
    profits = registration.load_model(name, version).predict(units)
    values = policy_values(profits)
    champion_value = None if champion is None else value_of(profits, champion[1])
    baselines = {"no incentive": values["no incentive"]}
    decision = policy_decision(LOWER_BOUND_PROFIT, values[RECOMMENDED], baselines, champion_value,
                               None if champion is None else champion[0], [], settings.auto_promote())
    tracking.record_vetting(client, key, version, decision,
                            policy_tags(LOWER_BOUND_PROFIT, values[RECOMMENDED], baselines, decision))
    comparison = pd.DataFrame({"policy": list(values), LOWER_BOUND_PROFIT: list(values.values())})
    with mlflow_lib.start_run(run_id=run_id):
        mlflow_lib.log_table(comparison, "policy_comparison.json")
        mlflow_lib.log_metrics({f"{LOWER_BOUND_PROFIT}.{re.sub(r'[^A-Za-z0-9_.-]+', '_', p)}": v for p, v in values.items()})
    return {"group": group, "model": name, "version": version, "decision": decision.decision, "reason": decision.reason,
            LOWER_BOUND_PROFIT: values[RECOMMENDED]}


assets = [retail_studies]

