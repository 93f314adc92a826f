"""Train one stage's model for one group at a cutoff, log it to MLflow and register it."""

from __future__ import annotations

import json
import pickle
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

import propensity_assets
from propensity_assets.shared import registry, settings
from propensity_assets.shared.lake import Lake
from propensity_assets.lifecycle import frames, registration
from propensity_assets.lifecycle.stage import ModelStage


def code_version() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=settings.PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = "unknown"
    return f"propensity_assets {getattr(propensity_assets, '__version__', '0.1.0')} git {sha}"


def _signature(features: list[str], output: str):
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = [ColSpec("long", "household_id"), ColSpec("string", "as_of")]
    inputs += [ColSpec("double", name, required=False) for name in features]
    outputs = [ColSpec("long", "household_id"), ColSpec("string", "as_of"), ColSpec("double", output)]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


@dataclass
class Registered:
    model_name: str
    version: str
    run_id: str
    experiment_id: str
    selection_metrics: dict
    holdout_metrics: dict
    holdout_baselines: dict
    plan: frames.SnapshotPlan
    train_seconds: float
    train_rows: int
    reports: dict
    trials: pd.DataFrame
    sample: frames.TrainingSample
    search: str  # "space", or "champion vN" when the champion's configuration was refitted
    deciles: pd.DataFrame  # the decile table on the vetting snapshot
    charts: dict  # file name → PNG bytes of the evaluation charts on the vetting snapshot


def train_and_register(
    stage: ModelStage,
    lake: Lake,
    mlflow_res,
    group: str,
    cutoff: date,
    config,
    run_tags: dict,
    run_alive=None,
) -> Registered:
    """Fit on the plan's training snapshots, choose among trials on a household-grouped
    share of them, and register a new version of `<stage>__<group>`.

    The vetting snapshot is scored here too (the candidate and the naive baselines), for
    the record; the vetting step compares it with the champion there. With `run_alive`
    (Dagster run id → still running), the MLflow runs a killed Dagster run left RUNNING for
    this model are ended as FAILED first.
    """
    import mlflow

    config = config.resolved()  # the run's choices, else the deployment's settings
    config.space()  # a search space without a trial is refused here, before anything is read
    horizon = stage.horizon_days()
    plan = frames.snapshot_plan(cutoff, horizon, config.history_weeks, date.fromisoformat(settings.as_of_start()))
    dates = [str(d) for d in plan.train]
    train_df, holdout, sample = frames.training_frames(
        lake, group, dates, str(plan.vetting), stage.labels_table, config.max_training_rows, config.seed
    )
    fit_df, select_df = frames.selection_split(train_df, seed=config.seed)
    name = stage.model_name(group)
    client = mlflow_res.client()
    search = "space"
    if config.from_champion:
        champion = registry.version_by_alias(client, name, registry.CHAMPION)
        if champion is not None:
            best = {k.removeprefix("best."): v for k, v in client.get_run(champion.run_id).data.params.items()
                    if k.startswith("best.")}
            config = pinned(config, best, f"{name} v{champion.version}")
            search = f"champion v{champion.version}"
    started = time.perf_counter()
    result = stage.train(fit_df, select_df, config)
    train_seconds = time.perf_counter() - started
    y = holdout["label"].to_numpy()
    predicted = result.predictor.predict(holdout)
    holdout_metrics = stage.evaluate(y, predicted)
    reports = stage.reports(y, predicted)
    naive = stage.baselines(holdout, horizon)
    holdout_baselines = {name: stage.evaluate(y, p) for name, p in naive.items()}

    experiment_id = mlflow_res.experiment_id(stage.name)
    window = plan.tags()
    if run_alive is not None:
        registration.end_orphaned_runs(client, experiment_id, stage.name, group, run_alive)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{group} @ {cutoff}") as run:
        mlflow.set_tags({"stage": stage.name, "product_group": group, "code_version": code_version(), **window, **run_tags})
        mlflow.log_params({f"best.{k}": v for k, v in result.params.items()})
        mlflow.log_params({"train_rows": len(train_df), "fit_rows": len(fit_df), "selection_rows": len(select_df),
                           "holdout_rows": len(holdout), "trials": len(result.trials)})
        mlflow.log_params(sample.params())
        mlflow.set_tag("training_sampled", str(sample.sampled).lower())
        mlflow.set_tag("search", search)
        mlflow.log_param("search_space", json.dumps(config.model_dump(), default=str)[:6000])
        mlflow.log_metrics({f"selection_{k}": v for k, v in result.selection_metrics.items() if _finite(v)})
        mlflow.log_metrics({f"holdout_{k}": v for k, v in holdout_metrics.items() if _finite(v)})
        for base, metrics in holdout_baselines.items():
            mlflow.log_metrics({f"baseline_{base}_{k}": v for k, v in metrics.items() if _finite(v)})
        mlflow.log_metric("train_seconds", train_seconds)
        if result.figures is not None:
            import matplotlib.pyplot as plt

            figures = result.figures(y, predicted)
            try:
                for fname, fig in figures.items():
                    mlflow.log_figure(fig, f"plots/{fname}")
            finally:  # pyplot keeps every open figure alive: a long training run would pile them up
                for fig in figures.values():
                    plt.close(fig)
        if result.importances is not None:
            mlflow.log_dict({k: float(v) for k, v in result.importances.items()}, "feature_importance.json")
        mlflow.log_dict({"features": list(result.predictor.features)}, "features.json")
        mlflow.log_table(result.trials, "search/trials.json")
        log_trials(result.trials, set(result.selection_metrics) | {"fit_seconds", "best_iteration"}, group, experiment_id)
        for report, table in reports.items():
            mlflow.log_table(table, f"holdout/{report}.json")
        deciles, charts = log_evaluation(client, stage, y, {"model": predicted, **naive}, ["model"],
                                         f"{name} at cutoff {cutoff}, snapshot {plan.vetting}", "evaluation")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "predictor.pkl"
            path.write_bytes(pickle.dumps(result.predictor))
            from propensity_assets.lifecycle.pyfunc import PIP_REQUIREMENTS, LifecycleModel

            version = registration.log_and_register(
                name,
                LifecycleModel(),
                artifacts={"predictor": str(path)},
                tags={**window, f"holdout_{stage.metric}": holdout_metrics[stage.metric],
                      **registration.lineage_tags(stage.name, group, list(result.predictor.features))},
                model_config={
                    "stage": stage.name,
                    "product_group": group,
                    "output_column": stage.score_column,
                    "output_min": stage.output_min,
                    "output_max": stage.output_max,
                    "features": list(result.predictor.features),
                    "lake_uri": lake.root,
                    "horizon_days": horizon,
                },
                signature=_signature(list(result.predictor.features), stage.score_column),
                input_example=holdout[["household_id", "as_of"]].head(3).reset_index(drop=True),
                pip_requirements=PIP_REQUIREMENTS,
            )
    return Registered(
        name, version, run.info.run_id, experiment_id, result.selection_metrics, holdout_metrics,
        holdout_baselines, plan, train_seconds, len(train_df), reports, result.trials, sample, search, deciles, charts,
    )


