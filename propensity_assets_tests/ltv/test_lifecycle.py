"""The LTV stage on the shared lifecycle: real MLflow (SQLite in a temp dir), a real
Dagster instance, and a synthetic lake whose labels depend on the features, so the
permutations have something to learn and the baselines something to lose to.

Cutoff 2017-09-29 with H = 90 and history_weeks 4: vetting snapshot 2017-07-01, training
snapshots 06-03 .. 06-24; scores at 2017-09-29.
"""

import os
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
import pytest

from propensity_assets import registry
from propensity_assets.lake import Lake
from propensity_assets.lifecycle.assets import stage_definitions
from propensity_assets.lifecycle.frames import snapshot_plan
from propensity_assets.ltv.stage import LTV, LtvTraining
from propensity_assets.resources import LakeResource, MlflowResource, SparkResource
from propensity_assets_tests.synthetic import group_features, household_features

CUTOFF = "2017-09-29"
SCORE_AS_OF = "2017-09-29"
NAME = "ltv__grp_a"
HOUSEHOLDS = list(range(1, 301))
TINY = {
    "history_weeks": 4,
    "algorithms": ["lgbm_tweedie", "random_forest"],
    "reducers": ["none", "pca"],
    "feature_subsets": ["all"],
    "num_leaves": [7],
    "min_child_samples": [20],
    "tweedie_variance_power": [1.3],
    "rf_n_estimators": [30],
    "rf_max_depth": [8],
    "rf_min_samples_leaf": [10],
    "max_permutations": 3,
    "max_rounds": 200,
    "early_stopping_rounds": 20,
}
model_asset, champion_asset, scores_asset, decay_asset = stage_definitions(LTV, LtvTraining, 7).assets


def _label(grp: pd.DataFrame, rng) -> np.ndarray:
    # Future spend: heavy buyers keep buying, with a threshold effect a linear baseline misses.
    base = 1.4 * grp["grp_spend_90d"].to_numpy() + 25.0 * (grp["grp_baskets_30d"].to_numpy() >= 2)
    return np.maximum(base * rng.gamma(4.0, 0.25, len(grp)) - 5.0, 0.0)


