"""A catalogue study's causal analysis as assets, partitioned by `incentive_study` (CONTRACTS §9).

study data → causal graph (discovery + identification) → effects and summary →
refutations (asset checks). The recommender built on them is in
`recommender_assets.py`. The logic lives in the pure modules beside these; this file
wires it to the lake, MLflow and the Dagster UI.
"""

import time
from pathlib import Path
from typing import Optional

import dagster as dg
import pandas as pd

from propensity_assets.incentives import effect_checks, study_tables
from propensity_assets.incentives.catalog import Study, StudyCatalogError, get_study
from propensity_assets.incentives.resources import IncentiveStudiesResource
from propensity_assets.shared import tables
from propensity_assets.shared.metadata import md_image_file, md_table, mlflow_run_url
from propensity_assets.incentives.sample import MIN_PER_ARM
from propensity_assets.shared.partitions import incentive_study_partitions
from propensity_assets.shared.resources import LakeResource, MlflowResource

GROUP = "incentives"
STUDY_DATA, GRAPH, EFFECTS, SUMMARY = (
    tables.INCENTIVE_STUDY_DATA, tables.INCENTIVE_GRAPH, tables.INCENTIVE_EFFECTS, tables.INCENTIVE_SUMMARY)
REFUTATIONS = tables.INCENTIVE_REFUTATIONS
REFUTERS = ("placebo_treatment", "random_common_cause", "data_subset", "dummy_outcome")


def study_asset(**kwargs):
    """`dg.asset` for one study: the room's group, one partition per study of the catalogue."""
    return dg.asset(group_name=GROUP, partitions_def=incentive_study_partitions, **kwargs)


def study_of(context: dg.AssetExecutionContext, studies: IncentiveStudiesResource) -> Study:
    return get_study(studies.path, context.partition_key)


def study_inputs(context: dg.AssetExecutionContext, studies: IncentiveStudiesResource,
                 lake: LakeResource) -> tuple[Study, pd.DataFrame]:
    """The run's study and its table of units from the lake."""
    study = study_of(context, studies)
    return study, study_tables.read(lake.lake, STUDY_DATA, study.key)


# -- study data -------------------------------------------------------------------------------


class StudyDataConfig(dg.Config):
    """Generator overrides for a generated study (empty: the catalogue's values), and the least
    number of units each arm of every treatment must have (`incentives/sample.py` says why 30)."""

    min_per_arm: int = MIN_PER_ARM
    n: Optional[int] = None
    seed: Optional[int] = None
    mediator_noise: Optional[float] = None
    assignment_strength: Optional[float] = None
    assignment: Optional[str] = None  # random | threshold (generator.ASSIGNMENTS)


@study_asset(
    name=STUDY_DATA,
    kinds={"pandas", "parquet"},
    description=(
        "The study's table of units in the lake (`incentive_study_data`, partition study=<key>): "
        "generated from the study's structural model (seeded; `n`, seed, mediator noise and a "
        "near-deterministic assignment are config) or read from the study's CSV/Parquet `path`. "
        "`unit_id` is the declared id column or the row number; truth columns are kept when present. "
        "A table with a missing, blank, NaN or infinite value in a variable, a treatment given to all or "
        "none, or an arm smaller than `min_per_arm` (config, default 30) is refused and not written."
    ),
)
def incentive_study_data(
    context: dg.AssetExecutionContext, config: StudyDataConfig, incentive_studies: IncentiveStudiesResource,
    lake: LakeResource,
) -> dg.MaterializeResult:
    from propensity_assets.incentives.study import generator_config, study_data

    study = study_of(context, incentive_studies)
    overrides = dict(n=config.n, seed=config.seed, mediator_noise=config.mediator_noise,
                     assignment_strength=config.assignment_strength, assignment=config.assignment)
    try:
        data = study_data(study, incentive_studies.path, config.min_per_arm, **overrides)
    except StudyCatalogError as exc:
        raise dg.Failure(f"{exc}. Nothing was written.", allow_retries=False) from None
    rows = study_tables.write(lake.lake, STUDY_DATA, data, study.key)
    truth = [c for c in data.columns if "Treatment Effect:" in c]
    rates = pd.DataFrame({"treatment": study.treatment_names,
                          "share treated": [data[t].mean() for t in study.treatment_names]})
    source = f"generated ({study.generate}): {generator_config(study, **overrides)}" if study.generate else study.path
    return dg.MaterializeResult(metadata={
        "rows": rows, "columns": len(data.columns), "source": source, "truth_columns": len(truth),
        f"mean {study.outcome}": float(data[study.outcome].mean()),
        "treatment rates": md_table(rates, floatfmt=".3f"),
        "preview": md_table(data.head(5), floatfmt=",.0f"),
    })


