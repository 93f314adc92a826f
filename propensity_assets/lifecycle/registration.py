"""The registry path every registered model takes: log the pyfunc and register a version,
tag it, move its aliases as the vetting decision says, and load a version back.

Propensity and LTV (`training.py`, `promotion.py`) and the incentive recommenders
(`incentives/tracking.py`) all go through these, so a version's shape in MLflow and the
meaning of `challenger` and `champion` (CONTRACTS §6) are the same for every model.
"""

from __future__ import annotations

from pathlib import Path

import propensity_assets
from propensity_assets.shared import registry
from propensity_assets.lifecycle.vetting import Decision


def log_and_register(
    name: str,
    python_model,
    *,
    artifacts: dict[str, str],
    pip_requirements: list[str],
    model_config: dict | None = None,
    signature=None,
    input_example=None,
) -> str:
    """Log `python_model` as the active run's `model`, with the package's code beside it so
    the model loads wherever its requirements install, and register it as a new version of
    `name`; the version."""
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
    return str(info.registered_model_version)


def tag_version(client, name: str, version: str, tags: dict) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, str(value))


def move_aliases(client, name: str, version: str, decision: Decision, *, challenger: bool) -> None:
    """`challenger` on the version when `challenger` (the stage's rule for a vetted candidate),
    and `champion` through `registry.promote` when the decision promotes."""
    if challenger:
        client.set_registered_model_alias(name, registry.CHALLENGER, str(version))
    if decision.promote:
        registry.promote(client, name, version, decision.reason, by="vetting")


def apply_decision(client, name: str, version: str, decision: Decision, tags: dict, *, challenger: bool) -> None:
    """Move the aliases as `decision` says and record the vetting on the version's tags."""
    move_aliases(client, name, version, decision, challenger=challenger)
    tag_version(client, name, version, tags)


def load_model(name: str, version: str | None = None, alias: str | None = None):
    """The registered pyfunc `name` at `version` or `alias`."""
    import mlflow

    return mlflow.pyfunc.load_model(f"models:/{name}/{version}" if alias is None else f"models:/{name}@{alias}")
