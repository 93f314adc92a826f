"""The Dagster side of the shared lifecycle: one factory makes a stage's model, champion,
scores and decay assets, its training job, and its rescore and retrain sensors."""

import dataclasses
import json
import typing
import warnings
from dataclasses import dataclass
from datetime import date

import dagster as dg
import pydantic

from propensity_assets.lifecycle import checks as quality
from propensity_assets.shared.checks import partition, population_drops
from propensity_assets.shared import registry, settings, tables
from propensity_assets.lifecycle import vetting
from propensity_assets.lifecycle.stage import ModelStage
from propensity_assets.shared.metadata import md_figure, md_table, mlflow_run_url
from propensity_assets.shared.retries import SPARK_AND_TRAINING
from propensity_assets.shared.partitions import (
    as_of_group_partitions,
    cutoff_group_partitions,
    product_group_partitions,
    requested_keys,
    split_key,
)
from propensity_assets.shared.resources import LakeResource, MlflowResource
from dagster_pyspark import PySparkResource

warnings.filterwarnings("ignore", category=dg.BetaWarning)

FEATURE_DEPS = [tables.HOUSEHOLD_FEATURES, tables.GROUP_FEATURES]


class TrainingConfig(dg.Config):
    """What every stage's training shares; a stage's config adds its search space."""

    history_weeks: int = 30
    seed: int = 42
    # The most training rows (household × snapshot) read to the driver; above it, households
    # are sampled, stratified by label (`frames.TrainingSample`). PROPENSITY_TRAINING_MAX_ROWS.
    max_training_rows: int = settings.training_max_rows()
    # Refit the champion's selected configuration on this cutoff's snapshots instead of
    # searching the space (the cheap periodic retrain): its `best.*` MLflow params pin each
    # search dimension they name to that one value. Without a champion, the space is searched.
    from_champion: bool = False


def search_config(name: str, space: type, doc: str, **defaults) -> type[TrainingConfig]:
    """A stage's launchpad config: `TrainingConfig` plus every field of the search-space
    dataclass `space` (with its defaults, or `defaults`); `.space()` builds the dataclass.
    The stage declares its space once, as plain data its model code reads."""
    hints = typing.get_type_hints(space)
    base = space()
    fields = {f.name: (hints[f.name], getattr(base, f.name)) for f in dataclasses.fields(space)}
    fields.update({key: (fields[key][0] if key in fields else type(value), value) for key, value in defaults.items()})

    def build(self):
        return space(**{f.name: getattr(self, f.name) for f in dataclasses.fields(space)})

    config = pydantic.create_model(name, __base__=TrainingConfig, __doc__=doc, **fields)
    config.space = build
    return config


class VettingConfig(dg.Config):
    """The rule a new version must pass to become challenger, and whether to promote it.

    `metric` empty means the stage's default (average precision for propensity, RMSE for LTV).
    """

    metric: str = ""
    # Relative to nothing: the candidate must reach the champion's metric minus this
    # (plus, when lower is better).
    tolerance: float = 0.0
    # On the vetting metric, a candidate that does not beat a baseline is rejected only when a
    # paired bootstrap over the vetting snapshot's households finds it worse with this
    # confidence; 0: it must beat the baseline. Empty: the stage's (0 propensity, 0.95 LTV).
    baseline_confidence: typing.Optional[float] = None
    auto_promote: bool = settings.auto_promote()


class DecayConfig(dg.Config):
    """How the error-over-time curve is built, and when a champion counts as degraded."""

    metric: str = ""
    # Relative degradation from the value at training that calls for retraining.
    tolerance: float = 0.03
    step_days: int = 1
    versions: int = 3


def require_registry(mlflow: MlflowResource) -> None:
    """Fail the run at once, naming the URI, when the MLflow server does not answer: every
    group would otherwise wait out MLflow's retries (minutes) before failing the same way."""
    try:
        registry.check_reachable(mlflow.tracking_uri)
    except registry.RegistryUnreachable as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None


