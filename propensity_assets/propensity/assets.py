"""Propensity lifecycle assets: labels → model (train + register) → champion (vet + promote) → scores."""

import json
import subprocess
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
from dagster_pyspark import PySparkResource
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from pyspark.sql import functions as F

import propensity_assets
from propensity_assets import registry, settings
from propensity_assets.features.assets import materialize_group_table
from propensity_assets.groups.assets import MEMBERS_TABLE
from propensity_assets.lake import Lake
from propensity_assets.partitions import (
    as_of_group_partitions,
    cutoff_group_partitions,
    requested_keys,
    split_key,
)
from propensity_assets.propensity import labels as label_logic
from propensity_assets.propensity import model as M
from propensity_assets.propensity.pyfunc import PropensityModel
from propensity_assets.resources import LakeResource, MlflowResource

warnings.filterwarnings("ignore", category=dg.BetaWarning)

EXPERIMENT = "propensity"
LABELS_TABLE = "propensity_labels"
SCORES_TABLE = "propensity_scores"


def _md_table(rows: list[dict]) -> dg.MetadataValue:
    if not rows:
        return dg.MetadataValue.md("(none)")
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        lines.append("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()) + " |")
    return dg.MetadataValue.md("\n".join(lines))


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
            "positive_rate": _md_table(rows),
        }

    return materialize_group_table(context, spark, lake, LABELS_TABLE, compute, summarize)


# -- training -----------------------------------------------------------------------------


class TrainingConfig(dg.Config):
    """Training window and the hyperparameter search space (CONTRACTS §7).

    Every list is a dimension of the grid; `max_trials` permutations are sampled.
    """

    history_weeks: int = 30
    num_leaves: list[int] = [15, 31, 63]
    learning_rate: list[float] = [0.03, 0.08]
    min_child_samples: list[int] = [50, 200]
    feature_fraction: list[float] = [0.7, 1.0]
    lambda_l2: list[float] = [0.0, 5.0]
    balance_classes: list[bool] = [False, True]
    max_trials: int = 6
    max_rounds: int = 1500
    early_stopping_rounds: int = 50
    selection_metric: str = "average_precision"
    seed: int = 42

    def space(self) -> M.SearchSpace:
        fields = M.SearchSpace.__dataclass_fields__
        return M.SearchSpace(**{name: getattr(self, name) for name in fields})


def training_frame(lake: Lake, group: str, dates: list[date]) -> pd.DataFrame:
    """Point-in-time join of features and labels at `dates` for one group, from the lake."""
    needed = {
        "household_features": {},
        "group_features": {"product_group": group},
        LABELS_TABLE: {"product_group": group},
    }
    missing = [
        f"{table}[{d}{'|' + group if spec else ''}]"
        for table, spec in needed.items()
        for d in dates
        if not lake.exists(table, {"as_of": str(d), **spec})
    ]
    if missing:
        raise dg.Failure(
            f"Training data for product group {group!r} is missing {len(missing)} lake partition(s), e.g. "
            f"{', '.join(missing[:4])}. Backfill household_features, group_features and "
            f"propensity_labels for {min(dates)}..{max(dates)} first (see README, 'Materializing from the CLI')."
        )
    when = ds.field("as_of").isin([str(d) for d in dates])
    household = lake.read_pandas("household_features", filters=when)
    grp = lake.read_pandas("group_features", filters=when & (ds.field("product_group") == group))
    labels = lake.read_pandas(LABELS_TABLE, filters=when & (ds.field("product_group") == group))
    frame = M.feature_matrix(household, grp.drop(columns=["product_group"]))
    return frame.merge(labels[["as_of", "household_id", "label"]], on=M.KEYS, how="inner", validate="one_to_one")


def _code_version() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=settings.PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = "unknown"
    return f"propensity_assets {getattr(propensity_assets, '__version__', '0.1.0')} git {sha}"


