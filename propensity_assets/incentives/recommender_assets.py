"""A catalogue study's recommender as an asset: registered, vetted and promoted through the
lifecycle's registry path (`incentives/tracking.py`), and its recommendations."""

import time

import dagster as dg

from propensity_assets.incentives import study_tables, tracking
from propensity_assets.incentives.resources import IncentiveStudiesResource
from propensity_assets.incentives.study_assets import EFFECTS, REFUTATIONS, STUDY_DATA, study_asset, study_inputs
from propensity_assets.incentives.vetting import DR_POLICY_VALUE, RECOMMENDED, policy_decision, policy_tags
from propensity_assets.lifecycle import registration
from propensity_assets.shared import settings, tables
from propensity_assets.shared.metadata import md_figure, md_table, mlflow_run_url
from propensity_assets.shared.resources import LakeResource, MlflowResource

RECOMMENDATIONS, POLICY = tables.INCENTIVE_RECOMMENDATIONS, tables.INCENTIVE_POLICY
POLICY_FOLDS = 2  # cross-fitting folds of the recommender's policy value


def total_effect_specs(summary) -> dict[str, tuple[list[str], list[str]]]:
    """treatment → (modifiers, controls) of its estimated total effect, as `incentive_summary` records them."""
    split = lambda text: [c.strip() for c in str(text or "").split(",") if c.strip()]  # noqa: E731
    rows = summary[(summary["effect"] == "total") & summary["ate"].notna()]
    return {r.treatment: (split(r.modifiers), split(r.controls)) for r in rows.itertuples()}


def estimator_config(params: dict):
    """The effects run's estimator settings (its MLflow params), to refit it the same way."""
    from propensity_assets.incentives.estimation import EstimatorConfig

    return EstimatorConfig(estimator=params.get("estimator", "linear_dml"), folds=int(params.get("folds", 3)),
                           n_estimators=int(params.get("n_estimators", 200)), trim=params.get("trim") == "True",
                           select=params.get("select", "True") == "True",
                           tune_nuisances=params.get("tune_nuisances", "True") == "True")