def log_evaluation(client, stage: ModelStage, y, predictions: dict, models: list[str], title: str, folder: str,
                   run_id: str | None = None) -> tuple[pd.DataFrame, dict[str, bytes]]:
    """The evaluation charts and the decile table of the first of `models` on one labelled
    snapshot, logged to the MLflow run (`run_id`, else the active one) under `folder`; the
    table and the charts as PNG bytes, for the Dagster UI."""
    import mlflow

    from propensity_assets.lifecycle.evaluation import evaluation_charts
    from propensity_assets.shared.deciles import decile_table
    from propensity_assets.shared.metadata import png_bytes

    run_id = run_id or mlflow.active_run().info.run_id
    deciles = decile_table(y, predictions[models[0]])
    client.log_table(run_id, deciles, f"{folder}/deciles.json")
    charts = {}
    for file, fig in evaluation_charts(y, predictions, models, title, stage.actual_name).items():
        client.log_figure(run_id, fig, f"{folder}/{file}")
        charts[file] = png_bytes(fig)
    return deciles, charts


def pinned(config, params: dict[str, str], source: str):
    """`config` with each search dimension that `params` (a selected trial, as MLflow
    strings) names pinned to that one value. A trial names a dimension by its field
    (`num_leaves`) or its singular (`algorithm` for `algorithms`); other keys (the chosen
    boosting rounds) are not dimensions, and early stopping chooses them again."""
    import pydantic

    dims = {name for name, value in config.model_dump().items() if isinstance(value, list)}
    update = {}
    for key, value in params.items():
        field = key if key in dims else f"{key}s" if f"{key}s" in dims else None
        if field is not None:
            update[field] = [value]
    try:
        return type(config)(**{**config.model_dump(), **update})
    except pydantic.ValidationError as exc:
        bad = ", ".join(f"{f}={update[f][0]!r}" for f in dict.fromkeys(e["loc"][0] for e in exc.errors()))
        raise ValueError(f"{source}'s selected configuration does not fit this search space: {bad}") from None


def log_trials(trials: pd.DataFrame, metric_names: set[str], group: str, experiment_id: str) -> None:
    """Each trial (hyperparameter permutation) as a child run of the active run: its
    parameters as params, its selection metrics as metrics, comparable in the MLflow UI."""
    import mlflow

    for i, row in enumerate(trials.to_dict("records")):
        with mlflow.start_run(run_name=f"{group} trial {i}", nested=True, experiment_id=experiment_id):
            mlflow.set_tag("trial", str(i))
            mlflow.log_params({k: v for k, v in row.items() if k not in metric_names})
            mlflow.log_metrics({k: float(v) for k, v in row.items() if k in metric_names and _finite(v)})


def _finite(value) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and bool(np.isfinite(value))
