"""The Dagster side of the shared lifecycle: one factory makes a stage's model, champion,
scores and decay assets, its training and scoring jobs, and its rescore and retrain sensors
(`lifecycle.sensors`). The stage's labels come from `lifecycle.label_assets`."""

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import dagster as dg
from dagster_pyspark import PySparkResource

from propensity_assets.lifecycle import checks as quality
from propensity_assets.lifecycle.config import DecayConfig, ScoringConfig, VettingConfig, rule_for
from propensity_assets.lifecycle.sensors import rescore_sensor, retrain_sensor
from propensity_assets.lifecycle.stage import ModelStage
from propensity_assets.shared import freshness, registry, settings, tables
from propensity_assets.shared.checks import partition, population_drops
from propensity_assets.lifecycle.partition_metadata import (
    champion_partition,
    decay_partition,
    model_partition,
    score_partition,
)
from propensity_assets.shared.metadata import each_partition, lake_partition, md_table, png_bytes
from propensity_assets.shared.partitions import (
    as_of_group_partitions,
    cutoff_group_partitions,
    product_group_partitions,
    requested_keys,
    split_key,
)
from propensity_assets.shared.resources import LakeResource, MlflowResource
from propensity_assets.shared.retries import retried_asset

warnings.filterwarnings("ignore", category=dg.BetaWarning)

FEATURE_DEPS = [tables.HOUSEHOLD_FEATURES, tables.GROUP_FEATURES]


def require_registry(mlflow: MlflowResource) -> None:
    """Fail the run at once, naming the URI, when the MLflow server does not answer: every
    group would otherwise wait out MLflow's retries (minutes) before failing the same way."""
    try:
        registry.check_reachable(mlflow.tracking_uri)
    except registry.RegistryUnreachable as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None


@dataclass
class Attempt:
    """One partition key's work: its result, or the error that stopped it."""

    key: str
    result: Any = None
    error: str | None = None