@study_asset(
    name=RECOMMENDATIONS,
    deps=[STUDY_DATA, EFFECTS, REFUTATIONS],
    kinds={"mlflow", "parquet"},
)
def incentive_recommendations(
    context: dg.AssetExecutionContext, incentive_studies: IncentiveStudiesResource, lake: LakeResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    """Per unit, the option (none, each treatment, each combination) with the highest expected
    profit = estimated incremental outcome − cost (`incentive_recommendations`). The recommender
    is registered as `incentive__<study>` (a pyfunc: unit rows in, option and expected profit per
    option out), vetted with the shared rule on doubly robust policy value against no incentive,
    treat-all with each option, the observed allocation and the champion, and promoted unless a
    refutation failed. With truth columns, realized profit against the oracle is reported."""
    import joblib

    from propensity_assets.incentives.recommender import DoublyRobustEvaluator, best_single_option
    from propensity_assets.incentives.study import cross_fitted_policy, policy_report, unit_costs

    study, data = study_inputs(context, incentive_studies, lake)
    refutations = study_tables.read(lake.lake, REFUTATIONS, study.key)
    failed = sorted({f"{r.refuter} ({r.treatment}, {r.effect})" for r in refutations.itertuples() if not r.passed})
    client = mlflow.client()
    experiment_id = mlflow.experiment_id(tracking.EXPERIMENT)
    effects_run = tracking.latest_run(client, experiment_id, study.key, "effects")
    started = time.time()
    evaluator = DoublyRobustEvaluator().fit(data, list(study.covariates), study.treatment_names, study.outcome)
    fallback = best_single_option(evaluator, unit_costs(data, study))
    with tracking.tempdir() as tmp:
        bundle = client.download_artifacts(effects_run.info.run_id, tracking.ESTIMATORS_ARTIFACT, tmp)
        joblib.dump({**joblib.load(bundle), "fallback": fallback}, bundle)
        champion = tracking.champion_options(study.key, data, client)
        example_cols = list(dict.fromkeys([*study.covariates, *(c for t in study.treatments for c in t.cost_columns)]))
        version, run_id = tracking.register_study_recommender(
            experiment_id, study, bundle, data[["unit_id", *example_cols]].head(3),
            {"effects_run_id": effects_run.info.run_id, "dagster_run_id": context.run.run_id},
        )
    name = tracking.model_name(study.key)
    recs = registration.load_model(name, version).predict(data)
    # The recommender's policy value is held out: each unit's option from effects fitted without it.
    held_out, held_out_gain = cross_fitted_policy(data, study, total_effect_specs(study_tables.read(lake.lake, tables.INCENTIVE_SUMMARY, study.key)),
                                                  estimator_config(effects_run.data.params), fallback,
                                                  folds=POLICY_FOLDS)
    comparison, evaluator = policy_report(data, study, recs["recommended"].to_numpy(), evaluator, held_out=held_out)
    champion_value = champion_version = None
    if champion is not None:
        champion_version = champion[0]
        # The champion's options were also chosen from effects fitted on these rows: its value is
        # put on the held-out footing by the candidate's in-sample optimism, so the comparison is
        # exactly in-sample against in-sample, and no in-sample value is reported.
        costs = unit_costs(data, study)
        held_out_value = float(comparison.loc[comparison.policy == RECOMMENDED, "dr_value"].iloc[0])
        champion_value = held_out_value + (evaluator.value(champion[1], costs)
                                           - evaluator.value(recs["recommended"].to_numpy(), costs))
    values = dict(zip(comparison["policy"], comparison["dr_value"]))
    baselines = {p: v for p, v in values.items() if p not in (RECOMMENDED, "oracle")}
    decision = policy_decision(DR_POLICY_VALUE, values[RECOMMENDED], baselines, champion_value, champion_version,
                               failed, settings.auto_promote())
    tracking.record_vetting(client, study.key, version, decision,
                            policy_tags(DR_POLICY_VALUE, values[RECOMMENDED], baselines, decision))
    import mlflow as mlflow_lib  # the resources here are named `mlflow`; MLflow loads with the run

    from propensity_assets.incentives import recommender as rec  # imports MLflow's pyfunc

    uplift = rec.uplift_curve(evaluator, held_out, held_out_gain, unit_costs(data, study))
    uplift_figure = rec.plot_uplift(uplift, f"{study.key}: uplift of the recommended incentives")
    with mlflow_lib.start_run(run_id=run_id):
        mlflow_lib.log_table(comparison, "policy_comparison.json")
        mlflow_lib.log_table(uplift, "uplift_curve.json")
        mlflow_lib.log_figure(uplift_figure, "uplift_curve.png")
        mlflow_lib.log_metrics({f"{DR_POLICY_VALUE}.{p.replace(' ', '_').replace(':', '').replace('+', '_')}": v
                                     for p, v in zip(comparison.policy, comparison.dr_value)})
        if "share_of_oracle" in comparison:
            mlflow_lib.log_metric("share_of_oracle", float(comparison.loc[comparison.policy == "recommended", "share_of_oracle"].iloc[0]))
    study_tables.write(lake.lake, RECOMMENDATIONS, recs, study.key)
    study_tables.write(lake.lake, POLICY, comparison.assign(model_version=version, decision=decision.decision), study.key)
    metadata = {
        "rows": len(recs), "model_name": name, "model_version": version,
        "decision": decision.decision, "reason": decision.reason,
        "policy comparison": md_table(comparison, floatfmt=",.2f"),
        "dr_value_basis": f"the recommender's DR value is cross-fitted ({POLICY_FOLDS} folds): each unit's option comes "
                          "from effects estimated without it",
        **{f"dr_value {p}": float(v) for p, v in zip(comparison.policy, comparison.dr_value)},
        "options chosen": md_table(recs["recommended"].value_counts().rename_axis("option").reset_index(), floatfmt=",.0f"),
        "basis": md_table(recs["basis"].value_counts().rename_axis("basis").reset_index(), floatfmt=",.0f"),
        "fallback option": fallback,
        "refutations failed": dg.MetadataValue.md("\n".join(f"- {f}" for f in failed) or "none"),
        "dr_propensity_clipped_share": round(evaluator.clipped_share, 4),
        "uplift_curve": md_figure(uplift_figure, "uplift curve"),
        "uplift_at_half": float(uplift.loc[uplift.share_targeted == 0.5, "dr_value"].iloc[0]
                                - uplift.loc[uplift.share_targeted == 0.5, "random"].iloc[0]),
        "seconds": round(time.time() - started, 1),
        "mlflow_run": dg.MetadataValue.url(mlflow_run_url(mlflow.tracking_uri, experiment_id, run_id)),
    }
    if "share_of_oracle" in comparison:
        metadata["share_of_oracle"] = float(comparison.loc[comparison.policy == "recommended", "share_of_oracle"].iloc[0])
    return dg.MaterializeResult(metadata=metadata)


assets = [incentive_recommendations]