# -- graph ------------------------------------------------------------------------------------


@study_asset(
    name=GRAPH,
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

    study, data = study_inputs(context, incentive_studies, lake)
    started = time.time()
    result = discovery.discover(data, study)
    ids = identify_all(result.graph, study)
    seconds = time.time() - started
    edges = result.edge_table()
    study_tables.write(lake.lake, GRAPH, edges, study.key)
    sets = pd.DataFrame([{"treatment": i.treatment, "effect": i.effect, "identified": i.identified and i.graph_path,
                          "effect modifiers (X)": ", ".join(i.modifiers), "controls (W)": ", ".join(i.controls),
                          "notes": "; ".join(i.notes)} for i in ids])
    mlflow.client()
    experiment_id = mlflow.experiment_id(tracking.EXPERIMENT)
    with tracking.tempdir() as tmp:
        png = discovery.plot_graph(result.graph, study.tiers, f"{tmp}/graph.png",
                                   f"{study.key}: corrected causal graph", set(study.treatment_names))
        with tracking.study_run(experiment_id, study.key, "graph") as run:
            mlflow_lib.log_artifact(png, "graph")
            mlflow_lib.log_table(edges, "graph/edges.json")
            mlflow_lib.log_dict({"corrections": result.corrections, "shd": result.shd,
                                      "pc_without_knowledge": result.pc_plain, "pc_with_knowledge": result.pc_knowledge},
                                     "graph/discovery.json")
            mlflow_lib.log_table(sets, "graph/adjustment_sets.json")
            if result.shd:
                mlflow_lib.log_metrics({f"shd_{k}": v for k, v in result.shd.items()})
        image = md_image_file(png, "causal graph")
    metadata = {
        "graph": image,
        "edges": md_table(edges, floatfmt=",.1f"),
        "corrections": dg.MetadataValue.md("\n".join(f"- {c}" for c in result.corrections) or "none"),
        "adjustment sets": md_table(sets, floatfmt=",.1f"),
        "edge_count": len(edges),
        "seconds": round(seconds, 1),
        "mlflow_run": dg.MetadataValue.url(mlflow_run_url(mlflow.tracking_uri, experiment_id, run.info.run_id)),
        "graph_artifact": dg.MetadataValue.path(f"{run.info.artifact_uri}/graph/graph.png"),
    }
    metadata.update({f"shd {k}": v for k, v in result.shd.items()})
    return dg.MaterializeResult(metadata=metadata)


# -- effects ----------------------------------------------------------------------------------


class EffectsConfig(dg.Config):
    """Estimator settings (EconML DML). `estimator` empty: the catalogue's (default linear_dml).
    `min_per_arm`: the least number of treated and of untreated units of each effect's fit."""

    estimator: Optional[str] = None  # linear_dml | causal_forest_dml (with select: false)
    folds: int = 3
    n_estimators: int = 200
    trim: Optional[bool] = None  # empty: the study's `trim:` (default false)
    select: bool = True  # choose the specification by out-of-sample R-loss (incentives/specification.py)
    tune_nuisances: bool = True  # each DML nuisance model among a few LightGBM settings, by cross-validated loss
    min_per_arm: int = MIN_PER_ARM


def _estimator_config(study: Study, config) -> "EstimatorConfig":
    from propensity_assets.incentives.estimation import EstimatorConfig

    return EstimatorConfig(estimator=config.estimator or study.estimator, folds=config.folds,
                           n_estimators=config.n_estimators, trim=study.trim if config.trim is None else config.trim,
                           select=config.select, tune_nuisances=config.tune_nuisances)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(EFFECTS, group_name=GROUP, deps=[STUDY_DATA, GRAPH], kinds={"econml", "parquet"},
                     description="Per unit × treatment × effect: CATE with its 95 % interval (`incentive_effects`)."),
        dg.AssetSpec(SUMMARY, group_name=GROUP, deps=[STUDY_DATA, GRAPH], kinds={"econml", "parquet"},
                     description="Per treatment × effect: ATE with its 95 % interval, verdict, reason, overlap "
                                 "and, with truth columns, the errors (`incentive_summary`)."),
    ],
    check_specs=[dg.AssetCheckSpec(name, asset=EFFECTS, description=text) for name, text in effect_checks.CHECKS.items()],
    partitions_def=incentive_study_partitions,
    can_subset=False,
)
def incentive_effects(
    context: dg.AssetExecutionContext, config: EffectsConfig, incentive_studies: IncentiveStudiesResource,
    lake: LakeResource, mlflow: MlflowResource,
):
    """EconML DML per treatment × effect, with cross-fitting, on the adjustment sets the graph
    identifies; the final stage (declared modifiers, sparse, all covariates, causal forest) chosen by
    out-of-sample R-loss and validated (DRTester; the extrapolation check outside overlap). Overlap
    is checked per treatment (propensity outside [0.02, 0.98]); units outside are trimmed only when
    the study says `trim: true`, and each estimate names the population it covers."""
    import mlflow as mlflow_lib  # the resources here are named `mlflow`; MLflow loads with the run
    from propensity_assets.incentives import tracking
    from propensity_assets.incentives.sample import check_effect_arms
    from propensity_assets.incentives.study import effects_table, estimate_all, graph_from_edges, identify_all, summary_table

    study, data = study_inputs(context, incentive_studies, lake)
    graph = graph_from_edges(study_tables.read(lake.lake, GRAPH, study.key), study)
    ids = identify_all(graph, study)
    est_config = _estimator_config(study, config)
    started = time.time()
    estimates = estimate_all(data, study, ids, est_config)
    seconds = time.time() - started
    try:
        check_effect_arms(study, data, estimates, config.min_per_arm)
    except StudyCatalogError as exc:
        raise dg.Failure(f"{exc}. Nothing was written.", allow_retries=False) from None
    effects, summary = effects_table(data, estimates), summary_table(data, ids, estimates)
    study_tables.write(lake.lake, EFFECTS, effects, study.key)
    study_tables.write(lake.lake, SUMMARY, summary, study.key)
    warnings = [e.overlap.warning for e in estimates if e.overlap.warning]
    for row in summary[summary.verdict == "not identified"].itertuples():
        context.log.warning(f"study {study.key}: {row.treatment} ({row.effect}) not identified: {row.reason}")
    for w in warnings:
        context.log.warning(f"study {study.key}: {w}")
    mlflow.client()
    experiment_id = mlflow.experiment_id(tracking.EXPERIMENT)
    with tracking.tempdir() as tmp, tracking.study_run(experiment_id, study.key, "effects") as run:
        mlflow_lib.log_params({"estimator": est_config.estimator, "folds": est_config.folds,
                               "n_estimators": est_config.n_estimators, "trim": est_config.trim,
                               "select": est_config.select, "tune_nuisances": est_config.tune_nuisances,
                               "rows": len(data)})
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
        plots = effect_checks.log_to_mlflow(estimates, tmp)
        images = {f"validation {k}": md_image_file(v, k) for k, v in plots.items()}
    cols = [c for c in ["treatment", "effect", "population", "population_share", "ate", "ate_lower", "ate_upper", "true_ate", "ate_error",
                        "truth_in_interval", "cate_rmse", "verdict"] if c in summary.columns]
    overlap_cols = [c for c in ["treatment", "effect", "overlap_outside_share", "overlap_below", "overlap_above",
                                "propensity_min", "propensity_max", "n_fit"] if c in summary.columns]
    url = dg.MetadataValue.url(mlflow_run_url(mlflow.tracking_uri, experiment_id, run.info.run_id))
    common = {"estimator": est_config.estimator, "mlflow_run": url, "seconds": round(seconds, 1)}
    yield dg.MaterializeResult(asset_key=EFFECTS, metadata={
        **common, "rows": len(effects), "units": len(data),
        "ATE table": md_table(summary[cols], floatfmt=",.1f"),
        "overlap": md_table(summary[overlap_cols], floatfmt=",.3f"),
        "overlap warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in warnings) or "none"),
        "specification candidates (R-score)": md_table(effect_checks.candidates_table(estimates), floatfmt=",.4f"),
        "nuisance models (cross-validated loss)": md_table(effect_checks.nuisances_table(estimates), floatfmt=",.4g"),
        "CATE validation": md_table(effect_checks.validation_table(estimates), floatfmt=",.3f"),
        **images,
    })
    yield dg.MaterializeResult(asset_key=SUMMARY, metadata={
        **common, "rows": len(summary), "ATE table": md_table(summary[cols], floatfmt=",.1f"),
        "adjustment sets": md_table(summary[["treatment", "effect", "modifiers", "controls"]], floatfmt=",.1f"),
        **{f"ate {r.treatment} ({r.effect})": float(r.ate) for r in summary.itertuples() if pd.notna(r.ate)},
    })
    for name, (passed, description, rows) in effect_checks.check_results(estimates).items():
        yield dg.AssetCheckResult(check_name=name, asset_key=EFFECTS, passed=passed,
                                  severity=dg.AssetCheckSeverity.WARN, description=description,
                                  metadata={"results": md_table(rows, floatfmt=",.3f")})


