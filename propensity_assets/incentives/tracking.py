"""MLflow for the incentive studies: a study's runs, and its recommender's registration and vetting.

No Dagster here; the assets call these with the MLflow resource's client. One
experiment, `incentives`; every run is tagged with its study and its kind (`stage`) so
the recommender finds the estimators of the latest effects run. A recommender is
registered, vetted and promoted through the lifecycle's registry path
(`lifecycle.registration`), as `incentive__<study>`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd

from propensity_assets.lifecycle import registration
from propensity_assets.lifecycle.vetting import Decision
from propensity_assets.shared import registry

# A study's MLflow runs, tagged `stage` with their kind: the causal graph, the effect estimators.
STUDY_RUNS = ("graph", "effects")

EXPERIMENT = "incentives"
ESTIMATORS_ARTIFACT = "estimators/estimators.joblib"
STUDY_PIP_REQUIREMENTS = ["econml", "lightgbm", "scikit-learn", "pandas<3", "mlflow", "joblib"]
RETAIL_PIP_REQUIREMENTS = ["mlflow", "pandas<3", "numpy"]


def model_name(study: str) -> str:
    """`incentive__<study>`: a catalogue study's key, or `retail_<group>`."""
    return registry.model_name("incentive", study)


def study_run(experiment_id: str, study: str, kind: str):
    """An MLflow run tagged with its study and kind (the recommender finds its estimators by them)."""
    import mlflow

    run = mlflow.start_run(experiment_id=experiment_id, run_name=f"{study} {kind}")
    mlflow.set_tags({"incentive_study": study, "stage": kind})
    return run


def latest_run(client, experiment_id: str, study: str, kind: str):
    model_name(study)  # a valid study key: nothing can inject into the filter below
    if kind not in STUDY_RUNS:
        raise ValueError(f"unknown incentive study run {kind!r}; expected one of {STUDY_RUNS}")
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.incentive_study = '{study}' and tags.stage = '{kind}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        raise LookupError(f"no finished MLflow '{kind}' run for incentive study {study!r} in experiment "
                          f"{EXPERIMENT!r}: materialize incentive_effects for study={study} first")
    return runs[0]


def recommender_bundle(estimates, study, fallback: str | None = None) -> dict:
    """What the recommender needs of the total effects' estimates (`IncentiveRecommender`)."""
    totals = {e.treatment: e for e in estimates if e.effect == "total"}
    return {
        "estimators": {t: e.model for t, e in totals.items()},
        "modifiers": {t: e.modifiers for t, e in totals.items()},
        # What the recommender may use: a CATE that failed validation gives way to the ATE, and
        # outside overlap (the propensity model says where) a model that failed there gives none.
        "use_cate": {t: e.cate_drives_policy for t, e in totals.items()},
        "ate": {t: e.ate for t, e in totals.items()},
        "extrapolates": {t: e.extrapolation is None or e.extrapolation.passed for t, e in totals.items()},
        "propensity_models": {t: e.propensity_model for t, e in totals.items()},
        "features": {t: list(e.modifiers) for t, e in totals.items()},  # of the propensity models
        "costs": {t.name: t.cost for t in study.treatments},
        "treatments": study.treatment_names,
        "id_column": study.id_column,
        "fallback": fallback,  # the option for units without a validated CATE
    }


def save_estimators(path: Path, estimates, study) -> None:
    import joblib

    joblib.dump(recommender_bundle(estimates, study), path)


def unit_signature(example: pd.DataFrame):
    """The input schema of a recommender: column types as in the study's table, the unit id
    optional (it is passed through when given)."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import ColSpec, Schema

    inferred = infer_signature(example).inputs.inputs
    return ModelSignature(inputs=Schema([ColSpec(c.type, c.name, required=c.name != "unit_id") for c in inferred]))


def register_recommender(
    experiment_id: str, study: str, python_model, artifacts: dict[str, str], example: pd.DataFrame,
    pip_requirements: list[str], tags: dict, params: dict | None = None,
) -> tuple[str, str]:
    """Log a recommender pyfunc in its own run and register it as `incentive__<study>`; (version, run_id)."""
    import mlflow

    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{study} recommender") as run:
        mlflow.set_tags({"incentive_study": study, "stage": "recommender", **tags})
        if params:
            mlflow.log_params(params)
        version = registration.log_and_register(
            model_name(study), python_model, artifacts=artifacts, input_example=example,
            signature=unit_signature(example), pip_requirements=pip_requirements,
        )
    return version, run.info.run_id


def register_study_recommender(experiment_id: str, study, estimators_file: str, example: pd.DataFrame, tags: dict) -> tuple[str, str]:
    """The catalogue study's recommender (its DML estimators) as `incentive__<study>`; (version, run_id)."""
    from propensity_assets.incentives.recommender import IncentiveRecommender

    return register_recommender(experiment_id, study.key, IncentiveRecommender(), {"estimators": estimators_file},
                                example, STUDY_PIP_REQUIREMENTS, tags)


def register_retail_recommender(experiment_id: str, study: str, policy, example: pd.DataFrame, tags: dict,
                                params: dict) -> tuple[str, str]:
    """A retail study's recommender (its CATE projections) as `incentive__retail_<group>`; (version, run_id)."""
    from propensity_assets.incentives.retail_policy import RetailRecommender

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.json"
        path.write_text(json.dumps(policy.to_dict()))
        return register_recommender(experiment_id, study, RetailRecommender(), {"policy": str(path)}, example,
                                    RETAIL_PIP_REQUIREMENTS, tags, params)


def champion_options(study: str, data: pd.DataFrame, client) -> tuple[str, pd.Series] | None:
    """(version, options) the current champion recommends on `data`, or None without a champion."""
    name = model_name(study)
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    if champion is None:
        return None
    model = registration.load_model(name, alias=registry.CHAMPION)
    return str(champion.version), model.predict(data)["recommended"].to_numpy()


def record_vetting(client, study: str, version: str, decision: Decision, tags: dict[str, str]) -> None:
    """Move the aliases of `incentive__<study>` as the vetting `decision` says (`challenger` on
    every vetted version, `champion` when it promotes) and tag the version, through the
    lifecycle's registry path."""
    registration.apply_decision(client, model_name(study), version, decision, tags, challenger=decision.challenger)


def tempdir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory()