def rule_for(stage: ModelStage, config: VettingConfig) -> vetting.VettingRule:
    metric = config.metric or stage.metric
    if metric not in stage.higher_is_better:
        raise dg.Failure(f"vetting metric {metric!r} is not a {stage.name} metric; expected one of {sorted(stage.higher_is_better)}",
                         allow_retries=False)
    confidence = stage.baseline_confidence if config.baseline_confidence is None else config.baseline_confidence
    if not 0 <= confidence < 1:
        raise dg.Failure(f"vetting baseline_confidence {confidence} is not a probability in [0, 1): 0.95 rejects a "
                         f"candidate only when it is worse than a baseline with 95 % confidence, 0 requires beating it",
                         allow_retries=False)
    return vetting.VettingRule(
        metric=metric,
        higher_is_better=stage.higher_is_better[metric],
        tolerance=config.tolerance,
        baseline_metrics=stage.baseline_metrics,
        baseline_confidence=confidence,
        auto_promote=config.auto_promote,
        directions=stage.higher_is_better,
    )


@dataclass
class StageDefs:
    assets: list
    jobs: list
    sensors: list

    def definitions(self) -> dg.Definitions:
        return dg.Definitions(assets=self.assets, jobs=self.jobs, sensors=self.sensors)


def stage_definitions(stage: ModelStage, training_config: type, decay_step_days: int) -> StageDefs:
    """The model → champion → scores → decay assets of one stage, its weekly training job,
    and the sensors that rescore on promotion and retrain on decay."""
    model_key, champion_key, scores_key, decay_key = (
        f"{stage.name}_model", f"{stage.name}_champion", f"{stage.name}_scores", f"{stage.name}_decay"
    )

    @dg.asset(
        name=model_key,
        group_name=stage.name,
        partitions_def=cutoff_group_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=SPARK_AND_TRAINING,
        kinds={"mlflow"},
        tags={"lifecycle/step": "train"},
        deps=[*FEATURE_DEPS, stage.labels_table],
        description=(
            f"One {stage.title} model per product group, trained at a weekly cutoff. Training joins features "
            f"and labels at weekly as_of snapshots before the vetting snapshot (the latest one whose label "
            f"window closes by the cutoff); a household-grouped 20 % of their rows chooses among the declared "
            f"search space's trials; the vetting snapshot is left for comparing with the champion. Logged to "
            f"MLflow (params, trials, metrics, plots, features, signature, window, code version) and registered "
            f"as a new version of `{stage.name}__<group>`."
        ),
    )
    def model_asset(context: dg.AssetExecutionContext, config: training_config, lake: LakeResource, mlflow: MlflowResource):
        from propensity_assets.lifecycle.training import train_and_register

        require_registry(mlflow)

        results, failures = [], {}
        for key in requested_keys(context):
            cutoff, group = split_key(key)
            context.log.info(f"training {stage.model_name(group)} at cutoff {cutoff}")
            try:
                results.append(train_and_register(
                    stage, lake.lake, mlflow, group, date.fromisoformat(cutoff), config,
                    {"dagster_run_id": context.run.run_id},
                ))
            except Exception as exc:  # one group's failure must not stop the others
                context.log.error(f"{stage.model_name(group)} at {cutoff}: {type(exc).__name__}: {exc}")
                failures[key] = f"{type(exc).__name__}: {exc}"
        m = stage.metric
        rows = [
            {
                "model": r.model_name, "version": r.version, "cutoff": str(r.plan.cutoff), "search": r.search,
                f"holdout_{m}": r.holdout_metrics[m],
                **{f"{b}_{m}": v[m] for b, v in r.holdout_baselines.items()},
                "train_rows": r.train_rows, "rows_available": r.sample.rows_available, "sampled": r.sample.sampled,
                "seconds": round(r.train_seconds, 1),
            }
            for r in results
        ]
        if failures and not results:
            raise dg.Failure("every model failed to train:\n" + "\n".join(f"{k}: {v}" for k, v in failures.items()),
                             allow_retries=False)
        metadata = {"models": md_table(rows), "failed": md_table([{"partition": k, "error": v} for k, v in failures.items()])}
        for r in results:
            prefix = "" if len(results) == 1 else f"{r.model_name}."
            metadata[f"{prefix}mlflow_run"] = dg.MetadataValue.url(mlflow_run_url(mlflow.tracking_uri, r.experiment_id, r.run_id))
        if len(results) == 1:
            r = results[0]
            metadata.update(
                model_name=r.model_name, model_version=r.version, mlflow_run_id=r.run_id, search=r.search,
                training_window=f"{min(r.plan.train)} .. {max(r.plan.train)} (vetting snapshot {r.plan.vetting})",
                **{f"holdout_{k}": float(v) for k, v in r.holdout_metrics.items()},
                **{f"selection_{k}": float(v) for k, v in r.selection_metrics.items()},
                trials=md_table(r.trials.to_dict("records")),
                **r.sample.params(),
                training_sample=md_table([{"stratum": k, **v} for k, v in r.sample.strata.items()]),
                **{report: md_table(table.to_dict("records")) for report, table in r.reports.items()},
            )
        if failures:
            raise dg.Failure(
                f"{len(failures)} of {len(failures) + len(results)} models failed (the others were registered):\n"
                + "\n".join(f"{k}: {v}" for k, v in failures.items()),
                metadata=metadata,
                allow_retries=False,  # a retry would register the other groups' models twice
            )
        return dg.MaterializeResult(metadata=metadata)

    @dg.asset(
        name=champion_key,
        group_name=stage.name,
        partitions_def=cutoff_group_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=SPARK_AND_TRAINING,
        kinds={"mlflow"},
        tags={"lifecycle/step": "vet"},
        deps=[model_key],
        description=(
            f"Vets the cutoff's new `{stage.name}__<group>` version against the `champion` on the candidate's "
            "vetting snapshot, which neither was fitted on (a snapshot not later than the champion's training "
            "data is refused). It must beat every naive baseline; then it becomes `challenger` when at least as "
            "good as the champion by the rule, and `champion` when auto_promote is on or none exists. Decisions "
            "are MLflow tags (vetting.*) and metadata here."
        ),
    )
    def champion_asset(context: dg.AssetExecutionContext, config: VettingConfig, lake: LakeResource, mlflow: MlflowResource):
        from propensity_assets.lifecycle.promotion import vet

        require_registry(mlflow)

        rule = rule_for(stage, config)
        rows, results = [], []
        for key in requested_keys(context):
            cutoff, group = split_key(key)
            try:
                r = vet(stage, lake.lake, mlflow, group, cutoff, rule)
            except Exception as exc:
                rows.append({"model": stage.model_name(group), "candidate": "", "decision": "error", "champion": "",
                             "vetting_as_of": "", rule.metric: "", "reason": f"{type(exc).__name__}: {exc}"})
                continue
            results.append(r)
            rows.append({
                "model": r.model_name, "candidate": r.candidate_version, "decision": r.decision,
                "champion": str(r.champion_now), "vetting_as_of": r.vetting_as_of,
                rule.metric: r.candidate[rule.metric], "reason": r.reason,
            })
        metadata = {"decisions": md_table(rows), "metric": rule.metric, "auto_promote": rule.auto_promote}
        if len(results) == 1:
            r = results[0]
            metadata.update(model_name=r.model_name, model_version=r.candidate_version, decision=r.decision,
                            reason=r.reason, champion_version=str(r.champion_now))
        if not results:
            raise dg.Failure("no candidate could be vetted:\n" + "\n".join(f"{r['model']}: {r['reason']}" for r in rows),
                             allow_retries=False)
        return dg.MaterializeResult(metadata=metadata)

    @dg.asset(
        name=scores_key,
        group_name=stage.name,
        partitions_def=as_of_group_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=SPARK_AND_TRAINING,
        kinds={"mlflow", "spark", "parquet"},
        deps=FEATURE_DEPS,
        check_specs=[quality.SCORES_VALID.spec(scores_key)],
        tags={
            "lifecycle/step": "score",
            "profile/prefix": stage.profile.prefix,
            "profile/table": stage.scores_table,
            "profile/value_column": stage.profile.value_column,
        },
        description=(
            f"Scores every household of the population with `models:/{stage.name}__<group>@champion`, on "
            f"features from this run's lake. Lake table `{stage.scores_table}/as_of=/product_group=` with "
            f"household_id, {stage.score_column}, model_name, model_version. A group without a champion, or an "
            "as_of not later than the champion's training snapshots (in-sample), or features whose population "
            "fell from the previous as_of (the `population` check), is skipped with a warning; the other groups "
            "are scored. Scored on Spark: the features are read by the executors, the champion travels to them "
            "with the plan and predicts per Arrow batch, and Spark writes the scores; the counts, distribution, "
            "decile means and the `scores_valid` check are Spark aggregates, nothing is collected on the driver."
        ),
    )
    def scores_asset(
        context: dg.AssetExecutionContext, spark: PySparkResource, lake: LakeResource, mlflow: MlflowResource
    ):
        from propensity_assets.lifecycle.scoring import score_pairs, spark_summaries

        require_registry(mlflow)

        pairs = sorted({split_key(key) for key in requested_keys(context)})
        dropped = population_drops(lake.lake, tables.GROUP_FEATURES, pairs)
        scored = score_pairs(spark.spark_session, stage, lake.lake, mlflow, [p for p in pairs if p not in dropped])
        try:
            invalid = scored.invalid
            scored.skipped.update({"|".join(k): v for k, v in {**dropped, **invalid}.items()})
            check = quality.SCORES_VALID.result(
                [{**partition(k), "problem": v} for k, v in sorted(invalid.items())],
                len(pairs),
            )
            for key, why in scored.skipped.items():
                context.log.warning(f"{scores_key}[{key}] skipped: {why}")
            if scored.frame is None:
                if invalid:
                    yield check
                raise dg.Failure(
                    f"nothing scored; {len(scored.skipped)} partition(s) skipped:\n"
                    + "\n".join(f"{k}: {v}" for k, v in scored.skipped.items()),
                    allow_retries=False,
                )
            specs = [{"as_of": d, "product_group": g} for d, g in pairs if (d, g) in scored.counts]
            written = lake.write_spark(stage.scores_table, scored.frame, specs)
            summary = spark_summaries(scored.frame, stage.score_column)[None]
            per_group = spark_summaries(scored.frame, stage.score_column, by="product_group")
            households = scored.frame.select("household_id").distinct().count()
        finally:
            scored.release()
        models = [{**m, **per_group[m["group"]]["distribution"]} for m in scored.models]
        metadata = {
            "rows": sum(scored.counts.values()),
            "households": households,
            "partitions_written": written,
            "as_of_min": min(d for d, _ in pairs),
            "as_of_max": max(d for d, _ in pairs),
            "models": md_table(models),
            **{f"{stage.score_column}_{k}": v for k, v in summary["distribution"].items()},
            "mean_by_decile": dg.MetadataValue.json(summary["mean_by_decile"]),
            "skipped": md_table([{"partition": k, "reason": v} for k, v in scored.skipped.items()]),
            "skipped_count": len(scored.skipped),
        }
        if len(scored.models) == 1:
            metadata.update(model_name=stage.model_name(scored.models[0]["group"]), model_version=scored.models[0]["version"])
        yield dg.MaterializeResult(metadata=metadata, check_results=[check])

    @dg.asset(
        name=decay_key,
        group_name=stage.name,
        partitions_def=product_group_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=SPARK_AND_TRAINING,
        kinds={"mlflow", "parquet"},
        deps=[champion_key, stage.labels_table],
        description=(
            f"Error over time: the champion's and recent versions' metric at every later as_of whose label "
            f"window has closed, by model age (days since the cutoff). The plot is the decay curve; "
            f"`retraining_interval_days` is the age at which the champion's metric degrades past the tolerance "
            f"from its value at training. Lake table `{decay_key}/product_group=`; the retrain sensor reads it."
        ),
    )
    def decay_asset(context: dg.AssetExecutionContext, config: DecayConfig, lake: LakeResource, mlflow: MlflowResource):
        from propensity_assets.lifecycle.monitoring import decay_curves, decay_figure, retraining_interval

        require_registry(mlflow)

        metric = config.metric or stage.metric
        step = config.step_days if config.step_days > 0 else decay_step_days
        rows, figures, failures = [], {}, {}
        for group in requested_keys(context):
            try:
                curves = decay_curves(stage, lake.lake, mlflow, group, metric, config.tolerance, step, config.versions)
            except Exception as exc:  # one group's failure must not stop the others
                failures[group] = f"{type(exc).__name__}: {exc}"
                continue
            if curves.empty:
                failures[group] = f"{stage.model_name(group)} has no version trained by the lifecycle"
                continue
            lake.lake.write_pandas(decay_key, curves.assign(product_group=group), ["product_group"], [{"product_group": group}])
            champion = curves[curves["is_champion"]].sort_values("as_of")
            latest = None if champion.empty else champion.iloc[-1]
            interval = retraining_interval(curves)
            rows.append({
                "group": group,
                "versions": ", ".join(sorted(set(curves["model_version"]), key=int)),
                "champion": "none" if latest is None else str(latest["model_version"]),
                "champion_at_training": float("nan") if latest is None else float(latest["at_training"]),
                "champion_latest": float("nan") if latest is None else float(latest["value"]),
                "champion_age_days": -1 if latest is None else int(latest["age_days"]),
                "degraded": bool(latest is not None and latest["degraded"]),
                "retraining_interval_days": "not reached" if interval is None else str(interval),
            })
            figures[group] = decay_figure(curves, f"{stage.model_name(group)}: {metric} by age")
        if not rows:
            raise dg.Failure("no decay curve could be built:\n" + "\n".join(f"{k}: {v}" for k, v in failures.items()),
                             allow_retries=False)
        metadata = {
            "metric": metric,
            "tolerance": config.tolerance,
            "step_days": step,
            "groups": md_table(rows),
            "failed": md_table([{"group": k, "error": v} for k, v in failures.items()]),
        }
        for group, fig in figures.items():
            metadata[f"decay_curve:{group}"] = md_figure(fig, group)
        if len(rows) == 1:
            metadata.update({k: v for k, v in rows[0].items() if k != "group"})
        return dg.MaterializeResult(metadata=metadata)

    training_job = dg.define_asset_job(
        f"{stage.name}_training_job",
        selection=[model_key, champion_key],
        description=f"Train, vet and promote {stage.title} models at a weekly cutoff × product groups.",
    )
    scoring_job = dg.define_asset_job(
        f"{stage.name}_scoring_job",
        selection=[scores_key],
        description=f"Score as_of × product groups with the {stage.title} champions.",
    )
    sensors = [rescore_sensor(stage, scoring_job), retrain_sensor(stage, training_job, decay_key)]
    return StageDefs([model_asset, champion_asset, scores_asset, decay_asset], [training_job, scoring_job], sensors)


