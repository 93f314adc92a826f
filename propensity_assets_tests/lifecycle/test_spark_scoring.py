"""Scoring on Spark (`lifecycle.scoring`) against the pandas scoring it replaced: the
registered pyfunc's `predict` on the driver, on `lookup.read_features` of the same lake.

A small hand-built lake (60 households, a few weekly snapshots, two scoring dates whose
populations differ) and a real champion per stage, trained and registered by
`train_and_register` with a tiny search: a LightGBM classifier for propensity, and a
Tweedie LightGBM behind PCA for LTV (PCA multiplies matrices, the one step whose result
could depend on how rows are batched). Scores must equal the driver's to 1e-12 (in
practice bit for bit), with the scores table's columns, order and Parquet types.
"""

from __future__ import annotations

import math
import os
import sys
from datetime import date
from types import SimpleNamespace

import cloudpickle
import mlflow
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from propensity_assets.lifecycle import checks as quality
from propensity_assets.shared import registry
from propensity_assets.shared.lake import Lake
from propensity_assets.features import lookup
from propensity_assets.lifecycle import frames, scoring
from propensity_assets.lifecycle.training import train_and_register
from propensity_assets.ltv.stage import LTV, LtvTraining
from propensity_assets.propensity.stage import PROPENSITY, PropensityTraining
from propensity_assets.shared.resources import LakeResource, MlflowResource
from propensity_assets_tests.synthetic import group_features, household_features

GROUP = "grp_a"
CUTOFF = date(2017, 6, 30)  # a Friday
SCORE_DATES = ["2017-06-30", "2017-07-01"]
TINY = {
    "propensity": PropensityTraining(
        history_weeks=3, num_leaves=[4], learning_rate=[0.2], min_child_samples=[5], feature_fraction=[1.0],
        lambda_l2=[0.0], max_trials=1, max_rounds=20, early_stopping_rounds=5,
    ),
    "ltv": LtvTraining(
        history_weeks=3, algorithms=["lgbm_tweedie"], reducers=["pca"], feature_subsets=["all"], num_leaves=[4],
        min_child_samples=[5], tweedie_variance_power=[1.3], max_permutations=1, max_rounds=30, early_stopping_rounds=5,
    ),
}
STAGES = {"propensity": PROPENSITY, "ltv": LTV}


def _population(as_of: str) -> list[int]:
    return list(range(1, 51)) + (list(range(51, 61)) if as_of >= "2017-07-01" else [])


def _build_lake(root: str) -> Lake:
    rng = np.random.default_rng(2017)
    dates = set(SCORE_DATES)
    for horizon in (30, 90):  # each stage's training and vetting snapshots
        plan = frames.snapshot_plan(CUTOFF, horizon, 3, date(2017, 1, 1))
        dates |= {str(d) for d in (*plan.train, plan.vetting)}
    hh_parts, grp_parts, labels = [], [], {"propensity_labels": [], "ltv_labels": []}
    for d in sorted(dates):
        hh = household_features(d, _population(d), rng)
        grp = group_features(d, GROUP, hh, rng)
        hh_parts.append(hh), grp_parts.append(grp)
        keys = grp[["as_of", "product_group", "household_id"]]
        p = 1 / (1 + np.exp(-(grp["grp_baskets_30d"].to_numpy() - 1.5)))
        labels["propensity_labels"].append(keys.assign(label=(rng.random(len(grp)) < p).astype("int32")))
        spend = np.maximum(1.2 * grp["grp_spend_90d"].to_numpy() * rng.gamma(4.0, 0.25, len(grp)) - 4.0, 0.0)
        labels["ltv_labels"].append(keys.assign(label=spend))
    lake = Lake(root)
    lake.write_pandas("household_features", pd.concat(hh_parts, ignore_index=True), ["as_of"])
    lake.write_pandas("group_features", pd.concat(grp_parts, ignore_index=True), ["as_of", "product_group"])
    for table, parts in labels.items():
        lake.write_pandas(table, pd.concat(parts, ignore_index=True), ["as_of", "product_group"])
    return lake


