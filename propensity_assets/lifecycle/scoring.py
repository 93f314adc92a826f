"""Score (as_of, group) pairs with each group's champion, on Spark; one group's failure
skips that group only.

The driver decides what to score (the champion of each group, the skip rules) and loads
each champion once from MLflow. The model travels to the executors as bytes inside the
`mapInPandas` function (PySpark broadcasts a large pickled function by itself; Spark
Connect, which has no SparkContext to broadcast with, ships it with the plan), so an
executor needs the project's Python environment but nothing from the
driver's filesystem or MLflow's artifact store; the features are read by Spark from the
run's lake, joined, and scored batch by batch (`mapInPandas`) by the registered pyfunc
itself, unpickled once per Python worker. The scores stay on the executors: their
validity, counts, distribution and decile means are Spark aggregates, and only valid
partitions are written, by Spark (`LakeResource.write_spark`).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field

import pandas as pd

from propensity_assets.shared import registry
from propensity_assets.shared.lake import Lake
from propensity_assets.features import lookup
from propensity_assets.lifecycle import registration
from propensity_assets.lifecycle.stage import ModelStage

QUANTILES = {"p10": 0.1, "p50": 0.5, "p90": 0.9}


def distribution(values: pd.Series) -> dict:
    """The pandas reference of `spark_summary`'s distribution."""
    return {
        "mean": float(values.mean()),
        **{name: float(values.quantile(q)) for name, q in QUANTILES.items()},
    }


def decile_means(values: pd.Series) -> dict[str, float]:
    """Mean prediction per decile of the prediction, 1 = the top 10 % (pandas reference)."""
    from propensity_assets.shared.deciles import deciles

    return {str(k): round(float(v), 4) for k, v in values.groupby(deciles(values)).mean().items()}


# -- what to score: decided on the driver ----------------------------------------------


@dataclass
class Champion:
    """One group's champion, loaded on the driver, and the dates it may score."""

    group: str
    name: str
    version: str
    dates: list[str]
    model_bytes: bytes  # the cloudpickled pyfunc (mlflow.pyfunc.PyFuncModel)


@dataclass
class Plan:
    champions: list[Champion] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # "<as_of>|<group>" → why it is not scored


def plan_scoring(stage: ModelStage, lake: Lake, mlflow_res, pairs: list[tuple[str, str]]) -> Plan:
    """Each group's champion and the dates it scores. A group without a champion, or an
    as_of not later than the champion's training snapshots (in-sample scores would flatter
    it), is skipped with the reason; so is a group whose features are missing from the
    run's lake or whose model does not load, and a champion whose lineage (complete
    registration, stage, group, training window, features) is not the registered model's:
    nothing is written for that group, its previous scores stay."""
    import cloudpickle
    import mlflow

    client = mlflow_res.client()
    plan = Plan()
    for group in sorted({g for _, g in pairs}):
        dates = sorted(d for d, g in pairs if g == group)
        name = stage.model_name(group)
        champion = registry.version_by_alias(client, name, registry.CHAMPION)
        if champion is None:
            for d in dates:
                plan.skipped[f"{d}|{group}"] = (
                    f"no champion for {name}: train and vet one, or `propensity-assets promote {group} <version> "
                    f"--stage {stage.name}`"
                )
            continue
        problem = registration.lineage_problem(champion, name, stage.name, group)
        if problem:
            for d in dates:
                plan.skipped[f"{d}|{group}"] = f"champion refused: {problem}"
            continue
        trained_until = champion.tags["train_as_of_max"]
        for d in [d for d in dates if d <= trained_until]:
            plan.skipped[f"{d}|{group}"] = (
                f"as_of {d} is not later than {name} v{champion.version}'s training snapshots (up to {trained_until}): "
                "refused, in-sample scores would look better than they are"
            )
        dates = [d for d in dates if d > trained_until]
        if not dates:
            continue
        try:
            lookup.require_features(lake, group, dates)
            model = mlflow.pyfunc.load_model(f"models:/{name}/{champion.version}")
            problem = registration.lineage_problem(champion, name, stage.name, group, model.model_config or {})
            model_bytes = None if problem else cloudpickle.dumps(model)
        except Exception as exc:  # one group's failure must not stop the others
            problem = f"{type(exc).__name__}: {exc}"
        else:
            problem = problem and f"champion refused: {problem}"
        if problem:
            for d in dates:
                plan.skipped[f"{d}|{group}"] = problem
            continue
        plan.champions.append(Champion(group, name, str(champion.version), dates, model_bytes))
    return plan


# -- scoring on the executors ----------------------------------------------------------


_MODELS: dict[str, object] = {}  # champion token → the unpickled pyfunc, per Python worker
_MODELS_KEPT = 16


