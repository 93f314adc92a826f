"""The propensity lifecycle end to end on real Dagster, real MLflow (SQLite in a temp dir)
and a synthetic lake: train + register → vet + promote → score → look up.

The lake holds household_features, group_features and propensity_labels partitions with
the columns the real feature assets write, for the weekly snapshots a cutoff of
2017-06-02 needs with `history_weeks=4` (training 04-05 .. 04-26, vetting 05-03), one
more week (03-29) for a cutoff a week earlier, and features for the scoring date
2017-06-02.

Signals. In `grp_a` the label depends on grp_baskets_30d and grp_spend_share_30d plus
noise, while grp_days_since_last and grp_baskets_90d (what the naive baselines rank by)
are noise: a fitted model beats the baselines clearly, so vetting is not a coin toss,
and a one-split stump is clearly worse than the full model. In `grp_b` the label *is*
recency (bought in the last 30 days), so the recency baseline is perfect and no model
can beat it: vetting must reject it, and grp_b is left without a champion.

One module-scoped world trains, in order:
  v1 grp_a  good search space, auto_promote off → champion (none existed)
  v2 grp_a  a stump (num_leaves 2, 1 round), auto_promote on → rejected, champion stays v1
  v3 grp_a  the good space again (same model), auto_promote off → challenger only
  v4 grp_a  the good space again, auto_promote on → champion
  v1 grp_b  → rejected (does not beat the recency baseline), no champion
  v5 grp_a  at the earlier cutoff 2017-05-26, auto_promote on → refused: its vetting
            snapshot (04-26) is the champion's own last training snapshot
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from propensity_assets.shared import registry
from propensity_assets.features.declaration import GROUP, HOUSEHOLD
from propensity_assets.features.lookup import FeatureLookupError, feature_matrix
from propensity_assets.shared.lake import Lake
from propensity_assets.lifecycle.frames import snapshot_plan
from propensity_assets.propensity.assets import lifecycle
from propensity_assets.shared.resources import LakeResource, MlflowResource, SparkResource
from propensity_assets_tests.synthetic import group_features, household_features

BIN = Path(sys.executable).parent
propensity_model, propensity_champion, propensity_scores, propensity_decay = lifecycle.assets
CUTOFF = "2017-06-02"  # a Friday
EARLIER_CUTOFF = "2017-05-26"
# After the cutoff the world changes: grp_a's labels become coin flips, so the champion decays.
DECAY_DATES = ["2017-06-09", "2017-06-16"]
SCORE_AS_OF = "2017-06-02"
NAME = "propensity__grp_a"
HOUSEHOLDS = list(range(1, 241))
LATE_JOINERS = list(range(241, 261))  # in the population from 2017-05-03 on

GOOD = {
    "history_weeks": 4,
    "num_leaves": [7, 15],
    "learning_rate": [0.1],
    "min_child_samples": [20],
    "feature_fraction": [1.0],
    "lambda_l2": [0.0],
    "max_trials": 2,
    "max_rounds": 60,
    "early_stopping_rounds": 15,
}
STUMP = {**GOOD, "num_leaves": [2], "max_trials": 1, "max_rounds": 1}


# -- the synthetic lake --------------------------------------------------------------------


def _dates() -> tuple[list[date], list[date]]:
    plan = snapshot_plan(date.fromisoformat(CUTOFF), 30, GOOD["history_weeks"], date(2017, 1, 1))
    return list(plan.train), [plan.vetting]


def _population(as_of: str) -> list[int]:
    return HOUSEHOLDS + (LATE_JOINERS if as_of >= "2017-05-03" else [])


def _labels(group: str, grp: pd.DataFrame, rng) -> pd.DataFrame:
    if group == "grp_a":
        logit = -0.8 + 1.0 * (grp["grp_baskets_30d"] - 1.5) + 5.0 * (grp["grp_spend_share_30d"] - 0.5)
        label = (rng.random(len(grp)) < 1 / (1 + np.exp(-logit))).astype("int32")
    else:  # grp_b: the label is recency itself
        label = (grp["grp_days_since_last"] <= 30).astype("int32")
    return pd.DataFrame(
        {"as_of": grp["as_of"], "product_group": group, "household_id": grp["household_id"], "label": label}
    )


def build_lake(root: str) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(20170602)
    train, valid = _dates()
    hh_parts, grp_parts, label_parts = [], [], []
    for d in ["2017-03-29", *(str(x) for x in train + valid), SCORE_AS_OF, *DECAY_DATES]:
        hh = household_features(d, _population(d), rng)
        hh_parts.append(hh)
        for group in ("grp_a", "grp_b"):
            grp = group_features(d, group, hh, rng)
            grp_parts.append(grp)
            if d < SCORE_AS_OF:
                label_parts.append(_labels(group, grp, rng))
            elif group == "grp_a":  # labels that closed later, for the decay curve: noise
                label_parts.append(grp[["as_of", "product_group", "household_id"]].assign(
                    label=(rng.random(len(grp)) < 0.4).astype("int32")))
    tables = {
        "household_features": pd.concat(hh_parts, ignore_index=True),
        "group_features": pd.concat(grp_parts, ignore_index=True),
        "propensity_labels": pd.concat(label_parts, ignore_index=True),
    }
    lake = Lake(root)
    lake.write_pandas("household_features", tables["household_features"], ["as_of"])
    lake.write_pandas("group_features", tables["group_features"], ["as_of", "product_group"])
    lake.write_pandas("propensity_labels", tables["propensity_labels"], ["as_of", "product_group"])
    return tables


# -- the world: one lake, one MLflow store, one Dagster instance, five trainings -----------


def _run_config(training: dict, auto_promote: bool) -> dict:
    return {
        "ops": {
            "propensity_model": {"config": training},
            "propensity_champion": {"config": {"auto_promote": auto_promote}},
        }
    }


def _materializations(result, node: str) -> dict:
    [mat] = result.asset_materializations_for_node(node)
    return {k: v.value for k, v in mat.metadata.items()}


def _aliases(client: MlflowClient, name: str) -> dict:
    # MLflow 3.17 reports versions as ints, earlier releases as strings.
    return dict(sorted({a: str(v) for a, v in client.get_registered_model(name).aliases.items()}.items()))


def _champion(client: MlflowClient, name: str = NAME) -> str | None:
    mv = registry.version_by_alias(client, name, registry.CHAMPION)
    return None if mv is None else str(mv.version)


@pytest.fixture(scope="module")
def world(tmp_path_factory, spark):
    tmp = tmp_path_factory.mktemp("propensity_lifecycle")
    lake_root = str(tmp / "lake")
    tables = build_lake(lake_root)
    tracking_uri = f"sqlite:///{tmp}/mlflow.db"
    resources = {
        "spark": SparkResource(spark_config={"spark.master": spark.conf.get("spark.master")}),
        "lake": LakeResource(uri=lake_root),
        "mlflow": MlflowResource(tracking_uri=tracking_uri, artifact_root=(tmp / "artifacts").as_uri()),
    }
    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "PROPENSITY_LAKE_URI")}
    try:
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("product_group", ["grp_a", "grp_b"])
            client = resources["mlflow"].client()

            def train(training: dict, auto_promote: bool, key: str = f"{CUTOFF}|grp_a"):
                result = dg.materialize(
                    [propensity_model, propensity_champion],
                    partition_key=key,
                    instance=instance,
                    resources=resources,
                    run_config=_run_config(training, auto_promote),
                )
                assert result.success
                return SimpleNamespace(
                    model=_materializations(result, "propensity_model"),
                    champion=_materializations(result, "propensity_champion"),
                    aliases=_aliases(client, registry.model_name("propensity", key.split("|")[1])),
                )

            steps = {
                "v1": train(GOOD, auto_promote=False),
                "v2": train(STUMP, auto_promote=True),
                "v3": train(GOOD, auto_promote=False),
                "v4": train(GOOD, auto_promote=True),
                "b1": train(GOOD, auto_promote=True, key=f"{CUTOFF}|grp_b"),
                "v5": train(GOOD, auto_promote=True, key=f"{EARLIER_CUTOFF}|grp_a"),
            }
            yield SimpleNamespace(
                tmp=tmp, lake_root=lake_root, lake=Lake(lake_root), tables=tables, tracking_uri=tracking_uri,
                resources=resources, instance=instance, client=client, steps=steps,
            )
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# -- training and registration -------------------------------------------------------------


def test_first_version_is_registered_with_everything_logged(world):
    client = world.client
    mv = client.get_model_version(NAME, "1")
    run = client.get_run(mv.run_id)
    train, valid = _dates()

    params = run.data.params
    assert params["best.num_leaves"] in ("7", "15")
    assert params["best.learning_rate"] == "0.1"
    assert {"best.rounds", "train_rows", "fit_rows", "selection_rows", "holdout_rows", "search_space"} <= set(params)
    assert int(params["holdout_rows"]) == len(_population(str(valid[0])))
    assert int(params["train_rows"]) == len(HOUSEHOLDS) * len(train)
    # A household-grouped 20 % of the training rows chooses among trials: 48 of 240 households.
    assert int(params["selection_rows"]) == 48 * len(train)
    assert int(params["fit_rows"]) + int(params["selection_rows"]) == int(params["train_rows"])

    metrics = run.data.metrics
    for m in ("roc_auc", "average_precision", "brier", "log_loss", "lift_top_decile"):
        assert f"holdout_{m}" in metrics and f"selection_{m}" in metrics, m
    assert 0.7 < metrics["holdout_roc_auc"] <= 1.0  # the signal is learnable
    assert metrics["holdout_roc_auc"] > metrics["baseline_recency_roc_auc"]
    assert metrics["holdout_roc_auc"] > metrics["baseline_baskets_90d_roc_auc"]
    assert metrics["train_seconds"] > 0

    tags = run.data.tags
    assert tags["cutoff"] == CUTOFF
    assert tags["product_group"] == "grp_a" and tags["stage"] == "propensity"
    assert tags["train_as_of_min"] == "2017-04-05" and tags["train_as_of_max"] == "2017-04-26"
    assert tags["vetting_as_of"] == "2017-05-03" and tags["horizon_days"] == "30"
    assert tags["code_version"].startswith("propensity_assets ")
    assert tags["dagster_run_id"]
    # The training window is on the registered version too, where vetting reads it.
    assert mv.tags["cutoff"] == CUTOFF and mv.tags["vetting_as_of"] == "2017-05-03"
    assert mv.tags["train_as_of_max"] == "2017-04-26"

    # Every trial of the search is a child run with its parameters and selection metrics.
    children = client.search_runs([run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{mv.run_id}'")
    assert sorted(c.data.tags["trial"] for c in children) == ["0", "1"]  # GOOD: num_leaves 7 and 15
    assert sorted(c.data.params["num_leaves"] for c in children) == ["15", "7"]
    assert all({"average_precision", "roc_auc", "best_iteration"} <= set(c.data.metrics) for c in children)

    plots = {Path(a.path).name for a in client.list_artifacts(mv.run_id, "plots")}
    assert {"roc_curve.png", "precision_recall_curve.png", "calibration_curve.png", "feature_importance.png"} <= plots
    calibration = {Path(a.path).name for a in client.list_artifacts(mv.run_id, "holdout")}
    assert calibration == {"calibration.json"}
    features = mlflow.artifacts.load_dict(f"runs:/{mv.run_id}/features.json")["features"]
    assert "grp_baskets_30d" in features and "grp_overdue_ratio" in features
    assert set(features) >= set(HOUSEHOLD.columns)
    assert set(features) >= set(GROUP.columns)

    info = mlflow.models.get_model_info(f"models:/{NAME}/1")
    inputs = info.signature.inputs.input_names()
    assert inputs[:2] == ["household_id", "as_of"]
    assert inputs[2:] == features  # the model records its features in the signature ...
    assert info.signature.outputs.input_names() == ["household_id", "as_of", "score"]
    config = info.flavors["python_function"]["config"]
    assert mlflow.pyfunc.load_model(f"models:/{NAME}/1").model_config == config
    assert config["features"] == features  # ... and in its model_config
    assert config["product_group"] == "grp_a" and config["output_column"] == "score"
    assert config["lake_uri"] == world.lake_root


def test_materialization_metadata(world):
    v1 = world.steps["v1"]
    assert v1.model["model_name"] == NAME
    assert v1.model["model_version"] == "1"
    run_id = world.client.get_model_version(NAME, "1").run_id
    assert v1.model["mlflow_run_id"] == run_id
    assert v1.model["mlflow_run"].endswith(f"/runs/{run_id}")
    assert v1.model["training_window"] == "2017-04-05 .. 2017-04-26 (vetting snapshot 2017-05-03)"
    assert 0 <= v1.model["holdout_roc_auc"] <= 1
    assert 0 <= v1.model["holdout_brier"] <= 0.25  # better than a coin
    assert {"mean_predicted", "observed_rate"} <= {c.name for c in v1.model["calibration"].schema.columns}
    # Within the default row budget: nothing sampled, and the metadata says so.
    train_rows = int(world.client.get_run(run_id).data.params["train_rows"])
    assert v1.model["training_sampled"] is False
    assert v1.model["training_rows_available"] == v1.model["training_rows_used"] == train_rows
    assert [r.data["stratum"] for r in v1.model["training_sample"].records] == ["positive", "zero"]
    assert v1.champion["model_version"] == "1"
    assert v1.champion["decision"] == "champion"
    assert v1.champion["champion_version"] == "1"


# -- vetting and promotion -----------------------------------------------------------------


def test_first_good_version_becomes_champion(world):
    v1 = world.steps["v1"]
    assert v1.aliases == {"champion": "1"}  # auto_promote was off: no champion existed
    tags = world.client.get_model_version(NAME, "1").tags
    assert tags["vetting.decision"] == "champion"
    assert "no champion existed" in tags["vetting.reason"]
    assert tags["promotion.by"] == "vetting"


def test_every_version_carries_its_card_and_the_evaluation_charts(world):
    """The description (card) of a registered version: window, selected configuration, the
    vetting decision with its figures and, once promoted, the promotion; the gains, lift and
    calibration charts and the decile table on its MLflow run (training and vetting)."""
    client = world.client
    v4 = client.get_model_version(NAME, "4")
    params = client.get_run(v4.run_id).data.params
    card = v4.description
    assert card.startswith("**propensity__grp_a version 4**")
    assert ("- trained at cutoff 2017-06-02 on the snapshots 2017-04-05 .. 2017-04-26; vetting snapshot 2017-05-03; "
            "label window 30 days") in card
    assert f"num_leaves={params['best.num_leaves']}" in card and f"rounds={params['best.rounds']}" in card
    assert f"- vetting decision: **champion**: {v4.tags['vetting.reason']}" in card
    assert f"candidate_average_precision {v4.tags['vetting.candidate_average_precision']}" in card
    assert "- promoted to champion by vetting, replacing version 1: auto-promoted" in card
    rejected = client.get_model_version(NAME, "2").description
    assert "- vetting decision: **rejected**: average_precision" in rejected and "promoted" not in rejected
    for folder in ("evaluation", "vetting"):
        files = {Path(a.path).name for a in client.list_artifacts(v4.run_id, folder)}
        assert files == {"gains.png", "lift.png", "calibration.png", "deciles.json"}, folder
    # The model partition shows the same: numbers for the Plots tab, the decile table, the charts.
    meta = world.steps["v4"].model
    assert isinstance(meta["holdout_average_precision"], float)
    assert isinstance(meta["baseline_recency_average_precision"], float)
    deciles = meta["deciles"]
    assert [c.name for c in deciles.schema.columns] == [
        "decile", "households", "mean_prediction", "mean_actual", "lift", "cumulative_share"]
    assert [r.data["decile"] for r in deciles.records] == list(range(1, 11))
    assert sum(r.data["households"] for r in deciles.records) == len(_population("2017-05-03"))
    assert math.isclose(deciles.records[-1].data["cumulative_share"], 1.0)
    for chart in ("cumulative gains", "lift by decile", "predicted vs actual"):
        assert meta[f"chart: {chart}"].startswith(f"![{chart}](data:image/png;base64,")
    champion = world.steps["v4"].champion
    assert champion["decision"] == "champion" and champion["champion_before"] == "1"
    assert champion["candidate_average_precision"] == pytest.approx(float(v4.tags["vetting.candidate_average_precision"]), abs=1e-6)
    assert champion["champion_average_precision"] == pytest.approx(float(v4.tags["vetting.champion_average_precision"]), abs=1e-6)
    assert champion["chart: cumulative gains"].startswith("![cumulative gains](data:image/png;base64,")


def test_worse_model_is_rejected_even_with_auto_promote(world):
    v2 = world.steps["v2"]
    assert v2.model["model_version"] == "2"
    assert v2.champion["decision"] == "rejected"
    assert v2.champion["champion_version"] == "1"
    assert v2.aliases == {"champion": "1"}
    tags = world.client.get_model_version(NAME, "2").tags
    assert tags["vetting.decision"] == "rejected"
    # A stump (one split) is worse than the champion's full model on the same window.
    assert "< champion v1" in tags["vetting.reason"]
    assert tags["vetting.champion_version"] == "1"
    assert float(tags["vetting.candidate_average_precision"]) < float(tags["vetting.champion_average_precision"])
    assert tags["vetting.reason"] == v2.champion["reason"]


def test_as_good_model_without_auto_promote_is_challenger_only(world):
    v3 = world.steps["v3"]
    assert v3.champion["decision"] == "challenger"
    assert v3.aliases == {"champion": "1", "challenger": "3"}
    tags = world.client.get_model_version(NAME, "3").tags
    assert tags["vetting.decision"] == "challenger"
    assert "≥ champion v1" in tags["vetting.reason"]


def test_as_good_model_with_auto_promote_becomes_champion(world):
    v4 = world.steps["v4"]
    assert v4.champion["decision"] == "champion"
    assert v4.champion["champion_version"] == "4"
    # Promoted, v4 is no challenger; the alias stays on v3, vetted and not promoted.
    assert v4.aliases == {"champion": "4", "challenger": "3"}
    tags = world.client.get_model_version(NAME, "4").tags
    assert tags["promotion.by"] == "vetting"
    assert tags["promotion.replaced_version"] == "1"
    assert tags["promotion.reason"].startswith("auto-promoted")


def test_model_that_does_not_beat_the_baselines_is_rejected(world):
    b1 = world.steps["b1"]
    assert b1.champion["decision"] == "rejected"
    assert "baseline" in b1.champion["reason"] and "recency" in b1.champion["reason"]
    assert b1.aliases == {}
    tags = world.client.get_model_version("propensity__grp_b", "1").tags
    assert tags["vetting.decision"] == "rejected"


def test_older_cutoff_candidate_is_refused_not_vetted_on_the_champions_training_rows(world):
    v5 = world.steps["v5"]
    assert v5.model["model_version"] == "5"
    assert v5.model["training_window"] == "2017-03-29 .. 2017-04-19 (vetting snapshot 2017-04-26)"
    assert v5.champion["decision"] == "refused"
    # The champion (v4, cutoff 06-02) was fitted on snapshots up to 04-26: scoring it there
    # would flatter it, so nothing is compared and nothing moves.
    assert v5.champion["reason"].startswith(
        "the vetting snapshot 2017-04-26 is not later than champion v4's training data (up to 2017-04-26)"
    )
    assert v5.aliases == {"champion": "4", "challenger": "3"}
    tags = world.client.get_model_version(NAME, "5").tags
    assert tags["vetting.decision"] == "refused" and "vetting.champion_version" not in tags


# -- scoring -------------------------------------------------------------------------------


def test_scores_with_the_champion(world):
    result = dg.materialize(
        [propensity_scores], partition_key=f"{SCORE_AS_OF}|grp_a", instance=world.instance, resources=world.resources
    )
    assert result.success
    meta = _materializations(result, "propensity_scores")
    champion = _champion(world.client)
    assert meta["model_version"] == champion
    assert meta["partitions_written"] == 1

    assert world.lake.exists("propensity_scores", {"as_of": SCORE_AS_OF, "product_group": "grp_a"})
    scores = world.lake.read_pandas("propensity_scores")
    assert sorted(scores.columns) == sorted(
        ["as_of", "product_group", "household_id", "score", "model_name", "model_version"]
    )
    assert set(scores["as_of"]) == {SCORE_AS_OF} and set(scores["product_group"]) == {"grp_a"}
    population = _population(SCORE_AS_OF)
    assert sorted(scores["household_id"]) == population  # every household, once
    assert scores["score"].between(0, 1).all() and scores["score"].notna().all()
    assert set(scores["model_name"]) == {NAME} and set(scores["model_version"]) == {champion}
    assert meta["rows"] == len(population)
    # They are the champion's lookup scores for those keys.
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    looked_up = model.predict(scores[["household_id", "as_of"]].assign(household_id=lambda f: f["household_id"].astype("int64")))
    np.testing.assert_allclose(scores["score"].to_numpy(), looked_up["score"].to_numpy(), rtol=1e-12)


def test_scoring_without_a_champion_says_how_to_get_one(world):
    with pytest.raises(dg.Failure) as info:
        dg.materialize(
            [propensity_scores], partition_key=f"{SCORE_AS_OF}|grp_b", instance=world.instance,
            resources=world.resources,
        )
    message = str(info.value)
    assert "propensity__grp_b" in message
    assert "propensity-assets promote grp_b <version>" in message
    assert not world.lake.exists("propensity_scores", {"as_of": SCORE_AS_OF, "product_group": "grp_b"})


# -- the lookup pyfunc ---------------------------------------------------------------------


def _explicit_features(world, hids: list[int], as_of: str = SCORE_AS_OF) -> pd.DataFrame:
    hh = world.tables["household_features"]
    grp = world.tables["group_features"]
    hh = hh[(hh["as_of"] == as_of) & hh["household_id"].isin(hids)]
    grp = grp[(grp["as_of"] == as_of) & (grp["product_group"] == "grp_a") & grp["household_id"].isin(hids)]
    frame = feature_matrix(hh, grp.drop(columns=["product_group"]))
    return frame.set_index("household_id").loc[hids].reset_index()


@pytest.mark.parametrize("lake_from", ["env", "recorded"])
def test_lookup_pyfunc_matches_explicit_features(world, lake_from, monkeypatch):
    if lake_from == "env":
        # Point the model at the lake through the environment, not the recorded URI.
        monkeypatch.setenv("PROPENSITY_LAKE_URI", world.lake_root)
    else:
        monkeypatch.delenv("PROPENSITY_LAKE_URI", raising=False)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    hids = [5, 1, 250, 77, 3]
    keys = pd.DataFrame({"household_id": hids, "as_of": [SCORE_AS_OF] * len(hids)})
    looked_up = model.predict(keys)
    assert looked_up.columns.tolist() == ["household_id", "as_of", "score"]
    assert looked_up["household_id"].tolist() == hids  # input order is kept

    features = model.metadata.signature.inputs.input_names()[2:]
    explicit = _explicit_features(world, hids)
    direct = model.predict(explicit[["household_id", "as_of", *features]])
    np.testing.assert_allclose(looked_up["score"].to_numpy(), direct["score"].to_numpy(), rtol=1e-12)
    assert looked_up["score"].between(0, 1).all()



def test_lookup_pyfunc_lake_from_the_environment_wins(world, tmp_path, monkeypatch):
    # PROPENSITY_LAKE_URI overrides the lake recorded at training: an empty lake there
    # means no features, although the recorded lake has them.
    monkeypatch.setenv("PROPENSITY_LAKE_URI", str(tmp_path))
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    with pytest.raises(Exception, match=f"household_features.*as_of={SCORE_AS_OF}"):
        model.predict(pd.DataFrame({"household_id": [1], "as_of": [SCORE_AS_OF]}))


def test_lookup_pyfunc_unknown_household_gets_nan(world):
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    keys = pd.DataFrame({"household_id": [1, 999_999, 2], "as_of": [SCORE_AS_OF] * 3})
    scores = model.predict(keys)["score"]
    assert np.isnan(scores.iloc[1])
    assert scores.iloc[[0, 2]].notna().all()


def test_lookup_pyfunc_late_joiner_not_in_population_gets_nan(world):
    # Household 250 joins the population on 2017-05-03: at 2017-04-26 it has no features.
    model = mlflow.pyfunc.load_model(f"models:/{NAME}/1")
    scores = model.predict(pd.DataFrame({"household_id": [250, 1], "as_of": ["2017-04-26"] * 2}))["score"]
    assert np.isnan(scores.iloc[0]) and not np.isnan(scores.iloc[1])


def test_lookup_pyfunc_missing_partition_names_table_and_partition(world):
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    with pytest.raises(Exception) as info:
        model.predict(pd.DataFrame({"household_id": [1], "as_of": ["2017-07-07"]}))
    assert isinstance(info.value, FeatureLookupError) or "household_features" in str(info.value)
    assert "household_features" in str(info.value)
    assert "as_of=2017-07-07" in str(info.value)


# -- manual promotion ----------------------------------------------------------------------


def test_manual_promotion_via_registry_and_cli(world):
    client = world.client
    before = _champion(client)
    try:
        mv = registry.promote(client, NAME, "2", "marketing asked for it")
        assert mv.aliases and "champion" in mv.aliases
        assert _champion(client) == "2"
        assert mv.tags["promotion.by"] == "manual"
        assert mv.tags["promotion.reason"] == "marketing asked for it"
        assert mv.tags["promotion.replaced_version"] == before

        env = {**os.environ, "MLFLOW_TRACKING_URI": world.tracking_uri}
        env.pop("MLFLOW_REGISTRY_URI", None)
        cli = [str(BIN / "propensity-assets"), "promote"]
        # Both commands at once (each start-up imports MLflow); the unknown version changes nothing.
        procs = [
            subprocess.Popen([*cli, "grp_a", v], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for v in ("3", "99")
        ]
        (ok_out, ok_err), (bad_out, bad_err) = (p.communicate(timeout=300) for p in procs)
        assert procs[0].returncode == 0, ok_err
        assert "propensity__grp_a: champion -> version 3" in ok_out
        assert _champion(client) == "3"
        tags = client.get_model_version(NAME, "3").tags
        assert tags["promotion.by"] == "manual" and tags["promotion.replaced_version"] == "2"

        assert procs[1].returncode == 2, bad_err
        assert "cannot promote propensity__grp_a version 99" in bad_err

        with pytest.raises(Exception):
            registry.promote(client, NAME, "99", "no such version")
    finally:
        registry.promote(client, NAME, before, "restore after the test")


# -- scoring: isolation, in-sample refusal, the run's lake, standalone loading --------------


def test_one_group_without_a_champion_does_not_stop_the_others(world):
    """A two-group range in one run: grp_a is written and materialized; grp_b (no champion)
    is not materialized, and its skip reason is an observation of its partition."""
    tags = {
        "dagster/asset_partition_range_start": f"{SCORE_AS_OF}|grp_a",
        "dagster/asset_partition_range_end": f"{SCORE_AS_OF}|grp_b",
    }
    lake_root = str(world.tmp / "isolation_lake")
    import shutil

    shutil.copytree(world.lake_root, lake_root)
    resources = {**world.resources, "lake": LakeResource(uri=lake_root)}
    key = dg.AssetKey("propensity_scores")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("product_group", ["grp_a", "grp_b"])
        result = dg.materialize([propensity_scores], instance=instance, resources=resources, tags=tags)
        assert result.success
        assert instance.get_materialized_partitions(key) == {f"{SCORE_AS_OF}|grp_a"}
        [observed] = instance.fetch_observations(key, limit=10).records
        observation = observed.asset_observation
        assert observation.partition == f"{SCORE_AS_OF}|grp_b"
        assert observation.metadata["skipped"].value == (
            "no champion for propensity__grp_b: train and vet one, or `propensity-assets promote grp_b <version> "
            "--stage propensity`"
        )
    [mat] = result.asset_materializations_for_node("propensity_scores")
    assert mat.partition == f"{SCORE_AS_OF}|grp_a"
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["partitions_written"] == 1 and meta["skipped_count"] == 1
    assert meta["rows"] == meta["run_rows"] == len(_population(SCORE_AS_OF))
    assert meta["model_name"] == NAME and meta["model_version"] == _champion(world.client)
    assert f"{SCORE_AS_OF}|grp_b" in meta["skipped"] and "no champion for propensity__grp_b" in meta["skipped"]
    lake = Lake(lake_root)
    assert lake.exists("propensity_scores", {"as_of": SCORE_AS_OF, "product_group": "grp_a"})
    assert not lake.exists("propensity_scores", {"as_of": SCORE_AS_OF, "product_group": "grp_b"})


def test_in_sample_as_of_is_refused(world):
    # The champion's training snapshots end on 2017-04-26: scoring that date is refused.
    with pytest.raises(dg.Failure) as info:
        dg.materialize(
            [propensity_scores], partition_key="2017-04-26|grp_a", instance=world.instance, resources=world.resources,
        )
    message = str(info.value)
    assert "2017-04-26|grp_a: as_of 2017-04-26 is not later than propensity__grp_a v" in message
    assert "training snapshots (up to 2017-04-26): refused, in-sample scores" in message
    assert not world.lake.exists("propensity_scores", {"as_of": "2017-04-26", "product_group": "grp_a"})


def test_scoring_reads_the_runs_lake_not_the_recorded_one(world):
    import shutil

    other = str(world.tmp / "other_lake")
    shutil.copytree(world.lake_root, other)
    lake = Lake(other)
    grp = lake.read_pandas("group_features", filters=None)
    grp = grp[(grp["as_of"] == SCORE_AS_OF) & (grp["product_group"] == "grp_a")].copy()
    grp["grp_baskets_30d"] = grp["grp_baskets_30d"] + 5  # a different world: everyone bought more
    lake.write_pandas("group_features", grp, ["as_of", "product_group"])
    result = dg.materialize(
        [propensity_scores], partition_key=f"{SCORE_AS_OF}|grp_a", instance=world.instance,
        resources={**world.resources, "lake": LakeResource(uri=other)},
    )
    assert result.success
    scores = lake.read_pandas("propensity_scores").sort_values("household_id")
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    hh = lake.read_pandas("household_features")
    features = feature_matrix(hh[hh["as_of"] == SCORE_AS_OF], grp.drop(columns=["product_group"]))
    expected = model.predict(features).sort_values("household_id")["score"].to_numpy()
    np.testing.assert_allclose(scores["score"].to_numpy(), expected, rtol=1e-12)
    recorded = model.predict(scores[["household_id", "as_of"]])["score"].to_numpy()  # the training lake
    assert np.abs(scores["score"].to_numpy() - recorded).max() > 0.01


STANDALONE = """
import sys, json

