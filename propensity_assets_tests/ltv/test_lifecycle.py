"""The LTV stage on the shared lifecycle: real MLflow (SQLite in a temp dir), a real
Dagster instance, and a synthetic lake whose labels depend on the features, so the
permutations have something to learn and the baselines something to lose to.

Cutoff 2017-09-29 with H = 90 and history_weeks 4: vetting snapshot 2017-07-01, training
snapshots 06-03 .. 06-24; scores at 2017-09-29.
"""

import dataclasses
import os
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
import pytest

from propensity_assets.shared import registry
from propensity_assets.shared.lake import Lake
from propensity_assets.lifecycle.assets import stage_definitions
from propensity_assets.lifecycle.frames import snapshot_plan
from propensity_assets.ltv.stage import LTV, LtvTraining
from propensity_assets.shared.resources import LakeResource, MlflowResource, SparkResource
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


def test_from_champion_refits_the_champions_permutation_alone(world):
    """`from_champion`: the champion's selected permutation, and only it, is fitted on the
    cutoff's snapshots (one child run); the run and the metadata say which version. Same
    cutoff, same seed: early stopping finds the champion's rounds again."""
    champion = world.client.get_model_version_by_alias(NAME, "champion")
    best = {k: v for k, v in world.client.get_run(champion.run_id).data.params.items() if k.startswith("best.")}
    assert world.meta["ltv_model"]["search"] == "space"
    result = dg.materialize(
        [model_asset], partition_key=f"{CUTOFF}|grp_a", instance=world.instance, resources=world.resources,
        run_config={"ops": {"ltv_model": {"config": {**TINY, "from_champion": True}}}},
    )
    assert result.success
    [mat] = result.asset_materializations_for_node("ltv_model")
    assert mat.metadata["search"].value == f"champion v{champion.version}"
    run = world.client.get_run(world.client.get_model_version(NAME, mat.metadata["model_version"].value).run_id)
    assert run.data.tags["search"] == f"champion v{champion.version}"
    [child] = world.client.search_runs([run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{run.info.run_id}'")
    chosen = {k.removeprefix("best."): v for k, v in best.items() if k != "best.rounds"}
    assert {k: child.data.params[k] for k in chosen} == chosen
    assert {k: v for k, v in run.data.params.items() if k.startswith("best.")} == best


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
    deciles = {r.data["decile"]: r.data["mean_ltv"] for r in mat.metadata["mean_by_decile"].records}
    assert list(deciles) == list(range(1, 11)) and deciles[1] >= deciles[10]
    # The partition's own figures: its rows and mean, as the lake holds them.
    assert mat.metadata["rows"].value == mat.metadata["dagster/row_count"].value == len(scores)
    assert mat.metadata["ltv_mean"].value == pytest.approx(scores["ltv"].mean(), rel=1e-12)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    looked_up = model.predict(scores[["household_id", "as_of"]])
    assert list(looked_up.columns) == ["household_id", "as_of", "ltv"]
    np.testing.assert_allclose(looked_up["ltv"].to_numpy(), scores["ltv"].to_numpy(), rtol=1e-12)


def _copy_of_version_1(client) -> str:
    """Register version 1 of `ltv__grp_a` again: a new candidate at the same cutoff."""
    mv = client.get_model_version(NAME, "1")
    keep = {k: v for k, v in mv.tags.items() if not k.startswith("vetting.")}
    return str(client.create_model_version(NAME, mv.source, run_id=mv.run_id, tags=keep).version)


def test_vetting_tests_a_loss_to_a_baseline_on_rmse_by_paired_bootstrap(world):
    """The real vetting path (MLflow, the lake's vetting snapshot) with two made-up
    baselines on RMSE: one that equals the candidate except on the household with the
    worst error, where it is exact (a tie: worse only in resamples that draw that
    household, 1 − (1 − 1/300)^300 = 63.3 % of them), and the actual spend itself (a
    certain loss). The candidates are copies of the champion v1, so they tie it too."""
    from propensity_assets.lifecycle import promotion, vetting
    from propensity_assets.lifecycle.config import VettingConfig, rule_for

    def near_copy(frame, horizon):
        predicted = promotion.predict_version(NAME, "1", frame)
        worst = int(np.argmax(np.abs(frame["label"].to_numpy() - predicted)))
        predicted[worst] = frame["label"].iloc[worst]
        return {"near_copy": predicted}

    mlflow_res = world.resources["mlflow"]
    rule = rule_for(LTV, VettingConfig(auto_promote=False))
    assert rule.baseline_confidence == 0.95
    with pytest.raises(dg.Failure) as bad:
        rule_for(LTV, VettingConfig(baseline_confidence=95))
    assert bad.value.description == (
        "vetting baseline_confidence 95.0 is not a probability in [0, 1): 0.95 rejects a candidate only when it is "
        "worse than a baseline with 95 % confidence, 0 requires beating it")
    rule = vetting.VettingRule(**{**rule.__dict__, "baseline_metrics": ("rmse",)})
    version = _copy_of_version_1(world.client)
    tie = promotion.vet(dataclasses.replace(LTV, baselines=near_copy), world.lake, mlflow_res, "grp_a", CUTOFF, rule)
    assert (tie.candidate_version, tie.decision, tie.champion_now) == (version, "challenger", "1"), (tie.reason, tie.p_worse)
    assert abs(tie.p_worse["near_copy"] - (1 - (1 - 1 / 300) ** 300)) < 0.05, (tie.reason, tie.p_worse)
    rmse = f"{tie.candidate['rmse']:.4f}"
    assert tie.reason.startswith(f"rmse {rmse} ≤ champion v1 {rmse} + 0.0 (a tie with near_copy on rmse ({rmse} vs ")
    tags = world.client.get_model_version(NAME, version).tags
    assert tags["vetting.p_worse_than_near_copy"] == f"{tie.p_worse['near_copy']:.3f}"

    version = _copy_of_version_1(world.client)
    oracle = dataclasses.replace(LTV, baselines=lambda frame, h: {"actual": frame["label"].to_numpy()})
    loss = promotion.vet(oracle, world.lake, mlflow_res, "grp_a", CUTOFF, rule)
    assert (loss.candidate_version, loss.decision, loss.p_worse, loss.champion_now) == (version, "rejected", {"actual": 1.0}, "1")
    assert loss.reason == (f"does not beat the naive baseline(s): actual on rmse ({rmse} vs 0.0000, "
                           "worse with probability 1.000 ≥ 0.95)")