def _model(token: str, model_bytes: bytes):
    if token not in _MODELS:
        import cloudpickle

        if len(_MODELS) >= _MODELS_KEPT:  # a reused worker must not keep every run's models
            _MODELS.clear()
        _MODELS[token] = cloudpickle.loads(model_bytes)
    return _MODELS[token]


def predict_batches(token: str, model_bytes: bytes, output: str, constants: dict):
    """The `mapInPandas` function: each batch of joined features → as_of, household_id,
    `value`, `constants` (model_name, model_version, the stage's extras) and `error`,
    predicted by the pyfunc's own `predict` on exactly the columns the driver-side
    `lookup.feature_matrix` gives. A failure (the model does not unpickle, a prediction
    raises) becomes one row per as_of with the error and no value, so the driver skips that
    group with the reason instead of failing every group's job."""

    def run(batches):
        error = None
        for batch in batches:
            if error is None:
                try:
                    predicted = _model(token, model_bytes).predict(lookup.with_ratios(batch))
                    yield pd.DataFrame({
                        "as_of": predicted["as_of"].astype(str),
                        "household_id": predicted["household_id"].astype("int64"),
                        "value": predicted[output].astype("float64"),
                        **constants,
                        "error": None,
                    })
                    continue
                except Exception as exc:  # reported per group by the driver
                    error = f"{type(exc).__name__}: {exc}"
            as_of = sorted(batch["as_of"].astype(str).unique())
            yield pd.DataFrame({"as_of": as_of, "household_id": None, "value": None, **constants, "error": error})

    return run


def _ddl(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"a score extra must be an int, float or str constant, got {value!r}")
    return {int: "bigint", float: "double", str: "string"}[type(value)]


def score_frame(spark, stage: ModelStage, lake: Lake, champions: list[Champion]):
    """Every champion's predictions as one lazy Spark frame with as_of, product_group,
    household_id, `value`, model_name, model_version, the stage's extras and `error`.

    The constant columns come out of the Python workers with the predictions rather than
    as Spark literals, so that they are nullable in Parquet like the same columns written
    from pandas: every partition of a table then has one schema."""
    from functools import reduce

    from pyspark.sql import functions as F

    extras = stage.score_extras()
    schema = ", ".join([
        "as_of string, household_id bigint, value double, model_name string, model_version string",
        *(f"{key} {_ddl(value)}" for key, value in extras.items()), "error string",
    ])
    parts = []
    for champion in champions:
        constants = {"model_name": champion.name, "model_version": champion.version, **extras}
        predicted = lookup.spark_features(spark, lake, champion.group, champion.dates).mapInPandas(
            predict_batches(uuid.uuid4().hex, champion.model_bytes, stage.score_column, constants), schema
        )
        parts.append(predicted.withColumn("product_group", F.lit(champion.group)))
    return reduce(lambda a, b: a.unionByName(b), parts)


@dataclass
class PartitionCounts:
    rows: int = 0
    nulls: int = 0
    infinite: int = 0
    outside: int = 0
    error: str | None = None


def partition_counts(frame, low: float, high: float | None) -> dict[tuple[str, str], PartitionCounts]:
    """{(as_of, group): rows, null / non-finite / out-of-range values and the first
    executor error} in one Spark aggregate over the scores."""
    from pyspark.sql import functions as F

    value, ok = F.col("value"), F.col("error").isNull()
    nonfinite = F.isnan(value) | value.isin(float("inf"), float("-inf"))
    finite = value.isNotNull() & ~nonfinite
    beyond = (value < F.lit(low)) if high is None else ((value < F.lit(low)) | (value > F.lit(high)))

    def count(condition):
        return F.sum(F.when(ok & condition, 1).otherwise(0)).cast("long")

    rows = frame.groupBy("as_of", "product_group").agg(
        count(F.lit(True)).alias("rows"), count(value.isNull()).alias("nulls"), count(value.isNotNull() & nonfinite).alias("infinite"),
        count(finite & beyond).alias("outside"), F.min("error").alias("error"),
    ).collect()
    return {(r["as_of"], r["product_group"]): PartitionCounts(r["rows"], r["nulls"], r["infinite"], r["outside"], r["error"])
            for r in rows}