@pytest.fixture(scope="module")
def world(tmp_path_factory, spark):
    tmp = tmp_path_factory.mktemp("spark_scoring")
    lake = _build_lake(str(tmp / "lake"))
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "PROPENSITY_LTV_HORIZON_DAYS")}
    os.environ["PROPENSITY_LTV_HORIZON_DAYS"] = "90"
    mlflow_res = MlflowResource(tracking_uri=f"sqlite:///{tmp}/mlflow.db", artifact_root=(tmp / "artifacts").as_uri())
    try:
        versions = {}
        for name, stage in STAGES.items():
            out = train_and_register(stage, lake, mlflow_res, GROUP, CUTOFF, TINY[name], {"test": "spark_scoring"})
            registry.promote(mlflow_res.client(), out.model_name, out.version, "test champion", by="test")
            versions[name] = out.version
        yield SimpleNamespace(tmp=tmp, lake=lake, mlflow=mlflow_res, versions=versions, spark=spark)
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def _pandas_scores(world, stage) -> pd.DataFrame:
    """The scoring this replaced: features on the driver, the champion's pyfunc `predict`."""
    model = mlflow.pyfunc.load_model(f"models:/{stage.model_name(GROUP)}@champion")
    predicted = model.predict(lookup.read_features(world.lake, GROUP, SCORE_DATES))
    return predicted.sort_values(["as_of", "household_id"]).reset_index(drop=True)


@pytest.mark.parametrize("name", list(STAGES))
def test_spark_scores_equal_the_pandas_scores(world, name):
    stage = STAGES[name]
    pairs = [(d, GROUP) for d in SCORE_DATES]
    scored = scoring.score_pairs(world.spark, stage, world.lake, world.mlflow, pairs)
    try:
        assert scored.skipped == {} and scored.invalid == {}
        assert scored.counts == {(d, GROUP): len(_population(d)) for d in SCORE_DATES}
        assert scored.models == [{"group": GROUP, "version": world.versions[name], "rows": 110}]
        spark_scores = scored.frame.toPandas()  # the test collects; the asset never does
    finally:
        scored.release()
    extras = list(stage.score_extras())
    assert list(spark_scores.columns) == [
        "as_of", "product_group", "household_id", stage.score_column, "model_name", "model_version", *extras
    ]
    spark_scores = spark_scores.sort_values(["as_of", "household_id"]).reset_index(drop=True)
    expected = _pandas_scores(world, stage)
    assert spark_scores["household_id"].tolist() == expected["household_id"].tolist()
    assert spark_scores["as_of"].tolist() == expected["as_of"].tolist()
    assert expected[stage.score_column].notna().all() and expected[stage.score_column].nunique() > 5
    np.testing.assert_allclose(
        spark_scores[stage.score_column].to_numpy(), expected[stage.score_column].to_numpy(), rtol=1e-12, atol=0
    )
    assert set(spark_scores["model_name"]) == {stage.model_name(GROUP)}
    assert set(spark_scores["model_version"]) == {world.versions[name]}  # the champion's, on every row
    if name == "ltv":
        assert set(spark_scores["horizon_days"]) == {90}


@pytest.mark.parametrize("name", list(STAGES))
def test_the_spark_written_table_has_the_pandas_written_schema(world, tmp_path, name):
    """CONTRACTS §5: the same columns, in the same order, with the same Parquet types as the
    pandas frame the driver used to write."""
    stage = STAGES[name]
    pairs = [(d, GROUP) for d in SCORE_DATES]
    specs = [{"as_of": d, "product_group": GROUP} for d in SCORE_DATES]
    scored = scoring.score_pairs(world.spark, stage, world.lake, world.mlflow, pairs)
    try:
        LakeResource(uri=str(tmp_path / "spark")).write_spark(stage.scores_table, scored.frame, specs)
    finally:
        scored.release()
    old = _pandas_scores(world, stage).rename(columns={stage.score_column: "value"}).assign(
        product_group=GROUP, model_name=stage.model_name(GROUP), model_version=world.versions[name],
    ).rename(columns={"value": stage.score_column})
    for key, value in stage.score_extras().items():
        old[key] = value
    old = old[["as_of", "product_group", "household_id", stage.score_column, "model_name", "model_version",
               *stage.score_extras()]]
    Lake(str(tmp_path / "pandas")).write_pandas(stage.scores_table, old, ["as_of", "product_group"], specs)
    tables = {kind: Lake(str(tmp_path / kind)).read_arrow(stage.scores_table) for kind in ("spark", "pandas")}
    fields = {kind: [(f.name, str(f.type)) for f in t.schema] for kind, t in tables.items()}
    assert fields["spark"] == fields["pandas"]
    for kind, table in tables.items():  # one file per partition, as before
        files = list((tmp_path / kind / stage.scores_table).rglob("*.parquet"))
        assert len(files) == len(SCORE_DATES), kind
    sort = [("as_of", "ascending"), ("household_id", "ascending")]
    assert tables["spark"].sort_by(sort).equals(tables["pandas"].sort_by(sort))