def _signature(features: list[str]) -> ModelSignature:
    inputs = [ColSpec("long", "household_id"), ColSpec("string", "as_of")]
    inputs += [ColSpec("double", name, required=False) for name in features]
    outputs = [ColSpec("long", "household_id"), ColSpec("string", "as_of"), ColSpec("double", "score")]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def train_and_register(
    lake: Lake, mlflow_res: MlflowResource, group: str, cutoff: date, config: TrainingConfig, run_tags: dict
) -> dict:
    """Train one group's model at `cutoff`, log it to MLflow and register a new version."""
    earliest = date.fromisoformat(settings.as_of_start())
    train_dates, valid_dates = M.snapshot_dates(cutoff, config.history_weeks)
    train_dates = [d for d in train_dates if d > earliest]
    if not train_dates:
        raise dg.Failure(f"cutoff {cutoff}: no training snapshot falls after the first as_of {earliest}")
    frame = training_frame(lake, group, train_dates + valid_dates)
    train_df = frame[frame["as_of"].isin([str(d) for d in train_dates])]
    valid_df = frame[frame["as_of"].isin([str(d) for d in valid_dates])]
    started = time.perf_counter()
    trained = M.train(train_df, valid_df, config.space())
    train_seconds = time.perf_counter() - started
    valid_scores = trained.predict(valid_df)
    baselines = {
        name: M.evaluate(valid_df["label"], scores) for name, scores in M.baseline_scores(valid_df).items()
    }
    name = registry.model_name("propensity", group)
    window = {
        "cutoff": str(cutoff),
        "train_as_of_min": str(min(train_dates)),
        "train_as_of_max": str(max(train_dates)),
        "validation_as_of": ",".join(str(d) for d in valid_dates),
        "train_snapshots": len(train_dates),
    }
    client = mlflow_res.client()
    experiment_id = mlflow_res.experiment_id(EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{group} @ {cutoff}") as run:
        mlflow.set_tags({"product_group": group, "code_version": _code_version(), **window, **run_tags})
        mlflow.log_params({f"best.{k}": v for k, v in trained.params.items() if k not in ("metric",)})
        mlflow.log_params({"best_iteration": trained.best_iteration, "train_rows": len(train_df), "valid_rows": len(valid_df)})
        mlflow.log_param("search_space", json.dumps(config.space().__dict__, default=str)[:6000])
        mlflow.log_metrics({f"valid_{k}": v for k, v in trained.validation_metrics.items() if np.isfinite(v)})
        mlflow.log_metric("train_seconds", train_seconds)
        for base, metrics in baselines.items():
            mlflow.log_metrics({f"baseline_{base}_{k}": v for k, v in metrics.items() if k in ("roc_auc", "average_precision")})
        for fname, fig in M.plots(valid_df["label"].to_numpy(), valid_scores, trained.booster, trained.features, group).items():
            mlflow.log_figure(fig, f"plots/{fname}")
        mlflow.log_dict({"features": trained.features}, "features.json")
        mlflow.log_table(trained.trials, "search/trials.json")
        with tempfile.TemporaryDirectory() as tmp:
            booster_path = Path(tmp) / "booster.txt"
            trained.booster.save_model(str(booster_path), num_iteration=trained.best_iteration)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=PropensityModel(),
                artifacts={"booster": str(booster_path)},
                model_config={
                    "features": trained.features,
                    "product_group": group,
                    "best_iteration": trained.best_iteration,
                    "lake_uri": lake.root,
                },
                code_paths=[str(Path(propensity_assets.__file__).parent)],
                signature=_signature(trained.features),
                input_example=valid_df[["household_id", "as_of"]].head(3).reset_index(drop=True),
                registered_model_name=name,
                pip_requirements=["lightgbm", "pandas<3", "pyarrow", "mlflow"],
            )
        version = str(info.registered_model_version)
        for key, value in {**window, "valid_average_precision": trained.validation_metrics["average_precision"],
                           "valid_roc_auc": trained.validation_metrics["roc_auc"]}.items():
            client.set_model_version_tag(name, version, key, str(value))
    return {
        "model_name": name,
        "version": version,
        "run_id": run.info.run_id,
        "experiment_id": experiment_id,
        "metrics": trained.validation_metrics,
        "baselines": baselines,
        "best_iteration": trained.best_iteration,
        **window,
    }