# -- refutations ------------------------------------------------------------------------------


def refutation_fit(row: pd.Series, ident, study: Study, est_config, fit: pd.DataFrame):
    """The estimate as `incentive_summary` recorded it (its specification and nuisance models), for
    DoWhy to refit and refute: (unfitted estimator, the rows with a linear stage's modifiers
    standardized as the estimate had them, X columns, W columns)."""
    from propensity_assets.incentives import specification as spec_lib
    from propensity_assets.incentives.estimation import Nuisances, make_estimator

    text = lambda key, default: row[key] if isinstance(row.get(key), str) else default  # noqa: E731
    model_y, model_t = Nuisances(text("outcome_model", "lightgbm"), text("treatment_model", "lightgbm"),
                                 {}).models(est_config)
    spec = spec_lib.named(text("specification", ""), list(study.effect_modifiers), list(ident.modifiers))
    if spec is None:  # a constant effect
        return make_estimator(est_config, model_y, model_t), fit, [], list(ident.controls)
    x_cols = list(spec.modifiers)
    w_cols = [c for c in dict.fromkeys([*ident.modifiers, *ident.controls]) if c not in x_cols]
    if spec.final != "forest":
        fit = fit.copy()
        fit[x_cols] = (fit[x_cols] - fit[x_cols].mean()) / fit[x_cols].std(ddof=0).replace(0, 1)
    return spec_lib.make(spec, model_y, model_t, est_config.folds, est_config.random_state), fit, x_cols, w_cols