# -- failures, invalid scores and the skip rules ------------------------------------------


class OutOfRange:
    """A stand-in champion whose scores leave [0, 1] on one date."""

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        late = (frame["as_of"] == SCORE_DATES[1]).to_numpy()
        score = np.where(late, 1.5, 0.25)
        score[late & (frame["household_id"] <= 3).to_numpy()] = np.nan
        return pd.DataFrame({"household_id": frame["household_id"], "as_of": frame["as_of"], "score": score})


def _plan_with(world, monkeypatch, champions: dict[str, bytes], skipped: dict | None = None):
    """score_pairs with the driver's plan replaced: {group: model bytes} on SCORE_DATES."""
    plan = scoring.Plan(
        [scoring.Champion(g, f"propensity__{g}", "7", SCORE_DATES, b) for g, b in champions.items()], dict(skipped or {})
    )
    monkeypatch.setattr(scoring, "plan_scoring", lambda *args: plan)
    # Features for a second group: grp_a's, under another key.
    grp = world.lake.read_pandas(
        "group_features", filters=ds.field("as_of").isin(SCORE_DATES) & (ds.field("product_group") == GROUP)
    )
    world.lake.write_pandas("group_features", grp.assign(product_group="grp_b"), ["as_of", "product_group"])


def test_a_group_whose_model_fails_on_the_executors_is_skipped_and_the_others_scored(world, monkeypatch):
    good = cloudpickle.dumps(mlflow.pyfunc.load_model(f"models:/{PROPENSITY.model_name(GROUP)}@champion"))
    _plan_with(world, monkeypatch, {GROUP: good, "grp_b": b"not a pickled model"})
    scored = scoring.score_pairs(world.spark, PROPENSITY, world.lake, world.mlflow, [])
    try:
        assert set(scored.counts) == {(d, GROUP) for d in SCORE_DATES}
        assert set(scored.skipped) == {f"{d}|grp_b" for d in SCORE_DATES}
        assert all(why.startswith("UnpicklingError: ") for why in scored.skipped.values()), scored.skipped
        assert set(scored.frame.toPandas()["product_group"]) == {GROUP}
    finally:
        scored.release()


def test_invalid_partitions_are_refused_and_named_valid_ones_kept(world, monkeypatch):
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the executors need not import this test
    try:
        _plan_with(world, monkeypatch, {"grp_b": cloudpickle.dumps(OutOfRange())})
        scored = scoring.score_pairs(world.spark, PROPENSITY, world.lake, world.mlflow, [])
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    try:
        bad = (SCORE_DATES[1], "grp_b")
        n = len(_population(SCORE_DATES[1]))
        assert scored.invalid == {
            bad: f"score: 3 null, 0 not finite, {n - 3} outside [0, 1] of {n} scores; the partition was not written"
        }
        assert scored.counts == {(SCORE_DATES[0], "grp_b"): len(_population(SCORE_DATES[0]))}
        written = scored.frame.toPandas()
        assert set(written["as_of"]) == {SCORE_DATES[0]} and (written["score"] == 0.25).all()
    finally:
        scored.release()
    # The same message as the pandas rule gives on the same scores.
    frame = OutOfRange().predict(lookup.read_features(world.lake, "grp_b", [SCORE_DATES[1]])).assign(product_group="grp_b")
    assert quality.invalid_scores(frame, "score", 0.0, 1.0) == scored.invalid


