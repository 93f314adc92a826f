"""The registry path every registered model takes: log the pyfunc and register a version,
tag it, move its aliases as the vetting decision says, and load a version back.

Propensity and LTV (`training.py`, `promotion.py`) and the incentive recommenders
(`incentives/tracking.py`) all go through these, so a version's shape in MLflow and the
meaning of `challenger` and `champion` (CONTRACTS §6) are the same for every model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import propensity_assets
from propensity_assets.shared import registry
from propensity_assets.lifecycle.vetting import Decision


# What a lifecycle version must carry for scoring to trust it: who it serves, when it was
# trained and on which features (`lineage_problem`).
LINEAGE_TAGS = ("stage", "product_group", "cutoff", "horizon_days", "train_as_of_min", "train_as_of_max",
                "vetting_as_of", "features_sha256")


def crash_point(step: str) -> None:
    """A named step of a registration (`created`: the version exists, untagged; `tagged`:
    every tag but `complete` is written) at which a process may die. A no-op: the kill
    tests replace it to kill their registering process there."""


def features_sha256(features: list[str]) -> str:
    return hashlib.sha256(json.dumps(list(features)).encode()).hexdigest()


def lineage_tags(stage: str, group: str, features: list[str]) -> dict[str, str]:
    """The version tags naming the model it serves and the features it was fitted on
    (the training window's tags come from the snapshot plan)."""
    return {"stage": stage, "product_group": group, "features_sha256": features_sha256(features),
            "feature_count": str(len(features))}


def log_and_register(
    name: str,
    python_model,
    *,
    artifacts: dict[str, str],
    pip_requirements: list[str],
    tags: dict | None = None,
    model_config: dict | None = None,
    signature=None,
    input_example=None,
) -> str:
    """Log `python_model` as the active run's `model`, with the package's code beside it so
    the model loads wherever its requirements install, and register it as a new version of
    `name` with `tags`; the version.

    The version's `complete` tag is written last: a process killed anywhere before leaves a
    version that vetting, promotion and scoring refuse (`registry.is_complete`)."""
    import mlflow

    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=python_model,
        artifacts=artifacts,
        model_config=model_config,
        code_paths=[str(Path(propensity_assets.__file__).parent)],
        signature=signature,
        input_example=input_example,
        registered_model_name=name,
        pip_requirements=pip_requirements,
    )
    version = str(info.registered_model_version)
    crash_point("created")
    client = mlflow.MlflowClient()
    tag_version(client, name, version, tags or {})
    crash_point("tagged")
    client.set_model_version_tag(name, version, registry.COMPLETE, "true")
    describe_version(client, name, version)
    return version


def tag_version(client, name: str, version: str, tags: dict) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, str(value))


def move_aliases(client, name: str, version: str, decision: Decision, *, challenger: bool) -> None:
    """`challenger` on the version when `challenger` (the stage's rule for a vetted candidate)
    and the decision does not promote it; `champion` through `registry.promote` when it does
    (a champion is no challenger: the alias leaves it)."""
    if decision.promote:
        registry.promote(client, name, version, decision.reason, by="vetting")
    elif challenger:
        client.set_registered_model_alias(name, registry.CHALLENGER, str(version))


def apply_decision(client, name: str, version: str, decision: Decision, tags: dict, *, challenger: bool) -> None:
    """Move the aliases as `decision` says, record the vetting on the version's tags and
    rewrite its card (`describe_version`)."""
    move_aliases(client, name, version, decision, challenger=challenger)
    tag_version(client, name, version, tags)
    describe_version(client, name, version)


# -- the model card: a registered version's description in MLflow -----------------------------

_WINDOW = ("cutoff", "train_as_of_min", "train_as_of_max", "vetting_as_of", "horizon_days")


