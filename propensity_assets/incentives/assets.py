"""Incentive studies as assets, partitioned by `incentive_study` (CONTRACTS §9).

study data → causal graph (discovery + identification) → effects and summary →
refutations (asset checks) → recommender (registered, vetted, promoted) and its
recommendations. The logic lives in the pure modules beside this one; this file
wires it to the lake, MLflow and the Dagster UI.
"""


import base64
import json
import time
from pathlib import Path
from typing import Optional

import dagster as dg
import numpy as np
import pandas as pd

from propensity_assets.shared import settings, tables
from propensity_assets.incentives.catalog import Study, get_study
from propensity_assets.shared.partitions import incentive_study_partitions
from propensity_assets.incentives.resources import IncentiveStudiesResource
from propensity_assets.shared.resources import LakeResource, MlflowResource

GROUP = "incentives"
STUDY_DATA, GRAPH, EFFECTS, SUMMARY = (
    tables.INCENTIVE_STUDY_DATA, tables.INCENTIVE_GRAPH, tables.INCENTIVE_EFFECTS, tables.INCENTIVE_SUMMARY)
REFUTATIONS, RECOMMENDATIONS = tables.INCENTIVE_REFUTATIONS, tables.INCENTIVE_RECOMMENDATIONS
POLICY = tables.INCENTIVE_POLICY  # the recommender's policy comparison (not a CONTRACTS table)
REFUTERS = ("placebo_treatment", "random_common_cause", "data_subset", "dummy_outcome")
# The preset of `near_deterministic_assignment`: the covariate part of each treatment's logit ×10,
# its noise ÷10 (about a third of the accounts then get Tech Support with probability < 2 % or > 98 %).
NEAR_DETERMINISTIC_STRENGTH = 10.0


def _spec(study: str) -> list[dict]:
    return [{"study": study}]


def _write(lake: LakeResource, table: str, df: pd.DataFrame, study: str) -> int:
    frame = df.copy()
    frame["study"] = study
    lake.lake.write_pandas(table, frame, ["study"], _spec(study))
    return len(df)


def _read(lake: LakeResource, table: str, study: str) -> pd.DataFrame:
    if not lake.lake.exists(table, {"study": study}):
        raise FileNotFoundError(f"lake table {table!r} has no partition study={study}: materialize {table} for {study} first")
    return lake.lake.read_partition(table, {"study": study})