def test_skip_rules_are_decided_on_the_driver(world):
    """No champion, an in-sample as_of and missing features: skipped with their reasons
    before Spark runs anything; the champion's valid dates are still planned."""
    trained_until = frames.snapshot_plan(CUTOFF, 30, 3, date(2017, 1, 1)).train_as_of_max
    plan = scoring.plan_scoring(
        PROPENSITY, world.lake, world.mlflow,
        [(trained_until, GROUP), (SCORE_DATES[0], GROUP), ("2017-08-01", GROUP), (SCORE_DATES[0], "grp_none")],
    )
    version = world.versions["propensity"]
    assert plan.skipped[f"{SCORE_DATES[0]}|grp_none"].startswith("no champion for propensity__grp_none")
    assert plan.skipped[f"{trained_until}|grp_a"] == (
        f"as_of {trained_until} is not later than propensity__grp_a v{version}'s training snapshots (up to "
        f"{trained_until}): refused, in-sample scores would look better than they are"
    )
    assert plan.skipped[f"2017-08-01|{GROUP}"].startswith("FeatureLookupError: the lake at ")
    assert plan.skipped[f"{SCORE_DATES[0]}|{GROUP}"] == plan.skipped[f"2017-08-01|{GROUP}"]  # the group's failure
    assert plan.champions == []


def test_one_groups_unreadable_features_skip_that_group_only(world):
    """A stray notes.txt in grp_b's feature partition: grp_b is skipped on the driver, naming
    the partition and the file, and grp_a is scored (one Spark job would fail them both)."""
    for table in ("group_features", "propensity_labels"):  # grp_b: grp_a's data under another key
        frame = world.lake.read_pandas(table, filters=ds.field("product_group") == GROUP)
        world.lake.write_pandas(table, frame.assign(product_group="grp_b"), ["as_of", "product_group"])
    out = train_and_register(PROPENSITY, world.lake, world.mlflow, "grp_b", CUTOFF, TINY["propensity"], {"test": "spark_scoring"})
    registry.promote(world.mlflow.client(), out.model_name, out.version, "test champion", by="test")
    stray = world.tmp / "lake" / "group_features" / f"as_of={SCORE_DATES[0]}" / "product_group=grp_b" / "notes.txt"
    stray.write_text("re-ran on Monday\n")
    try:
        scored = scoring.score_pairs(world.spark, PROPENSITY, world.lake, world.mlflow,
                                     [(d, g) for d in SCORE_DATES for g in (GROUP, "grp_b")])
        try:
            assert set(scored.counts) == {(d, GROUP) for d in SCORE_DATES}
            assert scored.skipped == {f"{d}|grp_b": (
                f"FeatureLookupError: lake table 'group_features' partition as_of={SCORE_DATES[0]}/product_group=grp_b "
                "holds 1 file(s) that are not readable Parquet: notes.txt (ArrowInvalid: Parquet magic bytes not found "
                "in footer. Either the file is corrupted or this is not a parquet file.). Remove a stray file, or "
                f"re-materialize group_features for as_of {SCORE_DATES[0]}") for d in SCORE_DATES}
            assert set(scored.frame.toPandas()["product_group"]) == {GROUP}
        finally:
            scored.release()
    finally:
        stray.unlink()


# -- the metadata: Spark aggregates equal to the pandas reference ----------------------------


@pytest.mark.parametrize("values", [
    [0.5],
    [0.2, 0.9],
    [0.1] * 7 + [0.3] * 5 + [0.8] * 11,  # heavy ties, 23 rows (not a multiple of 10)
    list(np.random.default_rng(3).random(137)),
])
def test_spark_summaries_equal_the_pandas_reference(spark, values):
    frame = pd.DataFrame({"g": ["x"] * len(values) + ["y"] * 3, "score": values + [3.0, 1.0, 2.0]})
    summaries = scoring.spark_summaries(spark.createDataFrame(frame), "score", by="g")
    overall = scoring.spark_summaries(spark.createDataFrame(frame), "score")[None]
    for key, part in [("x", frame[frame["g"] == "x"]), ("y", frame[frame["g"] == "y"]), (None, frame)]:
        got = overall if key is None else summaries[key]
        assert got["rows"] == len(part)
        want = scoring.distribution(part["score"])
        assert got["distribution"].keys() == want.keys()
        for k, v in want.items():
            assert math.isclose(got["distribution"][k], v, rel_tol=1e-12, abs_tol=1e-15), (key, k)
        assert got["mean_by_decile"] == scoring.decile_means(part["score"].reset_index(drop=True)), key
