"""Score (as_of, group) pairs with each group's champion; one group's failure skips
that group only."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from propensity_assets import registry
from propensity_assets.lake import Lake
from propensity_assets.lifecycle import frames
from propensity_assets.lifecycle.stage import ModelStage


@dataclass
class Scored:
    scores: pd.DataFrame  # as_of, product_group, household_id, <score_column>, model_name, model_version, extras
    models: list[dict] = field(default_factory=list)  # one summary row per scored group
    skipped: dict[str, str] = field(default_factory=dict)  # "<as_of>|<group>" → why it was not scored


def distribution(values: pd.Series) -> dict:
    return {
        "mean": float(values.mean()),
        "p10": float(values.quantile(0.1)),
        "p50": float(values.median()),
        "p90": float(values.quantile(0.9)),
    }


def decile_means(values: pd.Series) -> dict[str, float]:
    """Mean prediction per decile of the prediction, 1 = the top 10 %."""
    from propensity_assets.lifecycle.deciles import deciles

    return {str(k): round(float(v), 4) for k, v in values.groupby(deciles(values)).mean().items()}


def score_pairs(stage: ModelStage, lake: Lake, mlflow_res, pairs: list[tuple[str, str]]) -> Scored:
    """Every household of the population at each as_of, scored by the group's champion.

    Features come from `lake` (the run's), never from a lake recorded in the model. A
    group without a champion, or an as_of not later than the champion's training
    snapshots (in-sample scores would flatter it), is skipped with the reason.
    """
    import mlflow

    client = mlflow_res.client()
    frames_out, out = [], Scored(pd.DataFrame())
    for group in sorted({g for _, g in pairs}):
        dates = sorted(d for d, g in pairs if g == group)
        name = stage.model_name(group)
        champion = registry.version_by_alias(client, name, registry.CHAMPION)
        if champion is None:
            for d in dates:
                out.skipped[f"{d}|{group}"] = (
                    f"no champion for {name}: train and vet one, or `propensity-assets promote {group} <version> "
                    f"--stage {stage.name}`"
                )
            continue
        trained_until = champion.tags.get("train_as_of_max", "")
        for d in [d for d in dates if d <= trained_until]:
            out.skipped[f"{d}|{group}"] = (
                f"as_of {d} is not later than {name} v{champion.version}'s training snapshots (up to {trained_until}): "
                "refused, in-sample scores would look better than they are"
            )
        dates = [d for d in dates if d > trained_until]
        if not dates:
            continue
        try:
            features = frames.read_features(lake, group, dates)
            model = mlflow.pyfunc.load_model(f"models:/{name}/{champion.version}")
            predicted = model.predict(features)
        except Exception as exc:  # one group's failure must not stop the others
            for d in dates:
                out.skipped[f"{d}|{group}"] = f"{type(exc).__name__}: {exc}"
            continue
        scored = predicted.rename(columns={stage.score_column: "value"})
        scored = scored.assign(product_group=group, model_name=name, model_version=str(champion.version))
        frames_out.append(scored)
        out.models.append(
            {"group": group, "version": str(champion.version), "rows": len(scored), **distribution(scored["value"])}
        )
    if frames_out:
        scores = pd.concat(frames_out, ignore_index=True).rename(columns={"value": stage.score_column})
        for key, value in stage.score_extras().items():
            scores[key] = value
        extras = list(stage.score_extras())
        out.scores = scores[
            ["as_of", "product_group", "household_id", stage.score_column, "model_name", "model_version", *extras]
        ]
    return out