def _md_table(df: pd.DataFrame, floatfmt: str = ",.1f") -> str:
    cols = list(df.columns)
    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else format(v, floatfmt)
        return str(v)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _png_md(path: str, title: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f"![{title}](data:image/png;base64,{data})"


def _study(context: dg.AssetExecutionContext, studies: IncentiveStudiesResource) -> Study:
    return get_study(studies.path, context.partition_key)


# -- study data -------------------------------------------------------------------------------


class StudyDataConfig(dg.Config):
    """Generator overrides for a generated study (empty: the catalogue's values)."""

    n: Optional[int] = None
    seed: Optional[int] = None
    mediator_noise: Optional[float] = None
    assignment_strength: Optional[float] = None
    near_deterministic_assignment: bool = False


@dg.asset(
    name=STUDY_DATA,
    group_name=GROUP,
    partitions_def=incentive_study_partitions,
    kinds={"pandas", "parquet"},
    description=(
        "The study's table of units in the lake (`incentive_study_data`, partition study=<key>): "
        "generated from the study's structural model (seeded; `n`, seed, mediator noise and a "
        "near-deterministic assignment are config) or read from the study's CSV/Parquet `path`. "
        "`unit_id` is the declared id column or the row number; truth columns are kept when present."
    ),
)
def incentive_study_data(
    context: dg.AssetExecutionContext, config: StudyDataConfig, incentive_studies: IncentiveStudiesResource,
    lake: LakeResource,
) -> dg.MaterializeResult:
    from propensity_assets.incentives.study import generator_config, study_data

    study = _study(context, incentive_studies)
    overrides = dict(n=config.n, seed=config.seed, mediator_noise=config.mediator_noise,
                     assignment_strength=config.assignment_strength)
    if config.near_deterministic_assignment and config.assignment_strength is None:
        overrides["assignment_strength"] = NEAR_DETERMINISTIC_STRENGTH
    data = study_data(study, incentive_studies.path, **overrides)
    rows = _write(lake, STUDY_DATA, data, study.key)
    truth = [c for c in data.columns if "Treatment Effect:" in c]
    rates = pd.DataFrame({"treatment": study.treatment_names,
                          "share treated": [data[t].mean() for t in study.treatment_names]})
    source = f"generated ({study.generate}): {generator_config(study, **overrides)}" if study.generate else study.path
    return dg.MaterializeResult(metadata={
        "rows": rows, "columns": len(data.columns), "source": source, "truth_columns": len(truth),
        f"mean {study.outcome}": float(data[study.outcome].mean()),
        "treatment rates": dg.MetadataValue.md(_md_table(rates, ".3f")),
        "preview": dg.MetadataValue.md(_md_table(data.head(5), ",.0f")),
    })


# -- graph ------------------------------------------------------------------------------------


@dg.asset(
    name=GRAPH,
    group_name=GROUP,
    partitions_def=incentive_study_partitions,
    deps=[STUDY_DATA],
    kinds={"causal-learn", "dowhy", "mlflow"},
    description=(
        "Causal discovery (causal-learn PC) with the study's background knowledge (tiers, required "
        "and forbidden edges), corrected into a DAG by that knowledge (every correction listed), and "
        "the adjustment set of each treatment × effect identified on it by DoWhy. The edge list is "
        "the lake table `incentive_graph`; the drawing and edges are logged to MLflow and shown "
        "here; SHD to the study's expected graph when declared."
    ),
)
def incentive_graph(
    context: dg.AssetExecutionContext, incentive_studies: IncentiveStudiesResource, lake: LakeResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    import mlflow as mlflow_lib  # the resources here are named `mlflow`; MLflow loads with the run
    from propensity_assets.incentives import discovery, tracking
    from propensity_assets.incentives.study import identify_all

    study = _study(context, incentive_studies)
    data = _read(lake, STUDY_DATA, study.key)
    started = time.time()
    result = discovery.discover(data, study)
    ids = identify_all(result.graph, study)
    seconds = time.time() - started
    edges = result.edge_table()
    _write(lake, GRAPH, edges, study.key)
    sets = pd.DataFrame([{"treatment": i.treatment, "effect": i.effect, "identified": i.identified,
                          "effect modifiers (X)": ", ".join(i.modifiers), "controls (W)": ", ".join(i.controls),
                          "notes": "; ".join(i.notes)} for i in ids])
    mlflow.client()
    experiment_id = mlflow.experiment_id(tracking.EXPERIMENT)
    with tracking.tempdir() as tmp:
        png = discovery.plot_graph(result.graph, study.tiers, f"{tmp}/graph.png",
                                   f"{study.key}: corrected causal graph", set(study.treatment_names))
        with mlflow_run(experiment_id, study.key, "graph") as run:
            mlflow_lib.log_artifact(png, "graph")
            mlflow_lib.log_table(edges, "graph/edges.json")
            mlflow_lib.log_dict({"corrections": result.corrections, "shd": result.shd,
                                      "pc_without_knowledge": result.pc_plain, "pc_with_knowledge": result.pc_knowledge},
                                     "graph/discovery.json")
            mlflow_lib.log_table(sets, "graph/adjustment_sets.json")
            if result.shd:
                mlflow_lib.log_metrics({f"shd_{k}": v for k, v in result.shd.items()})
        image = _png_md(png, "causal graph")
    metadata = {
        "graph": dg.MetadataValue.md(image),
        "edges": dg.MetadataValue.md(_md_table(edges)),
        "corrections": dg.MetadataValue.md("\n".join(f"- {c}" for c in result.corrections) or "none"),
        "adjustment sets": dg.MetadataValue.md(_md_table(sets)),
        "edge_count": len(edges),
        "seconds": round(seconds, 1),
        "mlflow_run": dg.MetadataValue.url(tracking.run_url(mlflow.tracking_uri, experiment_id, run.info.run_id)),
        "graph_artifact": dg.MetadataValue.path(f"{run.info.artifact_uri}/graph/graph.png"),
    }
    metadata.update({f"shd {k}": v for k, v in result.shd.items()})
    return dg.MaterializeResult(metadata=metadata)


def mlflow_run(experiment_id: str, study: str, stage: str):
    """An MLflow run tagged with its study and stage (the recommender finds its estimators by them)."""
    import mlflow as mlflow_lib  # the resources here are named `mlflow`; MLflow loads with the run
    run = mlflow_lib.start_run(experiment_id=experiment_id, run_name=f"{study} {stage}")
    mlflow_lib.set_tags({"incentive_study": study, "stage": stage})
    return run


# -- effects ----------------------------------------------------------------------------------


class EffectsConfig(dg.Config):
    """Estimator settings (EconML DML). `estimator` empty: the catalogue's (default linear_dml)."""

    estimator: Optional[str] = None  # linear_dml | causal_forest_dml
    folds: int = 3
    n_estimators: int = 200
    trim: bool = True


def _estimator_config(study: Study, config) -> "EstimatorConfig":
    from propensity_assets.incentives.estimation import EstimatorConfig

    return EstimatorConfig(estimator=config.estimator or study.estimator, folds=config.folds,
                           n_estimators=config.n_estimators, trim=config.trim)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(EFFECTS, group_name=GROUP, deps=[STUDY_DATA, GRAPH], kinds={"econml", "parquet"},
                     description="Per unit × treatment × effect: CATE with its 95 % interval (`incentive_effects`)."),
        dg.AssetSpec(SUMMARY, group_name=GROUP, deps=[STUDY_DATA, GRAPH], kinds={"econml", "parquet"},
                     description="Per treatment × effect: ATE with its 95 % interval, verdict, reason, overlap "
                                 "and, with truth columns, the errors (`incentive_summary`)."),
    ],
    partitions_def=incentive_study_partitions,
    can_subset=False,
)
def incentive_effects(
    context: dg.AssetExecutionContext, config: EffectsConfig, incentive_studies: IncentiveStudiesResource,
    lake: LakeResource, mlflow: MlflowResource,
):
    """EconML DML (LinearDML; CausalForestDML by config) per treatment × effect, with cross-fitting,
    on the adjustment sets the graph identifies. Overlap is checked per treatment (propensity outside
    [0.02, 0.98]); units outside are trimmed from the fit and the ATE, with a warning."""
    import mlflow as mlflow_lib  # the resources here are named `mlflow`; MLflow loads with the run
    from propensity_assets.incentives import tracking
    from propensity_assets.incentives.study import effects_table, estimate_all, graph_from_edges, identify_all, summary_table

    study = _study(context, incentive_studies)
    data = _read(lake, STUDY_DATA, study.key)
    graph = graph_from_edges(_read(lake, GRAPH, study.key), study)
    ids = identify_all(graph, study)
    est_config = _estimator_config(study, config)
    started = time.time()
    estimates = estimate_all(data, study, ids, est_config)
    seconds = time.time() - started
    effects, summary = effects_table(data, estimates), summary_table(data, ids, estimates)
    _write(lake, EFFECTS, effects, study.key)
    _write(lake, SUMMARY, summary, study.key)
    warnings = [e.overlap.warning for e in estimates if e.overlap.warning]
    for row in summary[summary.verdict != "identified"].itertuples():
        context.log.warning(f"study {study.key}: {row.treatment} ({row.effect}) not identified: {row.reason}")
    for w in warnings:
        context.log.warning(f"study {study.key}: {w}")
    mlflow.client()
    experiment_id = mlflow.experiment_id(tracking.EXPERIMENT)
    with tracking.tempdir() as tmp, mlflow_run(experiment_id, study.key, "effects") as run:
        mlflow_lib.log_params({"estimator": est_config.estimator, "folds": est_config.folds,
                                    "n_estimators": est_config.n_estimators, "trim": est_config.trim, "rows": len(data)})
        for row in summary.to_dict("records"):
            tag = f"{row['treatment'].replace(' ', '_')}.{row['effect']}"
            metrics = {f"{tag}.{k}": row[k] for k in ("ate", "ate_lower", "ate_upper", "ate_error", "cate_rmse",
                                                      "overlap_outside_share") if k in row and pd.notna(row[k])}
            mlflow_lib.log_metrics(metrics)
        mlflow_lib.log_table(summary, "summary.json")
        path = Path(tmp) / "estimators.joblib"
        tracking.save_estimators(path, estimates, study)
        mlflow_lib.log_artifact(str(path), "estimators")
        mlflow_lib.log_metric("seconds", seconds)
    cols = [c for c in ["treatment", "effect", "ate", "ate_lower", "ate_upper", "true_ate", "ate_error",
                        "truth_in_interval", "cate_rmse", "verdict"] if c in summary.columns]
    overlap_cols = [c for c in ["treatment", "effect", "overlap_outside_share", "overlap_below", "overlap_above",
                                "propensity_min", "propensity_max", "n_fit"] if c in summary.columns]
    url = dg.MetadataValue.url(tracking.run_url(mlflow.tracking_uri, experiment_id, run.info.run_id))
    common = {"estimator": est_config.estimator, "mlflow_run": url, "seconds": round(seconds, 1)}
    yield dg.MaterializeResult(asset_key=EFFECTS, metadata={
        **common, "rows": len(effects), "units": len(data),
        "ATE table": dg.MetadataValue.md(_md_table(summary[cols])),
        "overlap": dg.MetadataValue.md(_md_table(summary[overlap_cols], ",.3f")),
        "overlap warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in warnings) or "none"),
    })
    yield dg.MaterializeResult(asset_key=SUMMARY, metadata={
        **common, "rows": len(summary), "ATE table": dg.MetadataValue.md(_md_table(summary[cols])),
        "adjustment sets": dg.MetadataValue.md(_md_table(summary[["treatment", "effect", "modifiers", "controls"]])),
        **{f"ate {r.treatment} ({r.effect})": float(r.ate) for r in summary.itertuples() if pd.notna(r.ate)},
    })