class Absent:
    # As in a virtualenv made from the model's requirements: these are not installed.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pyspark", "dagster", "dagster_pyspark", "econml", "propensity_assets_tests"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, Absent())
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
frame = pd.read_json(sys.argv[2], orient="split", dtype=False)
features = [c for c in frame.columns if c.startswith(("hh_", "grp_"))]
frame[features] = frame[features].astype("float64")
out = model.predict(frame)
print(json.dumps({"scores": out["score"].tolist(), "modules": sorted(m for m in ("pyspark", "dagster", "econml") if m in sys.modules)}))
"""


def test_registered_model_loads_on_its_own(world, tmp_path):
    """A fresh interpreter in which pyspark, dagster and econml cannot be imported, as in a
    virtualenv made from the model's own requirements: it loads and gives the same scores."""
    local = mlflow.artifacts.download_artifacts(f"models:/{NAME}@champion", dst_path=str(tmp_path / "model"))
    requirements = Path(local, "requirements.txt").read_text().split()
    assert not any(r.startswith(("pyspark", "dagster")) for r in requirements)
    assert {"lightgbm", "scikit-learn", "pyarrow", "mlflow"} <= {r.split("=")[0].split("<")[0] for r in requirements}
    explicit = _explicit_features(world, [1, 2, 3])
    payload = explicit.drop(columns=["label"], errors="ignore").to_json(orient="split")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PROPENSITY_LAKE_URI")}
    proc = subprocess.run(
        [sys.executable, "-c", STANDALONE, local, payload], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = __import__("json").loads(proc.stdout.strip().splitlines()[-1])
    assert out["modules"] == []
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    np.testing.assert_allclose(out["scores"], model.predict(explicit)["score"].to_numpy(), rtol=1e-12)


# -- error over time and the retrain trigger ------------------------------------------------


def test_decay_curve_and_retrain_trigger(world, monkeypatch):
    result = dg.materialize(
        [propensity_decay], partition_key="grp_a", instance=world.instance, resources=world.resources,
        run_config={"ops": {"propensity_decay": {"config": {"step_days": 7, "versions": 1, "tolerance": 0.05}}}},
    )
    assert result.success
    curves = world.lake.read_pandas("propensity_decay")
    assert set(curves["model_version"]) == {"4", "5"}  # the champion and the newest version
    v4 = curves[curves["model_version"] == "4"].sort_values("as_of")
    # Weekly from the cutoff (age ≥ 0): never the vetting snapshot 2017-05-03 (age −30), whose
    # value is only the reference `at_training`.
    assert v4["as_of"].tolist() == [SCORE_AS_OF, *DECAY_DATES]
    assert v4["age_days"].tolist() == [0, 7, 14]
    at_vetting = float(world.client.get_model_version(NAME, "4").tags["vetting.candidate_average_precision"])
    assert v4["is_champion"].all() and np.allclose(v4["at_training"], at_vetting, atol=1e-6)
    assert at_vetting > 0.6  # learnable at training ...
    assert (v4["value"] < 0.5).all()  # ... coin flips later: AP near the 0.4 base rate
    assert v4["degraded"].tolist() == [True, True, True]
    v5 = curves[curves["model_version"] == "5"].sort_values("as_of")
    # v5's cutoff is 2017-05-26: its first labelled weekly as_of is a week later.
    assert v5["as_of"].tolist() == [SCORE_AS_OF, *DECAY_DATES] and v5["age_days"].tolist() == [7, 14, 21]
    assert not v5["is_champion"].any()
    [mat] = result.asset_materializations_for_node("propensity_decay")
    assert mat.partition == "grp_a"
    assert mat.metadata["retraining_interval_days"].value == "0"
    assert mat.metadata["degraded"].value is True and mat.metadata["champion"].value == "4"
    assert mat.metadata["champion_age_days"].value == 14 and mat.metadata["points"].value == 6
    assert mat.metadata["decay_curve"].value.startswith("![grp_a: average_precision by age](data:image/png;base64,")
    assert mat.metadata["dagster/row_count"].value == 6

    retrain = next(s for s in lifecycle.sensors if s.name == "propensity_retrain_sensor")
    monkeypatch.setenv("PROPENSITY_TODAY", "2017-06-16")
    context = dg.build_sensor_context(instance=world.instance, resources={"lake": world.resources["lake"]})
    requests = retrain(context)
    # grp_b has no decay curve (no champion ever): only grp_a, once per degraded champion version.
    assert [(r.run_key, r.partition_key) for r in requests] == [("retrain:propensity:grp_a:v4", "2017-06-16|grp_a")]
    assert requests[0].tags["propensity/trigger"] == "decay"


def test_scoring_refuses_features_whose_population_fell(world):
    """grp_a's features at 2017-06-02 lose 26 of their 260 households (−10 %, beyond the
    2 % tolerance) against the previous as_of in the lake, 2017-05-03: whichever run
    scores that partition refuses it, naming the drop."""
    import shutil

    lake_root = str(world.tmp / "population_lake")
    shutil.copytree(world.lake_root, lake_root)
    lake = Lake(lake_root)
    features = world.tables["group_features"]
    shrunk = features[(features["as_of"] == SCORE_AS_OF) & (features["product_group"] == "grp_a")].iloc[26:]
    lake.write_pandas("group_features", shrunk, ["as_of", "product_group"])
    resources = {**world.resources, "lake": LakeResource(uri=lake_root)}
    spec = {"as_of": SCORE_AS_OF, "product_group": "grp_a"}
    before = lake.read_pandas("propensity_scores") if lake.exists("propensity_scores", spec) else None
    with pytest.raises(dg.Failure) as info:
        dg.materialize([propensity_scores], partition_key=f"{SCORE_AS_OF}|grp_a", instance=world.instance,
                       resources=resources)
    assert str(info.value).splitlines()[1] == (
        f"{SCORE_AS_OF}|grp_a: group_features {SCORE_AS_OF}|grp_a: 234 households against 260 at the previous as_of "
        "2017-05-03 (−10.0%, tolerance 2.0%): data may be missing; re-ingest, or raise "
        "PROPENSITY_POPULATION_DROP_TOLERANCE if the drop is expected"
    )
    if before is None:  # nothing written, and earlier scores (from the tests before) are kept
        assert not lake.exists("propensity_scores", spec)
    else:
        pd.testing.assert_frame_equal(lake.read_pandas("propensity_scores"), before)
