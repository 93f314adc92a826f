"""Vet a new version against the champion and the naive baselines, and move the aliases."""

from __future__ import annotations

from dataclasses import dataclass, field

from propensity_assets.shared import registry
from propensity_assets.shared.lake import Lake
from propensity_assets.lifecycle import frames, registration, vetting
from propensity_assets.lifecycle.stage import ModelStage
from propensity_assets.lifecycle.training import log_evaluation


class VettingError(RuntimeError):
    pass


def candidate_version(client, name: str, cutoff: str):
    """The newest complete version of `name` trained at `cutoff`, and the newer incomplete
    ones it passed over (a registration killed before its `complete` tag; killed before
    any tag, a version does not say its cutoff, so any untagged one counts)."""
    versions = [v for v in client.search_model_versions(registry.name_filter(name))
                if v.tags.get("cutoff", cutoff) == cutoff]
    complete = [v for v in versions if registry.is_complete(v)]
    newest = max(complete, key=lambda v: int(v.version)) if complete else None
    incomplete = sorted((str(v.version) for v in versions if not registry.is_complete(v)
                         and (newest is None or int(v.version) > int(newest.version))), key=int)
    if newest is None:
        if incomplete:
            raise VettingError(
                f"no complete version of {name} was trained at cutoff {cutoff}: version(s) {', '.join(incomplete)} "
                f"are incomplete (their registration stopped before the `{registry.COMPLETE}` tag, e.g. a killed run); "
                f"materialize its model for {cutoff} again"
            )
        raise VettingError(f"no version of {name} was trained at cutoff {cutoff}: materialize its model for {cutoff} first")
    return newest, incomplete


@dataclass
class Vetted:
    model_name: str
    candidate_version: str
    decision: str
    reason: str
    vetting_as_of: str
    candidate: dict
    baselines: dict
    champion_before: str | None
    champion_metrics: dict | None
    champion_now: str | None
    p_worse: dict  # baseline → bootstrap probability that the candidate is worse on the vetting metric
    passed_over: list[str] = field(default_factory=list)  # newer incomplete versions at the cutoff, not vetted
    deciles: object = None  # the candidate's decile table on the vetting snapshot
    charts: dict = field(default_factory=dict)  # file name → PNG bytes: candidate, champion and baselines


def predict_version(name: str, version: str, frame):
    return registration.load_model(name, version).predict(frame).iloc[:, -1].to_numpy()


def vet(stage: ModelStage, lake: Lake, mlflow_res, group: str, cutoff: str, rule: vetting.VettingRule) -> Vetted:
    """Score the cutoff's new version and the champion on the candidate's vetting snapshot
    (which neither was fitted on) and apply the shared rule."""
    client = mlflow_res.client()
    name = stage.model_name(group)
    candidate, passed_over = candidate_version(client, name, cutoff)
    as_of = candidate.tags["vetting_as_of"]
    frame = frames.labelled_frame(lake, group, [as_of], stage.labels_table)
    y = frame["label"].to_numpy()
    predicted = predict_version(name, candidate.version, frame)
    cand = stage.evaluate(y, predicted)
    naive = stage.baselines(frame, int(candidate.tags["horizon_days"]))
    baselines = {b: stage.evaluate(y, p) for b, p in naive.items()}
    p_worse = {}
    if rule.baseline_confidence > 0 and rule.metric in rule.baseline_metrics:
        # Only a baseline the candidate does not beat outright needs the tie test.
        p_worse = {
            b: vetting.probability_worse(y, predicted, naive[b], lambda t, p: stage.evaluate(t, p)[rule.metric],
                                         rule.higher_is_better)
            for b, metrics in baselines.items()
            if not rule.better(rule.metric, cand[rule.metric], metrics[rule.metric])
        }
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    champ = champion_predicted = None
    if champion is not None and str(champion.version) == str(candidate.version):
        decision = vetting.Decision(vetting.CHAMPION, f"version {candidate.version} is already the champion")
    else:
        trained_until = None if champion is None else champion.tags.get("train_as_of_max")
        refused = champion is not None and trained_until is not None and as_of <= trained_until
        if champion is not None and not refused:
            champion_predicted = predict_version(name, champion.version, frame)
            champ = stage.evaluate(y, champion_predicted)
        decision = vetting.decide(
            rule, cand, baselines, champ, None if champion is None else str(champion.version),
            evaluated_on=as_of, champion_trained_until=trained_until, p_worse=p_worse,
        )
        # `challenger` marks a version vetted against a champion; the first one is champion only.
        registration.move_aliases(client, name, candidate.version, decision,
                                  challenger=decision.challenger and champion is not None)
    tags = {
        "vetting.decision": decision.decision,
        "vetting.reason": decision.reason,
        "vetting.metric": rule.metric,
        "vetting.as_of": as_of,
        f"vetting.candidate_{rule.metric}": f"{cand[rule.metric]:.6f}",
        **{f"vetting.p_worse_than_{b}": f"{p:.3f}" for b, p in p_worse.items()},
    }
    if champ is not None:
        tags["vetting.champion_version"] = str(champion.version)
        tags[f"vetting.champion_{rule.metric}"] = f"{champ[rule.metric]:.6f}"
    registration.tag_version(client, name, candidate.version, tags)
    # The charts of the vetting snapshot, on the candidate's MLflow run and in the UI.
    shown = {f"candidate v{candidate.version}": predicted}
    if champion_predicted is not None:
        shown[f"champion v{champion.version}"] = champion_predicted
    deciles, charts = log_evaluation(client, stage, y, {**shown, **naive}, list(shown), f"{name} vetting, snapshot {as_of}",
                                     "vetting", run_id=candidate.run_id)
    current = registry.version_by_alias(client, name, registry.CHAMPION)
    registration.describe_version(client, name, str(candidate.version))
    return Vetted(
        name, str(candidate.version), decision.decision, decision.reason, as_of, cand, baselines,
        None if champion is None else str(champion.version), champ, None if current is None else str(current.version), p_worse,
        passed_over, deciles, charts,
    )