# -- refutations ------------------------------------------------------------------------------


@dg.asset(
    name=REFUTATIONS,
    group_name=GROUP,
    partitions_def=incentive_study_partitions,
    deps=[STUDY_DATA, GRAPH, EFFECTS],
    kinds={"dowhy", "econml"},
    check_specs=[dg.AssetCheckSpec(name, asset=REFUTATIONS, description=f"DoWhy {name.replace('_', ' ')} refuter on every estimated effect")
                 for name in REFUTERS],
    description=(
        "DoWhy's refuters (placebo treatment, random common cause, data subset, dummy outcome) on "
        "each estimated effect, through EconML's DoWhy wrapper, with the same estimator settings. "
        "Each refuter is an asset check with its results as metadata; a failing one blocks the "
        "recommender's promotion. Results are the lake table `incentive_refutations`."
    ),
)
def incentive_refutations(
    context: dg.AssetExecutionContext, config: EffectsConfig, incentive_studies: IncentiveStudiesResource,
    lake: LakeResource,
):
    from propensity_assets.incentives.estimation import make_estimator
    from propensity_assets.incentives.refutation import refute
    from propensity_assets.incentives.study import graph_from_edges, identify_all

    study = _study(context, incentive_studies)
    data = _read(lake, STUDY_DATA, study.key)
    summary = _read(lake, SUMMARY, study.key)
    # No identified effect leaves `incentive_effects` without this partition: nothing to refute.
    effects = (_read(lake, EFFECTS, study.key) if lake.lake.exists(EFFECTS, {"study": study.key})
               else pd.DataFrame(columns=["unit_id", "treatment", "effect", "in_overlap"]))
    ids = identify_all(graph_from_edges(_read(lake, GRAPH, study.key), study), study)
    est_config = _estimator_config(study, config)
    rows, started = [], time.time()
    for ident in ids:
        match = summary[(summary.treatment == ident.treatment) & (summary.effect == ident.effect)]
        if not ident.identified or match.empty or pd.isna(match.ate.iloc[0]):
            continue
        inside = effects[(effects.treatment == ident.treatment) & (effects.effect == ident.effect)]
        fit = data[data["unit_id"].isin(inside.loc[inside.in_overlap, "unit_id"])]
        half = float(match.ate_upper.iloc[0] - match.ate_lower.iloc[0]) / 2
        results = refute(make_estimator(est_config), fit, ident.treatment, study.outcome, list(ident.modifiers),
                         list(ident.controls), ident.effect, half)
        rows += [r.row() for r in results]
    table = pd.DataFrame(rows, columns=["refuter", "treatment", "effect", "original", "new", "tolerance", "passed", "p_value", "detail"])
    _write(lake, REFUTATIONS, table, study.key)
    yield dg.MaterializeResult(metadata={
        "rows": len(table), "failed": int((~table.passed.astype(bool)).sum()), "seconds": round(time.time() - started, 1),
        "refutations": dg.MetadataValue.md(_md_table(table.drop(columns=["detail"]), ",.2f")),
    })
    for name in REFUTERS:
        part = table[table.refuter == name]
        failed = part[~part.passed.astype(bool)]
        yield dg.AssetCheckResult(
            check_name=name, asset_key=REFUTATIONS, passed=bool(len(part)) and failed.empty,
            severity=dg.AssetCheckSeverity.ERROR,
            description=("; ".join(failed.detail) or f"passed on {len(part)} effect(s)") if len(part) else "no estimated effect to refute",
            metadata={"results": dg.MetadataValue.md(_md_table(part.drop(columns=["refuter"]), ",.2f")),
                      "failed": len(failed)},
        )