def attempt_each(keys: list[str], work: Callable[[str], Any], log: Callable[[str, str], None] | None = None) -> list[Attempt]:
    """`work(key)` for each key in order; an exception is recorded (as "Type: message", also
    passed to `log`) and the next key is tried: one partition's failure must not stop the others."""
    attempts = []
    for key in keys:
        try:
            attempts.append(Attempt(key, result=work(key)))
        except Exception as exc:
            attempts.append(Attempt(key, error=f"{type(exc).__name__}: {exc}"))
            if log is not None:
                log(key, attempts[-1].error)
    return attempts


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

    def stage_asset(name: str, partitions_def: dg.PartitionsDefinition, **spec):
        """A stage asset: in the stage's group, a backfill is one run, retried like every
        Spark or training step (transient errors only: `retries.retried_asset`)."""
        return retried_asset(
            name=name,
            group_name=stage.name,
            partitions_def=partitions_def,
            backfill_policy=dg.BackfillPolicy.single_run(),
            **spec,
        )

    @stage_asset(
        model_key,
        cutoff_group_partitions,
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
        from propensity_assets.lifecycle.registration import dagster_run_alive
        from propensity_assets.lifecycle.training import train_and_register

        require_registry(mlflow)

        def train(key: str):
            cutoff, group = split_key(key)
            context.log.info(f"training {stage.model_name(group)} at cutoff {cutoff}")
            return train_and_register(
                stage, lake.lake, mlflow, group, date.fromisoformat(cutoff), config, {"dagster_run_id": context.run.run_id},
                run_alive=dagster_run_alive(context.instance),
            )

        def log(key: str, error: str) -> None:
            cutoff, group = split_key(key)
            context.log.error(f"{stage.model_name(group)} at {cutoff}: {error}")

        attempts = attempt_each(requested_keys(context), train, log)
        results = [a.result for a in attempts if a.error is None]
        failures = {a.key: a.error for a in attempts if a.error is not None}
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
        # Each partition its own model's figures (a backfill over groups is one run).
        each_partition(context, {a.key: model_partition(a.result, mlflow.tracking_uri) for a in attempts if a.error is None})
        if failures:
            raise dg.Failure(
                f"{len(failures)} of {len(failures) + len(results)} models failed (the others were registered):\n"
                + "\n".join(f"{k}: {v}" for k, v in failures.items()),
                metadata=metadata,
                allow_retries=False,  # a retry would register the other groups' models twice
            )
        return dg.MaterializeResult(metadata=metadata)

    @stage_asset(
        champion_key,
        cutoff_group_partitions,
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

        def vet_key(key: str):
            cutoff, group = split_key(key)
            return vet(stage, lake.lake, mlflow, group, cutoff, rule)

        rows, results, own = [], [], {}
        for attempt in attempt_each(requested_keys(context), vet_key):
            if attempt.error is not None:
                rows.append({"model": stage.model_name(split_key(attempt.key)[1]), "candidate": "", "decision": "error",
                             "champion": "", "vetting_as_of": "", rule.metric: "", "reason": attempt.error})
                own[attempt.key] = {"decision": "error", "reason": attempt.error}
                continue
            r = attempt.result
            results.append(r)
            own[attempt.key] = champion_partition(r, rule.metric)
            if r.passed_over:
                context.log.warning(f"{r.model_name}: version(s) {', '.join(r.passed_over)} are incomplete (registration "
                                    f"stopped before the `complete` tag) and were not vetted; vetted {r.candidate_version}")
            rows.append({
                "model": r.model_name, "candidate": r.candidate_version, "decision": r.decision,
                "champion": str(r.champion_now), "vetting_as_of": r.vetting_as_of,
                rule.metric: r.candidate[rule.metric], "reason": r.reason,
            })
        metadata = {"decisions": md_table(rows), "metric": rule.metric, "auto_promote": rule.auto_promote}
        if not results:
            raise dg.Failure("no candidate could be vetted:\n" + "\n".join(f"{r['model']}: {r['reason']}" for r in rows),
                             allow_retries=False)
        each_partition(context, own)
        return dg.MaterializeResult(metadata=metadata)

    @stage_asset(
        scores_key,
        as_of_group_partitions,
        output_required=False,
        kinds={"mlflow", "spark", "parquet"},
        deps=FEATURE_DEPS,
        check_specs=[quality.SCORES_VALID.spec(scores_key)],
        freshness_policy=freshness.daily("scores"),
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
            "fell from the previous as_of (the `population` check), or a champion whose lineage is not the model's, "
            "is skipped: not materialized, its reason an observation of the partition; the other groups are scored. "
            "Scored on Spark: the features are read by the executors, the champion travels to them with the plan "
            "and predicts per Arrow batch, and Spark writes the scores; the counts, distribution, "
            "decile means and the `scores_valid` check are Spark aggregates, nothing is collected on the driver."
        ),
    )
    def scores_asset(
        context: dg.AssetExecutionContext, config: ScoringConfig, spark: PySparkResource, lake: LakeResource,
        mlflow: MlflowResource,
    ):
        from propensity_assets.lifecycle.scoring import score_pairs, spark_summaries

        require_registry(mlflow)

        pairs = sorted({split_key(key) for key in requested_keys(context)})
        tolerance = settings.population_drop_tolerance(config.population_drop_tolerance)
        dropped = population_drops(lake.lake, tables.GROUP_FEATURES, pairs, tolerance)
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
                # Not materialized: the skip and its reason are an observation of that partition.
                yield dg.AssetObservation(scores_key, partition=key, metadata={"skipped": why})
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
            # Each partition's own distribution and decile means (one Spark aggregate).
            from pyspark.sql import functions as F

            keyed = scored.frame.withColumn("partition_key", F.concat_ws("|", "as_of", "product_group"))
            per_partition = spark_summaries(keyed, stage.score_column, by="partition_key")
        finally:
            scored.release()
        metadata = {
            "run_rows": sum(scored.counts.values()),
            "partitions_written": written,
            "as_of_min": min(d for d, _ in pairs),
            "as_of_max": max(d for d, _ in pairs),
            "models": md_table(scored.models),
            "skipped": md_table([{"partition": k, "reason": v} for k, v in scored.skipped.items()]),
            "skipped_count": len(scored.skipped),
        }
        versions = {m["group"]: m["version"] for m in scored.models}
        yield check
        # One materialization per partition written (the output is never yielded: it would
        # record every requested partition as materialized, the skipped ones too), with
        # that partition's own figures.
        for (d, g) in sorted(scored.counts):
            yield dg.AssetMaterialization(scores_key, partition=f"{d}|{g}", metadata={
                **metadata,
                **score_partition(stage, per_partition[f"{d}|{g}"], versions[g], g),
                **lake_partition(lake.lake, stage.scores_table, {"as_of": d, "product_group": g}),
            })

    @stage_asset(
        decay_key,
        product_group_partitions,
        kinds={"mlflow", "parquet"},
        deps=[champion_key, stage.labels_table],
        tags={"lifecycle/step": "monitor"},
        description=(
            f"Error over time: the champion's and recent versions' metric at every as_of from their cutoff on "
            f"whose label window has closed, by model age ≥ 0 (days since the cutoff; never a snapshot a version "
            f"was fitted or vetted on; a missing date is a gap in the curve). The plot is the decay curve; "
            f"`retraining_interval_days` is the age at which the champion's metric degrades past the tolerance "
            f"from its value at training. Lake table `{decay_key}/product_group=`; the retrain sensor reads it."
        ),
    )
    def decay_asset(context: dg.AssetExecutionContext, config: DecayConfig, lake: LakeResource, mlflow: MlflowResource):
        from propensity_assets.lifecycle.monitoring import decay_curves, decay_figure, decay_row

        require_registry(mlflow)

        metric = config.metric or stage.metric
        step = config.step_days if config.step_days > 0 else decay_step_days
        def curves_of(group: str):
            return decay_curves(stage, lake.lake, mlflow, group, metric, config.tolerance, step, config.versions)

        rows, own, failures = [], {}, {}
        for attempt in attempt_each(requested_keys(context), curves_of):
            group, curves = attempt.key, attempt.result
            if attempt.error is not None:
                failures[group] = attempt.error
                continue
            # Replaces the group's partition, emptied when no label window after a cutoff has closed yet.
            lake.lake.write_pandas(decay_key, curves.assign(product_group=group), ["product_group"], [{"product_group": group}])
            row = decay_row(curves, stage.model_name(group))
            rows.append({"group": group, **row})
            figure = None if curves.empty else png_bytes(decay_figure(curves, f"{stage.model_name(group)}: {metric} by age", step))
            own[group] = decay_partition({"group": group, **row}, figure, metric)
            if not curves.empty:
                own[group].update(lake_partition(lake.lake, decay_key, {"product_group": group}))
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
        each_partition(context, own)
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