def spark_summaries(frame, column: str, by: str | None = None) -> dict:
    """{value of `by` (None: the whole frame): {"rows", "distribution", "mean_by_decile"}}
    of `column`, equal to the pandas reference (`distribution`: mean and pandas' linear
    p10/p50/p90; `decile_means`: the mean per decile, 1 = top 10 %), as Spark aggregates.
    The values are ranked by one window over the score column (per `by` value, or all in
    one task, sorted there and spilled as needed, never sent to the driver); only the
    per-decile sums and the few order statistics the quantiles interpolate between come back."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    key = F.col(by) if by else F.lit(None).cast("string")
    whole = Window.partitionBy("key") if by else Window.partitionBy()
    ranked = frame.select(key.alias("key"), F.col(column).alias("v")).withColumns({
        "rank": F.row_number().over(whole.orderBy("v")),
        "n": F.count(F.lit(1)).over(whole),
    })
    n, rank = F.col("n"), F.col("rank")
    picked = F.lit(False)
    for q in QUANTILES.values():
        lower = F.floor((n - F.lit(1)).cast("double") * F.lit(q)) + F.lit(1)
        picked = picked | (rank == lower) | (rank == F.least(lower + F.lit(1), n))
    # deciles.deciles: ceil(rank from the top / n * 10), clipped to 1..10
    decile = F.least(F.greatest(F.ceil((n - rank + F.lit(1)) / n.cast("double") * F.lit(10.0)), F.lit(1)), F.lit(10))
    stats = ranked.groupBy("key", decile.alias("decile")).agg(
        F.avg("v").alias("mean"), F.sum("v").alias("sum"), F.count("v").alias("count"),
        F.collect_list(F.when(picked, F.struct("rank", "v"))).alias("picks"),
    ).collect()
    out = {}
    for k in sorted({r["key"] for r in stats}, key=str):
        rows = [r for r in stats if r["key"] == k]
        count = sum(r["count"] for r in rows)
        at = {p["rank"]: p["v"] for r in rows for p in r["picks"]}
        dist = {"mean": float(sum(r["sum"] for r in rows) / count)}
        for name, q in QUANTILES.items():
            h = (count - 1) * q
            lower = math.floor(h)
            a, b, t = at[lower + 1], at[min(lower + 2, count)], h - lower
            # numpy's linear interpolation (`_lerp`), which pandas' quantile uses
            dist[name] = float(b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t)
        means = {str(int(r["decile"])): round(float(r["mean"]), 4) for r in sorted(rows, key=lambda r: r["decile"])}
        out[k] = {"rows": count, "distribution": dist, "mean_by_decile": means}
    return out


@dataclass
class Scored:
    """What a scoring run produced. `frame` holds only the valid, scored partitions in the
    scores table's columns (as_of, product_group, household_id, <score>, model_name,
    model_version, extras), or is None when nothing could be scored; it reads the persisted
    predictions, so writing and summarizing it does not predict again."""

    frame: object | None = None
    counts: dict[tuple[str, str], int] = field(default_factory=dict)  # rows per valid partition
    models: list[dict] = field(default_factory=list)  # one summary row per scored group
    skipped: dict[str, str] = field(default_factory=dict)  # "<as_of>|<group>" → why it was not scored
    invalid: dict[tuple[str, str], str] = field(default_factory=dict)  # failed scores_valid: not to be written
    _cached: object | None = None

    def release(self) -> None:
        """Free the executors' copies of the predictions."""
        if self._cached is not None:
            self._cached.unpersist()
        self._cached = None


def score_pairs(spark, stage: ModelStage, lake: Lake, mlflow_res, pairs: list[tuple[str, str]]) -> Scored:
    """Every household of the population at each as_of, scored on Spark by the group's
    champion (see the module docstring), each partition checked by the `scores_valid` rule.

    Features come from `lake` (the run's), never from a lake recorded in the model. Call
    `release()` on the result once its frame is written and summarized.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from propensity_assets.lifecycle import checks as quality
    from propensity_assets.shared.spark_frames import literal_frame

    plan = plan_scoring(stage, lake, mlflow_res, pairs)
    out = Scored(skipped=dict(plan.skipped))
    if not plan.champions:
        return out
    predicted = score_frame(spark, stage, lake, plan.champions)
    out._cached = predicted.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = partition_counts(out._cached, stage.output_min, stage.output_max)
    except BaseException:
        out.release()
        raise
    failed = {}
    for (_, g), c in sorted(counts.items()):
        if c.error is not None:
            failed.setdefault(g, c.error)
    valid = []
    for champion in plan.champions:
        group = champion.group
        if group in failed:  # one failure skips the group's dates, the other groups are scored
            for d in champion.dates:
                out.skipped[f"{d}|{group}"] = failed[group]
            continue
        rows = 0
        for d in champion.dates:
            c = counts.get((d, group))
            if c is None or not c.rows:
                continue
            problem = quality.score_problem(
                stage.score_column, c.rows, c.nulls, c.infinite, c.outside, stage.output_min, stage.output_max
            )
            if problem:
                out.invalid[(d, group)] = problem
                continue
            valid.append((d, group))
            out.counts[(d, group)] = c.rows
            rows += c.rows
        if rows:
            out.models.append({"group": group, "version": champion.version, "rows": rows})
    if valid:
        wanted = literal_frame(spark, valid, "as_of string, product_group string")
        out.frame = out._cached.where(F.col("error").isNull()).join(F.broadcast(wanted), ["as_of", "product_group"]).select(
            "as_of", "product_group", "household_id", F.col("value").alias(stage.score_column),
            "model_name", "model_version", *stage.score_extras(),
        )
    return out