# -- recommender ------------------------------------------------------------------------------


@dg.asset(
    name=RECOMMENDATIONS,
    group_name=GROUP,
    partitions_def=incentive_study_partitions,
    deps=[STUDY_DATA, EFFECTS, REFUTATIONS],
    kinds={"mlflow", "parquet"},
    description=(
        "Per unit, the option (none, each treatment, each combination) with the highest expected "
        "profit = estimated incremental outcome − cost (`incentive_recommendations`). The recommender "
        "is registered as `incentive__<study>` (a pyfunc: unit rows in, option and expected profit per "
        "option out), vetted with the shared rule on doubly robust policy value against no incentive, "
        "treat-all with each option, the observed allocation and the champion, and promoted unless a "
        "refutation failed. With truth columns, realized profit against the oracle is reported."
    ),
)
def incentive_recommendations(
    context: dg.AssetExecutionContext, incentive_studies: IncentiveStudiesResource, lake: LakeResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    import mlflow as mlflow_lib  # the resources here are named `mlflow`; MLflow loads with the run
    from propensity_assets.incentives import recommender as rec
    from propensity_assets.incentives import tracking
    from propensity_assets.incentives.study import policy_report, unit_costs

    study = _study(context, incentive_studies)
    data = _read(lake, STUDY_DATA, study.key)
    refutations = _read(lake, REFUTATIONS, study.key)
    failed = sorted({f"{r.refuter} ({r.treatment}, {r.effect})" for r in refutations.itertuples() if not r.passed})
    client = mlflow.client()
    experiment_id = mlflow.experiment_id(tracking.EXPERIMENT)
    effects_run = tracking.latest_run(client, experiment_id, study.key, "effects")
    started = time.time()
    with tracking.tempdir() as tmp:
        bundle = client.download_artifacts(effects_run.info.run_id, tracking.ESTIMATORS_ARTIFACT, tmp)
        champion = tracking.champion_policy(study.key, data, client)
        example_cols = list(dict.fromkeys([*study.covariates, *(c for t in study.treatments for c in t.cost_columns)]))
        version, run_id = tracking.register_recommender(
            client, experiment_id, study, bundle, data[["unit_id", *example_cols]].head(3),
            {"effects_run_id": effects_run.info.run_id, "dagster_run_id": context.run.run_id},
        )
    model = mlflow_lib.pyfunc.load_model(f"models:/{tracking.registry.model_name('incentive', study.key)}/{version}")
    recs = model.predict(data)
    comparison, evaluator = policy_report(data, study, recs["recommended"].to_numpy())
    champion_value = champion_version = None
    if champion is not None:
        champion_version = champion[0]
        champion_value = evaluator.value(champion[1], unit_costs(data, study))
    decision = tracking.vet_recommender(client, study.key, version, comparison, champion_value, champion_version,
                                        failed, settings.auto_promote())
    with mlflow_lib.start_run(run_id=run_id):
        mlflow_lib.log_table(comparison, "policy_comparison.json")
        mlflow_lib.log_metrics({f"{tracking.POLICY_METRIC}.{p.replace(' ', '_').replace(':', '').replace('+', '_')}": v
                                     for p, v in zip(comparison.policy, comparison.dr_value)})
        if "share_of_oracle" in comparison:
            mlflow_lib.log_metric("share_of_oracle", float(comparison.loc[comparison.policy == "recommended", "share_of_oracle"].iloc[0]))
    _write(lake, RECOMMENDATIONS, recs, study.key)
    _write(lake, POLICY, comparison.assign(model_version=version, decision=decision.decision), study.key)
    metadata = {
        "rows": len(recs), "model_name": tracking.registry.model_name("incentive", study.key), "model_version": version,
        "decision": decision.decision, "reason": decision.reason,
        "policy comparison": dg.MetadataValue.md(_md_table(comparison, ",.2f")),
        "options chosen": dg.MetadataValue.md(_md_table(recs["recommended"].value_counts().rename_axis("option").reset_index(), ",.0f")),
        "refutations failed": dg.MetadataValue.md("\n".join(f"- {f}" for f in failed) or "none"),
        "dr_propensity_clipped_share": round(evaluator.clipped_share, 4),
        "seconds": round(time.time() - started, 1),
        "mlflow_run": dg.MetadataValue.url(tracking.run_url(mlflow.tracking_uri, experiment_id, run_id)),
    }
    if "share_of_oracle" in comparison:
        metadata["share_of_oracle"] = float(comparison.loc[comparison.policy == "recommended", "share_of_oracle"].iloc[0])
    return dg.MaterializeResult(metadata=metadata)


assets = [incentive_study_data, incentive_graph, incentive_effects, incentive_refutations, incentive_recommendations]