def model_card(name: str, version: str, tags: dict[str, str], params: dict[str, str]) -> str:
    """A version's description (Markdown, shown on its MLflow page): its training window, the
    selected configuration, its holdout figures, the vetting decision with its figures and,
    once promoted, by whom and why. Built from the version's tags and its run's `best.*`
    params, so it says only what the registry records."""
    lines = [f"**{name} version {version}**", ""]
    if tags.get("cutoff"):
        lines.append(
            f"- trained at cutoff {tags['cutoff']} on the snapshots {tags.get('train_as_of_min', '?')} .. "
            f"{tags.get('train_as_of_max', '?')}; vetting snapshot {tags.get('vetting_as_of', '?')}; label window "
            f"{tags.get('horizon_days', '?')} days"
        )
    selected = {k.removeprefix("best."): v for k, v in sorted(params.items()) if k.startswith("best.")}
    if selected:
        lines.append("- selected configuration: " + ", ".join(f"{k}={v}" for k, v in selected.items()))
    if tags.get("search"):
        lines.append(f"- search: {tags['search']}")
    holdout = {k: v for k, v in sorted(tags.items()) if k.startswith("holdout_")}
    if holdout:
        lines.append("- on the vetting snapshot at training: " + ", ".join(f"{k.removeprefix('holdout_')} {v}"
                                                                           for k, v in holdout.items()))
    if tags.get("vetting.decision"):
        figures = {k.removeprefix("vetting."): v for k, v in sorted(tags.items())
                   if k.startswith("vetting.") and k not in ("vetting.decision", "vetting.reason")}
        lines.append(f"- vetting decision: **{tags['vetting.decision']}**: {tags.get('vetting.reason', '')}")
        if figures:
            lines.append("- vetting figures: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    if tags.get("promotion.by"):
        replaced = tags.get("promotion.replaced_version")
        lines.append(f"- promoted to champion by {tags['promotion.by']}"
                     + (f", replacing version {replaced}" if replaced else "") + f": {tags.get('promotion.reason', '')}")
    return "\n".join(lines)


def describe_version(client, name: str, version: str) -> None:
    """Write the version's card (`model_card`) as its MLflow description."""
    mv = client.get_model_version(name, str(version))
    params = client.get_run(mv.run_id).data.params if mv.run_id else {}
    client.update_model_version(name, str(version), description=model_card(name, str(version), dict(mv.tags), params))


def lineage_problem(mv, name: str, stage: str, group: str, model_config: dict | None = None) -> str | None:
    """What makes version `mv` of `name` unfit to score `group` for `stage`, or None: not
    complete, a lineage tag missing, or a stage, group or feature list (tags, and the
    loaded model's `model_config` when given) other than the registered model's."""
    if not registry.is_complete(mv):
        return registry.refusal(mv, name, require_vetted=False)
    missing = [tag for tag in LINEAGE_TAGS if not mv.tags.get(tag)]
    if missing:
        return (f"{name} version {mv.version} lacks the lineage tags {', '.join(missing)} that the lifecycle writes "
                "at registration; retrain it, or promote a version the lifecycle registered")
    wanted = {"stage": stage, "product_group": group}
    differs = [f"tag {key} is {mv.tags[key]!r}, expected {want!r}" for key, want in wanted.items() if mv.tags[key] != want]
    if model_config is not None:
        differs += [f"model_config {key} is {model_config.get(key)!r}, expected {want!r}"
                    for key, want in wanted.items() if model_config.get(key) != want]
        if features_sha256(model_config.get("features") or []) != mv.tags["features_sha256"]:
            differs.append("model_config features do not match the tag features_sha256")
    if differs:
        return f"{name} version {mv.version} is not a {stage} model of product group {group}: " + "; ".join(differs)
    return None


def dagster_run_alive(instance) -> Callable[[str], bool]:
    """Whether a Dagster run of `instance` is still going (unknown or finished runs are not)."""

    def alive(run_id: str) -> bool:
        run = instance.get_run_by_id(run_id)
        return run is not None and not run.is_finished

    return alive


def end_orphaned_runs(client, experiment_id: str, stage: str, group: str, alive: Callable[[str], bool]) -> list[str]:
    """End as FAILED the MLflow runs of `stage`/`group` (and their trial runs) left RUNNING by
    a Dagster run that is no longer running (killed); the ended run ids."""
    ended = []
    running = "attributes.status = 'RUNNING'"
    found = client.search_runs([experiment_id], f"{running} and tags.stage = '{stage}' and tags.product_group = '{group}'")
    for run in found:
        dagster_run = run.data.tags.get("dagster_run_id")
        if not dagster_run or alive(dagster_run):
            continue
        run_id = run.info.run_id
        for child in client.search_runs([experiment_id], f"{running} and tags.`mlflow.parentRunId` = '{run_id}'"):
            client.set_terminated(child.info.run_id, "FAILED")
        client.set_tag(run_id, "ended_as_orphan", f"Dagster run {dagster_run} is no longer running")
        client.set_terminated(run_id, "FAILED")
        ended.append(run_id)
    return ended


def load_model(name: str, version: str | None = None, alias: str | None = None):
    """The registered pyfunc `name` at `version` or `alias`."""
    import mlflow

    return mlflow.pyfunc.load_model(f"models:/{name}/{version}" if alias is None else f"models:/{name}@{alias}")
