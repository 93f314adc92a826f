"""The lifecycle's launchpad configuration: what every stage's training shares (a stage adds
its search space with `search_config`), the vetting rule's knobs (`rule_for` turns them
and the stage's declaration into a `vetting.VettingRule`), and the decay curve's."""

import dataclasses
import typing

import dagster as dg
import pydantic

from propensity_assets.lifecycle import vetting
from propensity_assets.lifecycle.stage import ModelStage
from propensity_assets.shared import settings


class TrainingConfig(dg.Config):
    """What every stage's training shares; a stage's config adds its search space."""

    history_weeks: int = 30
    seed: int = 42
    # The most training rows (household × snapshot) read to the driver; above it, households
    # are sampled, stratified by label (`frames.TrainingSample`).
    # None: the deployment's PROPENSITY_TRAINING_MAX_ROWS (default 1,000,000).
    max_training_rows: typing.Optional[int] = None
    # Threads of each model fit. None: the deployment's PROPENSITY_TRAINING_THREADS (default 2).
    training_threads: typing.Optional[int] = None
    # Refit the champion's selected configuration on this cutoff's snapshots instead of
    # searching the space (the cheap periodic retrain): its `best.*` MLflow params pin each
    # search dimension they name to that one value. Without a champion, the space is searched.
    from_champion: bool = False

    def resolved(self):
        """This config with the deployment's settings for the fields left None, read now."""
        chosen = {"max_training_rows": settings.training_max_rows(self.max_training_rows),
                  "training_threads": settings.training_threads(self.training_threads)}
        return type(self)(**{**self.model_dump(), **chosen})


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
    # Promote a vetted challenger to champion. None: the deployment's PROPENSITY_AUTO_PROMOTE (off).
    auto_promote: typing.Optional[bool] = None


class ScoringConfig(dg.Config):
    """Which feature partitions scoring accepts."""

    # The largest fall of a group_features partition's population from the previous as_of
    # that scoring accepts (a fraction); a partition that fell further is not scored.
    # None: the deployment's PROPENSITY_POPULATION_DROP_TOLERANCE (default 0.02).
    population_drop_tolerance: typing.Optional[float] = None


class DecayConfig(dg.Config):
    """How the error-over-time curve is built, and when a champion counts as degraded."""

    metric: str = ""
    # Relative degradation from the value at training that calls for retraining.
    tolerance: float = 0.03
    step_days: int = 1
    versions: int = 3


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
        auto_promote=settings.auto_promote(config.auto_promote),
        directions=stage.higher_is_better,
    )