@pytest.fixture(scope="module")
def world(tmp_path_factory, spark):
    tmp = tmp_path_factory.mktemp("ltv_lifecycle")
    rng = np.random.default_rng(929)
    plan = snapshot_plan(date.fromisoformat(CUTOFF), 90, TINY["history_weeks"], date(2017, 1, 1))
    hh_parts, grp_parts, label_parts = [], [], []
    for d in [*(str(x) for x in (*plan.train, plan.vetting)), SCORE_AS_OF]:
        hh = household_features(d, HOUSEHOLDS, rng)
        grp = group_features(d, "grp_a", hh, rng)
        hh_parts.append(hh), grp_parts.append(grp)
        if d != SCORE_AS_OF:
            label_parts.append(grp[["as_of", "product_group", "household_id"]].assign(label=_label(grp, rng)))
    lake = Lake(str(tmp / "lake"))
    lake.write_pandas("household_features", pd.concat(hh_parts), ["as_of"])
    lake.write_pandas("group_features", pd.concat(grp_parts), ["as_of", "product_group"])
    lake.write_pandas("ltv_labels", pd.concat(label_parts), ["as_of", "product_group"])
    resources = {
        "spark": SparkResource(spark_config={"spark.master": spark.conf.get("spark.master")}),
        "lake": LakeResource(uri=lake.root),
        "mlflow": MlflowResource(tracking_uri=f"sqlite:///{tmp}/mlflow.db", artifact_root=(tmp / "artifacts").as_uri()),
    }
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    try:
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("product_group", ["grp_a"])
            result = dg.materialize(
                [model_asset, champion_asset], partition_key=f"{CUTOFF}|grp_a", instance=instance, resources=resources,
                run_config={"ops": {"ltv_model": {"config": TINY}}},
            )
            assert result.success
            meta = {n: {k: v.value for k, v in result.asset_materializations_for_node(n)[0].metadata.items()}
                    for n in ("ltv_model", "ltv_champion")}
            yield SimpleNamespace(tmp=tmp, lake=lake, resources=resources, instance=instance, meta=meta,
                                  client=resources["mlflow"].client(), plan=plan)
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def test_every_permutation_is_a_child_run_and_the_parent_has_the_comparison(world):
    mv = world.client.get_model_version(NAME, "1")
    run = world.client.get_run(mv.run_id)
    children = world.client.search_runs([run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{mv.run_id}'")
    assert len(children) == 3
    # Stratified: with 4 (algorithm, reducer) strata and a budget of 3, no stratum twice.
    pairs = {(c.data.params["algorithm"], c.data.params["reducer"]) for c in children}
    assert len(pairs) == 3
    assert all({"rmse", "normalized_gini", "mae", "spearman", "top_decile_capture", "calibration"} <= set(c.data.metrics)
               for c in children)
    metrics = run.data.metrics
    for m in ("rmse", "mae", "normalized_gini", "spearman", "top_decile_capture", "calibration"):
        assert f"holdout_{m}" in metrics, m
    for base in ("previous_spend", "btyd"):
        assert f"baseline_{base}_rmse" in metrics and f"baseline_{base}_normalized_gini" in metrics
    assert run.data.params["best.algorithm"] in {"lgbm_tweedie", "random_forest"}
    artifacts = {a.path for a in world.client.list_artifacts(mv.run_id)} | {
        a.path for a in world.client.list_artifacts(mv.run_id, "plots")} | {
        a.path for a in world.client.list_artifacts(mv.run_id, "holdout")}
    assert {"plots/decile_plot.png", "plots/feature_importance.png", "holdout/deciles.json",
            "feature_importance.json", "search"} <= artifacts
    assert mv.tags["vetting_as_of"] == "2017-07-01" and mv.tags["horizon_days"] == "90"
    assert world.meta["ltv_model"]["training_window"] == "2017-06-03 .. 2017-06-24 (vetting snapshot 2017-07-01)"


def test_first_version_beats_both_baselines_and_becomes_champion(world):
    champion = world.meta["ltv_champion"]
    assert champion["decision"] == "champion", champion["reason"]
    tags = world.client.get_model_version(NAME, "1").tags
    assert tags["vetting.metric"] == "rmse" and tags["vetting.as_of"] == "2017-07-01"
    model = world.meta["ltv_model"]
    assert model["holdout_rmse"] < model["holdout_rmse"] * 2  # finite
    run = world.client.get_run(world.client.get_model_version(NAME, "1").run_id).data.metrics
    for base in ("previous_spend", "btyd"):
        assert run["holdout_rmse"] < run[f"baseline_{base}_rmse"], base
        assert run["holdout_normalized_gini"] > run[f"baseline_{base}_normalized_gini"], base


def test_scores_carry_horizon_and_version_and_match_the_lookup(world):
    result = dg.materialize(
        [scores_asset], partition_key=f"{SCORE_AS_OF}|grp_a", instance=world.instance, resources=world.resources,
    )
    assert result.success
    scores = world.lake.read_pandas("ltv_scores")
    assert list(scores.columns) == ["household_id", "ltv", "model_name", "model_version", "horizon_days", "as_of", "product_group"]
    assert sorted(scores["household_id"]) == HOUSEHOLDS
    assert (scores["ltv"] >= 0).all() and scores["ltv"].notna().all()
    assert set(scores["horizon_days"]) == {90} and set(scores["model_version"]) == {"1"}
    [mat] = result.asset_materializations_for_node("ltv_scores")
    deciles = mat.metadata["mean_by_decile"].value
    assert list(deciles) == [str(d) for d in range(1, 11)] and deciles["1"] >= deciles["10"]
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    looked_up = model.predict(scores[["household_id", "as_of"]])
    assert list(looked_up.columns) == ["household_id", "as_of", "ltv"]
    np.testing.assert_allclose(looked_up["ltv"].to_numpy(), scores["ltv"].to_numpy(), rtol=1e-12)