@study_asset(
    name=REFUTATIONS,
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
    from propensity_assets.incentives.refutation import refute
    from propensity_assets.incentives.study import graph_from_edges, identify_all

    study, data = study_inputs(context, incentive_studies, lake)
    summary = study_tables.read(lake.lake, SUMMARY, study.key)
    # No identified effect leaves `incentive_effects` without this partition: nothing to refute.
    effects = (study_tables.read(lake.lake, EFFECTS, study.key) if study_tables.exists(lake.lake, EFFECTS, study.key)
               else pd.DataFrame(columns=["unit_id", "treatment", "effect", "in_overlap"]))
    ids = identify_all(graph_from_edges(study_tables.read(lake.lake, GRAPH, study.key), study), study)
    est_config = _estimator_config(study, config)
    rows, started = [], time.time()
    for ident in ids:
        match = summary[(summary.treatment == ident.treatment) & (summary.effect == ident.effect)]
        if not ident.identified or match.empty or pd.isna(match.ate.iloc[0]):
            continue
        inside = effects[(effects.treatment == ident.treatment) & (effects.effect == ident.effect)]
        fitted = inside.in_fit if "in_fit" in inside else inside.in_overlap
        fit = data[data["unit_id"].isin(inside.loc[fitted.astype(bool), "unit_id"])]
        estimator, fit, x_cols, w_cols = refutation_fit(match.iloc[0], ident, study, est_config, fit)
        results = refute(estimator, fit, ident.treatment, study.outcome, x_cols, w_cols, ident.effect, None)
        rows += [r.row() for r in results]
    table = pd.DataFrame(rows, columns=["refuter", "treatment", "effect", "original", "new", "tolerance", "passed", "p_value", "detail"])
    study_tables.write(lake.lake, REFUTATIONS, table, study.key)
    yield dg.MaterializeResult(metadata={
        "rows": len(table), "failed": int((~table.passed.astype(bool)).sum()), "seconds": round(time.time() - started, 1),
        "refutations": md_table(table.drop(columns=["detail"]), floatfmt=",.2f"),
    })
    for name in REFUTERS:
        part = table[table.refuter == name]
        failed = part[~part.passed.astype(bool)]
        yield dg.AssetCheckResult(
            check_name=name, asset_key=REFUTATIONS, passed=bool(len(part)) and failed.empty,
            severity=dg.AssetCheckSeverity.ERROR,
            description=("; ".join(failed.detail) or f"passed on {len(part)} effect(s)") if len(part) else "no estimated effect to refute",
            metadata={"results": md_table(part.drop(columns=["refuter"]), floatfmt=",.2f"),
                      "failed": len(failed)},
        )


assets = [incentive_study_data, incentive_graph, incentive_effects, incentive_refutations]