def _run_url(mlflow_res: MlflowResource, experiment_id: str, run_id: str) -> str:
    base = mlflow_res.tracking_uri if mlflow_res.tracking_uri.startswith("http") else "http://localhost:5000"
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


@dg.asset(
    group_name="propensity",
    partitions_def=cutoff_group_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"lightgbm", "mlflow"},
    deps=["household_features", "group_features", LABELS_TABLE],
    description=(
        "One LightGBM propensity model per product group, trained weekly at a cutoff. The "
        "training set joins features and labels at weekly as_of snapshots whose label windows "
        "end by the cutoff; the latest snapshot validates (time-based) with early stopping; the "
        "declared search space picks the hyperparameters. Logged to MLflow (params, metrics, "
        "ROC/PR/calibration/importance plots, feature list, signature, training window, code "
        "version) and registered as a new version of `propensity__<group>`."
    ),
)
def propensity_model(
    context: dg.AssetExecutionContext, config: TrainingConfig, lake: LakeResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    results = []
    for key in requested_keys(context):
        cutoff, group = split_key(key)
        context.log.info(f"training propensity__{group} at cutoff {cutoff}")
        out = train_and_register(
            lake.lake, mlflow, group, date.fromisoformat(cutoff), config, {"dagster_run_id": context.run.run_id}
        )
        results.append(out)
    metadata: dict = {
        "models": _md_table(
            [
                {
                    "group": r["model_name"], "version": r["version"], "cutoff": r["cutoff"],
                    "valid_auc": r["metrics"]["roc_auc"], "valid_ap": r["metrics"]["average_precision"],
                    "recency_auc": r["baselines"]["recency"]["roc_auc"], "best_iteration": r["best_iteration"],
                }
                for r in results
            ]
        )
    }
    if len(results) == 1:
        r = results[0]
        metadata.update(
            {
                "model_name": r["model_name"],
                "model_version": r["version"],
                "mlflow_run": dg.MetadataValue.url(_run_url(mlflow, r["experiment_id"], r["run_id"])),
                "mlflow_run_id": r["run_id"],
                "training_window": f"{r['train_as_of_min']} .. {r['train_as_of_max']} (validation {r['validation_as_of']})",
                **{f"valid_{k}": float(v) for k, v in r["metrics"].items() if k != "rows"},
            }
        )
    else:
        for r in results:
            metadata[f"{r['model_name']}.version"] = r["version"]
            metadata[f"{r['model_name']}.valid_roc_auc"] = float(r["metrics"]["roc_auc"])
            metadata[f"{r['model_name']}.valid_average_precision"] = float(r["metrics"]["average_precision"])
            metadata[f"{r['model_name']}.mlflow_run"] = dg.MetadataValue.url(
                _run_url(mlflow, r["experiment_id"], r["run_id"])
            )
    return dg.MaterializeResult(metadata=metadata)


# -- vetting and promotion ----------------------------------------------------------------


class VettingConfig(dg.Config):
    """The rule a new version must pass to become challenger, and whether to promote it."""

    metric: str = "average_precision"
    # The candidate must reach champion's metric minus this tolerance.
    tolerance: float = 0.0
    auto_promote: bool = settings.auto_promote()


def _candidate_version(client, name: str, cutoff: str):
    versions = [v for v in client.search_model_versions(f"name='{name}'") if v.tags.get("cutoff") == cutoff]
    if not versions:
        raise dg.Failure(f"No version of {name} was trained at cutoff {cutoff}: materialize propensity_model[{cutoff}|…] first")
    return max(versions, key=lambda v: int(v.version))


def _validation_scores(lake: Lake, name: str, version: str, group: str, dates: list[date]):
    frame = training_frame(lake, group, dates)
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    scores = model.predict(frame)["score"].to_numpy()
    return frame, scores


def vet(lake: Lake, mlflow_res: MlflowResource, group: str, cutoff: str, config: VettingConfig) -> dict:
    """Evaluate the cutoff's new version against the champion on the same held-out window."""
    client = mlflow_res.client()
    name = registry.model_name("propensity", group)
    candidate = _candidate_version(client, name, cutoff)
    dates = [date.fromisoformat(d) for d in candidate.tags["validation_as_of"].split(",")]
    frame, cand_scores = _validation_scores(lake, name, candidate.version, group, dates)
    y = frame["label"].to_numpy()
    cand = M.evaluate(y, cand_scores)
    baselines = {k: M.evaluate(y, v) for k, v in M.baseline_scores(frame).items()}
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    champ = None
    metric = config.metric
    beaten = [b for b, m in baselines.items() if not (cand["roc_auc"] > m["roc_auc"] and cand["average_precision"] > m["average_precision"])]
    if champion is not None and champion.version == candidate.version:
        decision, reason = "champion", f"version {candidate.version} is already the champion"
    elif beaten:
        decision, reason = "rejected", f"does not beat the naive baseline(s) {beaten} on ROC AUC and average precision"
    elif champion is None:
        registry.promote(client, name, candidate.version, "first version to pass vetting", by="vetting")
        decision, reason = "champion", "no champion existed; first version that beats the baselines"
    else:
        _, champ_scores = _validation_scores(lake, name, champion.version, group, dates)
        champ = M.evaluate(y, champ_scores)
        if cand[metric] >= champ[metric] - config.tolerance:
            client.set_registered_model_alias(name, registry.CHALLENGER, candidate.version)
            reason = f"{metric} {cand[metric]:.4f} ≥ champion v{champion.version} {champ[metric]:.4f} − {config.tolerance}"
            if config.auto_promote:
                registry.promote(client, name, candidate.version, f"auto-promoted: {reason}", by="vetting")
                decision = "champion"
            else:
                decision = "challenger"
        else:
            decision = "rejected"
            reason = f"{metric} {cand[metric]:.4f} < champion v{champion.version} {champ[metric]:.4f} − {config.tolerance}"
    tags = {
        "vetting.decision": decision,
        "vetting.reason": reason,
        "vetting.metric": metric,
        f"vetting.candidate_{metric}": f"{cand[metric]:.6f}",
    }
    if champ is not None:
        tags["vetting.champion_version"] = str(champion.version)
        tags[f"vetting.champion_{metric}"] = f"{champ[metric]:.6f}"
    for key, value in tags.items():
        client.set_model_version_tag(name, candidate.version, key, value)
    current = registry.version_by_alias(client, name, registry.CHAMPION)
    return {
        "model_name": name,
        "candidate_version": str(candidate.version),
        "decision": decision,
        "reason": reason,
        "candidate": cand,
        "champion_before": None if champion is None else str(champion.version),
        "champion_metrics": champ,
        "champion_now": None if current is None else str(current.version),
    }


@dg.asset(
    group_name="propensity",
    partitions_def=cutoff_group_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"mlflow"},
    deps=[propensity_model],
    description=(
        "Vets the cutoff's new model version against the current `champion` on the same "
        "held-out window. It must beat both naive baselines; then it becomes `challenger` "
        "when at least as good as the champion by the configured rule, and `champion` when "
        "auto_promote is on or no champion exists. A loser is tagged with the reason. "
        "Decisions are MLflow tags (vetting.*) and metadata here."
    ),
)
def propensity_champion(
    context: dg.AssetExecutionContext, config: VettingConfig, lake: LakeResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    results = [vet(lake.lake, mlflow, *reversed(split_key(key)), config) for key in requested_keys(context)]
    rows = [
        {
            "model": r["model_name"], "candidate": r["candidate_version"], "decision": r["decision"],
            "champion": r["champion_now"], f"candidate_{config.metric}": r["candidate"][config.metric],
            "reason": r["reason"],
        }
        for r in results
    ]
    metadata = {"decisions": _md_table(rows), "auto_promote": config.auto_promote}
    if len(results) == 1:
        r = results[0]
        metadata.update(
            model_name=r["model_name"], model_version=r["candidate_version"], decision=r["decision"],
            reason=r["reason"], champion_version=str(r["champion_now"]),
        )
    return dg.MaterializeResult(metadata=metadata)


# -- scoring ------------------------------------------------------------------------------


class NoChampionError(dg.Failure):
    pass


def load_champion(mlflow_res: MlflowResource, group: str):
    client = mlflow_res.client()
    name = registry.model_name("propensity", group)
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    if champion is None:
        raise NoChampionError(
            f"No champion for {name}: train and vet one with the weekly training job "
            f"(`dagster asset materialize -m propensity_assets.definitions --select propensity_model,propensity_champion "
            f"--partition '<cutoff>|{group}'`) or promote an existing version with "
            f"`propensity-assets promote {group} <version>`."
        )
    return champion, mlflow.pyfunc.load_model(f"models:/{name}@{registry.CHAMPION}")


def score_distribution(scores: pd.Series) -> dict:
    bands = pd.cut(scores, np.linspace(0, 1, 11), include_lowest=True, labels=[f"{i / 10:.1f}-{(i + 1) / 10:.1f}" for i in range(10)])
    share = bands.value_counts(normalize=True, sort=False)
    return {"mean": float(scores.mean()), "p10": float(scores.quantile(0.1)), "p50": float(scores.median()),
            "p90": float(scores.quantile(0.9)), "share_by_probability_decile": {str(k): round(float(v), 4) for k, v in share.items()}}


@dg.asset(
    group_name="propensity",
    partitions_def=as_of_group_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"mlflow", "parquet"},
    deps=["household_features", "group_features"],
    description=(
        "Scores every household in the population with `models:/propensity__<group>@champion`, "
        "which looks up its features in the lake. Lake table `propensity_scores/as_of=/product_group=` "
        "with household_id, score (a probability), model_name, model_version. Fails with how to "
        "get a champion when there is none."
    ),
)
def propensity_scores(context: dg.AssetExecutionContext, lake: LakeResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    pairs = sorted({split_key(key) for key in requested_keys(context)})
    frames, summary = [], []
    for group in sorted({g for _, g in pairs}):
        champion, model = load_champion(mlflow, group)
        dates = [d for d, g in pairs if g == group]
        ids = lake.lake.read_pandas(
            "household_features", filters=ds.field("as_of").isin(dates), columns=["household_id", "as_of"]
        )
        scored = model.predict(ids)
        scored["product_group"] = group
        scored["model_name"] = champion.name
        scored["model_version"] = str(champion.version)
        frames.append(scored)
        dist = score_distribution(scored["score"])
        summary.append({"group": group, "version": str(champion.version), "rows": len(scored), "mean_score": dist["mean"], "p90": dist["p90"]})
    scores = pd.concat(frames, ignore_index=True)
    missing = [d for d in sorted({d for d, _ in pairs}) if d not in set(scores["as_of"])]
    if missing:
        raise dg.Failure(f"household_features has no partition for as_of {missing}: materialize the features first")
    specs = [{"as_of": d, "product_group": g} for d, g in pairs]
    written = lake.lake.write_pandas(
        SCORES_TABLE,
        scores[["as_of", "product_group", "household_id", "score", "model_name", "model_version"]],
        ["as_of", "product_group"],
        specs,
    )
    dist = score_distribution(scores["score"])
    metadata = {
        "rows": len(scores),
        "households": int(scores["household_id"].nunique()),
        "partitions_written": written,
        "as_of_min": min(d for d, _ in pairs),
        "as_of_max": max(d for d, _ in pairs),
        "models": _md_table(summary),
        "score_mean": dist["mean"],
        "score_p10": dist["p10"],
        "score_p50": dist["p50"],
        "score_p90": dist["p90"],
        "share_by_probability_decile": dg.MetadataValue.json(dist["share_by_probability_decile"]),
    }
    if len(summary) == 1:
        metadata.update(model_name=f"propensity__{summary[0]['group']}", model_version=str(summary[0]["version"]))
    return dg.MaterializeResult(metadata=metadata)
