"""MLflow for the incentive studies: runs per stage, the recommender's registration and vetting.

No Dagster here; the assets call these with the MLflow resource's client. One
experiment, `incentives`; every run is tagged with its study and stage so the
recommender finds the estimators of the latest effects run.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

import propensity_assets
from propensity_assets.shared import registry
from propensity_assets.lifecycle.vetting import REJECTED, Decision, VettingRule, decide

# The MLflow runs of a study, tagged `stage`: the causal graph, and the effect estimators.
STAGES = ("graph", "effects")

EXPERIMENT = "incentives"
ESTIMATORS_ARTIFACT = "estimators/estimators.joblib"
POLICY_METRIC = "dr_policy_value"


def run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    base = tracking_uri if tracking_uri.startswith("http") else "http://localhost:5000"
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def latest_run(client, experiment_id: str, study: str, stage: str):
    registry.model_name("incentive", study)  # a valid study key: nothing can inject into the filter below
    if stage not in STAGES:
        raise ValueError(f"unknown incentive stage {stage!r}; expected one of {STAGES}")
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.incentive_study = '{study}' and tags.stage = '{stage}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        raise LookupError(f"no finished MLflow '{stage}' run for incentive study {study!r} in experiment "
                          f"{EXPERIMENT!r}: materialize incentive_effects for study={study} first")
    return runs[0]


def save_estimators(path: Path, estimates, study) -> None:
    import joblib

    totals = {e.treatment: e for e in estimates if e.effect == "total"}
    joblib.dump(
        {
            "estimators": {t: e.model for t, e in totals.items()},
            "modifiers": {t: e.modifiers for t, e in totals.items()},
            "costs": {t.name: t.cost for t in study.treatments},
            "treatments": study.treatment_names,
            "id_column": study.id_column,
        },
        path,
    )


def register_recommender(client, experiment_id: str, study, estimators_file: str, example: pd.DataFrame, tags: dict) -> tuple[str, str]:
    """Log the recommender pyfunc and register it as `incentive__<study>`; (version, run_id)."""
    from propensity_assets.incentives.recommender import IncentiveRecommender

    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import ColSpec, Schema

    name = registry.model_name("incentive", study.key)
    # Column types as in the study's table; the unit id optional: it is passed through when given.
    inferred = infer_signature(example).inputs.inputs
    signature = ModelSignature(inputs=Schema([ColSpec(c.type, c.name, required=c.name != "unit_id") for c in inferred]))
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{study.key} recommender") as run:
        mlflow.set_tags({"incentive_study": study.key, "stage": "recommender", **tags})
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=IncentiveRecommender(),
            artifacts={"estimators": estimators_file},
            code_paths=[str(Path(propensity_assets.__file__).parent)],
            input_example=example,
            signature=signature,
            registered_model_name=name,
            pip_requirements=["econml", "lightgbm", "scikit-learn", "pandas<3", "mlflow", "joblib"],
        )
    return str(info.registered_model_version), run.info.run_id


def champion_policy(study_key: str, data: pd.DataFrame, client) -> tuple[str, np.ndarray] | None:
    """(version, options) the current champion recommends on `data`, or None without a champion."""
    name = registry.model_name("incentive", study_key)
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    if champion is None:
        return None
    model = mlflow.pyfunc.load_model(f"models:/{name}@{registry.CHAMPION}")
    return str(champion.version), model.predict(data)["recommended"].to_numpy()


def vet_recommender(
    client,
    study_key: str,
    version: str,
    comparison: pd.DataFrame,
    champion_value: float | None,
    champion_version: str | None,
    failed_refutations: list[str],
    auto_promote: bool,
) -> Decision:
    """The shared vetting rule on DR policy values, then the refutation gate; moves the aliases."""
    name = registry.model_name("incentive", study_key)
    values = dict(zip(comparison["policy"], comparison["dr_value"]))
    baselines = {p: {POLICY_METRIC: v} for p, v in values.items() if p not in ("recommended", "oracle")}
    rule = VettingRule(metric=POLICY_METRIC, baseline_metrics=(POLICY_METRIC,), auto_promote=auto_promote)
    champion = None if champion_value is None else {POLICY_METRIC: champion_value}
    decision = decide(rule, {POLICY_METRIC: values["recommended"]}, baselines, champion, champion_version)
    if decision.challenger and failed_refutations:
        decision = Decision(REJECTED, f"refutation(s) failed, promotion blocked: {', '.join(failed_refutations)} "
                                      f"(vetting alone said: {decision.decision}, {decision.reason})")
    if decision.challenger:
        client.set_registered_model_alias(name, registry.CHALLENGER, version)
    if decision.promote:
        registry.promote(client, name, version, decision.reason, by="vetting")
    for key, value in {"vetting.decision": decision.decision, "vetting.reason": decision.reason[:5000],
                       f"vetting.{POLICY_METRIC}": f"{values['recommended']:.2f}",
                       "vetting.baselines": json.dumps({k: round(v[POLICY_METRIC], 2) for k, v in baselines.items()})[:5000]}.items():
        client.set_model_version_tag(name, version, key, value)
    return decision


def log_figure_file(path: str, artifact_dir: str) -> None:
    mlflow.log_artifact(path, artifact_dir)


def tempdir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory()
