"""Each partition's own metadata for the lifecycle assets: a model, a vetting decision, a
partition of scores and a group's decay curve, as numbers (drawn by the Plots tab across
cutoffs and dates), Dagster tables and charts. The assets (`lifecycle.assets`) give each
partition its entry with `shared.metadata.each_partition`, so a single-run backfill over
many groups shows every group its own figures, not the run's."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from propensity_assets.lifecycle.stage import ModelStage
from propensity_assets.shared.metadata import md_png, mlflow_run_url, numbers, table

CHART_TITLES = {"gains.png": "cumulative gains", "lift.png": "lift by decile", "calibration.png": "predicted vs actual"}


def charts(pngs: dict[str, bytes], prefix: str = "") -> dict:
    """The evaluation charts as Markdown images, named `chart: <what>`."""
    return {f"{prefix}chart: {CHART_TITLES.get(f, f)}": md_png(png, CHART_TITLES.get(f, f)) for f, png in pngs.items()}


def baseline_numbers(baselines: dict[str, dict]) -> dict:
    """Each naive baseline's metrics as `baseline_<name>_<metric>`."""
    out = {}
    for name, metrics in baselines.items():
        out.update(numbers(metrics, f"baseline_{name}_"))
    return out


def model_partition(r, tracking_uri: str) -> dict:
    """One registered model (`training.Registered`): its version, window, holdout metrics
    against every baseline, the decile table and the evaluation charts on its vetting snapshot."""
    return {
        "model_name": r.model_name,
        "model_version": r.version,
        "mlflow_run_id": r.run_id,
        "mlflow_run": dg.MetadataValue.url(mlflow_run_url(tracking_uri, r.experiment_id, r.run_id)),
        "search": r.search,
        "cutoff": str(r.plan.cutoff),
        "vetting_as_of": str(r.plan.vetting),
        "training_window": f"{min(r.plan.train)} .. {max(r.plan.train)} (vetting snapshot {r.plan.vetting})",
        **numbers({"train_rows": r.train_rows, "train_seconds": round(r.train_seconds, 1)}),
        **numbers(r.holdout_metrics, "holdout_"),
        **baseline_numbers(r.holdout_baselines),
        **numbers(r.selection_metrics, "selection_"),
        **r.sample.params(),
        "training_sample": table(pd.DataFrame([{"stratum": k, **v} for k, v in r.sample.strata.items()])),
        "trials": table(r.trials),
        "deciles": table(r.deciles),
        **{report: table(frame) for report, frame in r.reports.items()},
        **charts(r.charts),
    }


def champion_partition(r, metric: str) -> dict:
    """One vetting (`promotion.Vetted`): the decision and its reason, the candidate's, the
    champion's and the baselines' metrics on the vetting snapshot, and the charts."""
    out = {
        "model_name": r.model_name,
        "model_version": r.candidate_version,
        "decision": r.decision,
        "reason": r.reason,
        "vetting_as_of": r.vetting_as_of,
        "vetting_metric": metric,
        "champion_before": str(r.champion_before),
        "champion_version": str(r.champion_now),
        **numbers(r.candidate, "candidate_"),
        **numbers(r.champion_metrics or {}, "champion_"),
        **baseline_numbers(r.baselines),
        **numbers(r.p_worse, "p_worse_than_"),
        **charts(r.charts),
    }
    if r.deciles is not None:
        out["deciles"] = table(r.deciles)
    return out


def score_partition(stage: ModelStage, summary: dict, version: str, group: str) -> dict:
    """One partition of scores: its rows, distribution and mean score per decile."""
    deciles = pd.DataFrame(
        [{"decile": int(k), f"mean_{stage.score_column}": v} for k, v in summary["mean_by_decile"].items()]
    )
    return {
        "rows": summary["rows"],
        "model_name": stage.model_name(group),
        "model_version": version,
        **numbers(summary["distribution"], f"{stage.score_column}_"),
        "mean_by_decile": table(deciles),
    }


def decay_partition(row: dict, figure_png: bytes | None, metric: str) -> dict:
    """One group's decay summary (`lifecycle.assets` decay rows) and its curve."""
    out = {k: v for k, v in row.items() if k != "group"}
    out["metric"] = metric
    if figure_png is not None:
        out["decay_curve"] = md_png(figure_png, f"{row['group']}: {metric} by age")
    return out
