"""The Dagster side of every stage's labels: the label asset [as_of × product_group], its
job, and the daily schedule for the newest as_of whose label window has closed, so the
weekly retraining finds them. The stage declares what its label is (`stage.LabelSpec`);
`lifecycle.labels` computes it."""

from datetime import date, timedelta

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
from dagster_pyspark import PySparkResource

from propensity_assets.lifecycle import checks as quality
from propensity_assets.lifecycle.labels import LabelWindowError, stage_labels
from propensity_assets.lifecycle.stage import ModelStage
from propensity_assets.shared.group_tables import as_of_range, group_table_asset, materialize_group_table, stored_partitions
from propensity_assets.shared.metadata import md_table
from propensity_assets.shared.partitions import as_of_partitions, group_range_tags, today
from propensity_assets.shared.resources import LakeResource


def labels_schedule(asset_name: str, horizon_days, minute: int = 30) -> tuple:
    """A job and a daily schedule for one stage's labels at the newest as_of whose label
    window has closed (today − horizon). `horizon_days` is read at each tick."""
    job = dg.define_asset_job(
        f"{asset_name}_job",
        selection=[asset_name],
        description=f"{asset_name} for as_of × product groups (the window must lie inside the data).",
    )

    @dg.schedule(
        name=f"daily_{asset_name}_schedule",
        job=job,
        cron_schedule=f"{minute} 5 * * *",
        description=f"Daily: {asset_name} for the newest as_of whose label window has closed (today − horizon).",
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        horizon = horizon_days()
        as_of = (today(context.scheduled_execution_time) - timedelta(days=horizon)).isoformat()
        keys = as_of_partitions.get_partition_keys()
        if as_of not in keys:
            # Unlike features and training, labels cannot fall back to the last partition (its
            # window would run past the data); a run for a missing partition can only fail.
            return dg.SkipReason(
                f"{asset_name} as_of {as_of} (today − {horizon}) is not an as_of partition ({keys[0]} .. {keys[-1]}); "
                "set PROPENSITY_TODAY for data that ended in the past, or PROPENSITY_AS_OF_END"
            )
        return dg.RunRequest(run_key=f"{asset_name}:{as_of}", tags=group_range_tags(context.instance, as_of))

    return job, _schedule


def _label_summary(lake: LakeResource, table: str, specs: list[dict]) -> list[dict]:
    """Per group of the partitions written: rows, the label's mean and the positive share."""
    sums: dict[str, list] = {}  # group: [rows, label sum, positive rows]
    for spec, part in stored_partitions(lake, table, specs, ["label"]):
        label = pc.cast(part["label"], pa.float64())
        totals = sums.setdefault(spec["product_group"], [0, 0.0, 0])
        totals[0] += len(label)
        totals[1] += pc.sum(label).as_py() or 0.0
        totals[2] += pc.sum(pc.greater(label, 0).cast(pa.int64())).as_py() or 0
    return [
        {"product_group": g, "rows": n, "label_mean": total / n, "positive_share": positive / n}
        for g, (n, total, positive) in sorted(sums.items()) if n
    ]


def labels_definitions(stage: ModelStage) -> tuple:
    """A stage's label asset [as_of × product_group] (one Spark job per run, any range), its
    job, and its daily schedule at 05:<the label's schedule_minute>.

    A window past the data (`labels.LabelWindowError`) fails the run, naming the last
    valid as_of, without retries."""
    table = stage.labels_table

    @group_table_asset(
        name=table,
        group_name=stage.name,
        check_specs=[quality.LABEL_RATE.spec(table)],
        description=stage.label.description + f" Lake table `{table}/as_of=/product_group=`.",
    )
    def labels_asset(context: dg.AssetExecutionContext, spark: PySparkResource, lake: LakeResource):
        horizon = stage.horizon_days()

        def compute(tx, members, as_of_dates: list[date], groups: list[str]):
            try:
                return stage_labels(stage.label, table, tx, members, as_of_dates, groups, horizon)
            except LabelWindowError as exc:
                raise dg.Failure(str(exc), allow_retries=False) from None

        def summarize(specs, written, as_of_dates, groups) -> dict:
            rows = _label_summary(lake, table, specs)
            return {
                "run_rows": sum(r["rows"] for r in rows),
                "partitions_written": written,
                "horizon_days": horizon,
                **as_of_range(as_of_dates),
                "by_group": md_table(rows),
            }

        def checks(rows):
            return rows, lambda specs: [quality.label_rate_result(lake.lake, table, [tuple(s.values()) for s in specs])]

        def figures(spec: dict) -> dict:
            """The partition's rows, mean label (the base rate, for 0/1 labels) and positive share."""
            label = lake.lake.read_partition(table, spec, columns=["label"])["label"].astype("float64")
            return {"rows": len(label), "horizon_days": horizon, "label_mean": float(label.mean()),
                    "positive_share": float((label > 0).mean())}

        return materialize_group_table(context, spark, lake, table, compute, summarize, checks, figures=figures)

    job, schedule = labels_schedule(table, stage.horizon_days, minute=stage.label.schedule_minute)
    return labels_asset, job, schedule