# -- labels -------------------------------------------------------------------------------


def labels_definitions(stage: ModelStage, compute, label_error: type, description: str, schedule_minute: int):
    """A stage's label asset [as_of × product_group] (one Spark job per run, any range),
    and a daily schedule for the newest as_of whose label window has closed.

    `compute(transactions, members, as_of_dates, groups, horizon)` returns (as_of,
    product_group, household_id, label); `label_error` is what it raises for a window
    past the data, turned into a failure that names the last valid as_of.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from propensity_assets.lifecycle import automation as schedules
    from propensity_assets.features.assets import materialize_group_table, stored_partitions

    @dg.asset(
        name=stage.labels_table,
        group_name=stage.name,
        partitions_def=as_of_group_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=SPARK_AND_TRAINING,
        kinds={"spark", "parquet"},
        deps=[tables.TRANSACTIONS, tables.PRODUCT_GROUP_MEMBERS],
        check_specs=[quality.LABEL_RATE.spec(stage.labels_table)],
        description=description + f" Lake table `{stage.labels_table}/as_of=/product_group=`.",
    )
    def labels_asset(context: dg.AssetExecutionContext, spark: PySparkResource, lake: LakeResource):
        horizon = stage.horizon_days()

        def run(tx, members, as_of_dates, groups):
            try:
                return compute(tx, members, as_of_dates, groups, horizon)
            except label_error as exc:
                raise dg.Failure(str(exc), allow_retries=False) from None

        def summarize(lake, specs, written, as_of_dates, groups) -> dict:
            sums: dict[str, list] = {}  # group: [rows, label sum, positive rows]
            for spec, part in stored_partitions(lake, stage.labels_table, specs if written else [], ["label"]):
                label = pc.cast(part["label"], pa.float64())
                totals = sums.setdefault(spec["product_group"], [0, 0.0, 0])
                totals[0] += len(label)
                totals[1] += pc.sum(label).as_py() or 0.0
                totals[2] += pc.sum(pc.greater(label, 0).cast(pa.int64())).as_py() or 0
            rows = [
                {"product_group": g, "rows": n, "label_mean": total / n, "positive_share": positive / n}
                for g, (n, total, positive) in sorted(sums.items()) if n
            ]
            return {
                "rows": sum(r["rows"] for r in rows),
                "partitions_written": written,
                "horizon_days": horizon,
                "as_of_min": str(min(as_of_dates)),
                "as_of_max": str(max(as_of_dates)),
                "by_group": md_table(rows),
            }

        def checks(lake, specs, non_finite) -> list[dg.AssetCheckResult]:
            return [quality.label_rate_result(lake.lake, stage.labels_table, [tuple(s.values()) for s in specs])]

        return materialize_group_table(context, spark, lake, stage.labels_table, run, summarize, checks)

    job, schedule = schedules.labels_schedule(stage.labels_table, stage.horizon_days, minute=schedule_minute)
    return labels_asset, job, schedule


# -- sensors ------------------------------------------------------------------------------


def rescore_sensor(stage: ModelStage, job) -> dg.SensorDefinition:
    """When a group's `champion` alias moves, rescore that group for the latest as_of (and
    PROPENSITY_RESCORE_LOOKBACK_DAYS earlier dates)."""
    target_tag = f"{stage.name}/rescore"

    @dg.sensor(
        name=f"{stage.name}_rescore_sensor",
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Watches the MLflow registry. When a group's `{stage.name}__<group>@champion` is not the version that "
            "last rescored the latest as_of, requests rescoring of that group (the profile follows by its "
            "automation condition). The decision reads the instance's runs, not only the cursor, so a lost "
            "cursor never launches twice and a rollback (v1 → v2 → v1) still rescores."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext, mlflow: MlflowResource):
        from propensity_assets.lifecycle.sensors import champions_or_skip, latest_dates

        groups = context.instance.get_dynamic_partitions(product_group_partitions.name)
        champions = champions_or_skip(stage, mlflow, groups)
        if isinstance(champions, dg.SkipReason):
            return champions
        requests = []
        for group, version in champions.items():
            if version is None:
                continue
            for as_of in latest_dates():
                target = f"{group}|{as_of}"
                filters = dg.RunsFilter(tags={target_tag: target})
                last = context.instance.get_runs(filters=filters, limit=1)
                if last and last[0].tags.get(f"{stage.name}/champion_version") == version:
                    continue
                n = context.instance.get_runs_count(filters=filters) + 1
                requests.append(dg.RunRequest(
                    run_key=f"rescore:{stage.name}:{group}:{as_of}:{n}",
                    partition_key=f"{as_of}|{group}",
                    tags={target_tag: target, f"{stage.name}/champion_version": version, f"{stage.name}/trigger": "promotion"},
                ))
        cursor = json.dumps({g: v for g, v in champions.items() if v is not None}, sort_keys=True)
        if not requests:
            return dg.SensorResult(skip_reason="every champion has rescored the latest as_of", cursor=cursor)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return _sensor


def retrain_sensor(stage: ModelStage, job, decay_table: str) -> dg.SensorDefinition:
    """Request retraining of a group whose champion's live metric has degraded past the
    tolerance (from `<stage>_decay`)."""

    @dg.sensor(
        name=f"{stage.name}_retrain_sensor",
        job=job,
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Reads `{decay_table}`: when a group's champion has degraded past the decay tolerance at its newest "
            "evaluated as_of, requests training at the latest weekly cutoff. The run key names the stage, group "
            "and champion version, so one degraded champion is retrained once."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
        from propensity_assets.lifecycle.sensors import degraded_champions, latest_cutoff_key

        groups = context.instance.get_dynamic_partitions(product_group_partitions.name)
        degraded = degraded_champions(lake.lake, decay_table, groups)
        if not degraded:
            return dg.SkipReason("no champion has degraded past its tolerance")
        cutoff = latest_cutoff_key()
        return [
            dg.RunRequest(
                run_key=f"retrain:{stage.name}:{group}:v{version}",
                partition_key=f"{cutoff}|{group}",
                tags={f"{stage.name}/trigger": "decay", f"{stage.name}/degraded_version": version},
            )
            for group, version in degraded.items()
        ]

    return _sensor
