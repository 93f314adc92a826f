"""Bounded training: over the row budget, households are sampled stratified by label
before the feature rows are read, and the model's metadata and MLflow params say so.

Hand-built sets with exact answers: 10 households with 3 training snapshots each (30 rows),
4 of them `positive` (a label > 0 in some snapshot) and 6 `zero`. A budget of 15 rows keeps
half of each stratum: 2 positive households (6 rows) and 3 zero ones (9 rows).
"""

from __future__ import annotations

import os
from datetime import date

import mlflow
import numpy as np
import pandas as pd
import pytest

from propensity_assets.shared import settings
from propensity_assets.shared.lake import Lake
from propensity_assets.lifecycle import frames
from propensity_assets.lifecycle.training import train_and_register
from propensity_assets.ltv.stage import LtvTraining
from propensity_assets.propensity.stage import PROPENSITY, PropensityTraining
from propensity_assets.shared.resources import MlflowResource
from propensity_assets_tests.synthetic import group_features, household_features

TRAIN = ["2017-05-10", "2017-05-17", "2017-05-24"]
VETTING = "2017-05-31"
POSITIVE_HH = [2, 5, 7, 9]


def _labels(households=range(1, 11), dates=TRAIN) -> pd.DataFrame:
    rows = [(d, h, int(h in POSITIVE_HH and d == dates[-1])) for d in dates for h in households]
    return pd.DataFrame(rows, columns=["as_of", "household_id", "label"])


def test_within_the_budget_nothing_is_sampled():
    keep, sample = frames.sample_households(_labels(), max_rows=30, seed=42)
    assert keep is None and not sample.sampled
    assert (sample.rows_available, sample.rows_used) == (30, 30)
    assert sample.strata == {
        "positive": {"households": 4, "households_used": 4, "rows": 12, "rows_used": 12, "fraction": 1.0},
        "zero": {"households": 6, "households_used": 6, "rows": 18, "rows_used": 18, "fraction": 1.0},
    }


def test_over_the_budget_each_stratum_keeps_the_same_share_of_whole_households():
    keep, sample = frames.sample_households(_labels(), max_rows=15, seed=42)
    assert sample.sampled and (sample.rows_available, sample.rows_used) == (30, 15)
    assert sample.strata == {
        "positive": {"households": 4, "households_used": 2, "rows": 12, "rows_used": 6, "fraction": 0.5},
        "zero": {"households": 6, "households_used": 3, "rows": 18, "rows_used": 9, "fraction": 0.5},
    }
    assert len(keep) == 5 and len(set(keep) & set(POSITIVE_HH)) == 2
    assert list(keep) == sorted(keep)
    again, _ = frames.sample_households(_labels(), max_rows=15, seed=42)
    np.testing.assert_array_equal(keep, again)  # a fixed seed: the same households
    assert sample.params() == {
        "training_max_rows": 15, "training_rows_available": 30, "training_rows_used": 15, "training_sampled": True,
        "training_fraction_positive": 0.5, "training_fraction_zero": 0.5,
    }


def test_households_of_unequal_history_never_overflow_a_stratum():
    # Households 11..14 joined for the last snapshot only: 34 rows, 4 positive households (12 rows).
    labels = pd.concat([_labels(), _labels(range(11, 15), TRAIN[-1:])], ignore_index=True)
    keep, sample = frames.sample_households(labels, max_rows=17, seed=1)
    # Quotas: positive floor(12 * 17 / 34) = 6 rows, zero floor(22 * 17 / 34) = 11 rows.
    assert sample.strata["positive"]["rows_used"] == 6
    assert sample.strata["zero"]["rows_used"] <= 11 and sample.rows_used <= 17
    per = labels.groupby("household_id").size()
    assert per.loc[keep].sum() == sample.rows_used


def test_a_budget_below_one_row_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        frames.sample_households(_labels(), max_rows=0, seed=1)


def test_the_budget_is_a_run_choice_defaulting_to_the_environment_and_is_checked(monkeypatch):
    monkeypatch.delenv("PROPENSITY_TRAINING_MAX_ROWS", raising=False)
    assert settings.training_max_rows() == 1_000_000
    assert PropensityTraining().max_training_rows is None  # the launchpad default: the deployment's setting
    assert PropensityTraining().resolved().max_training_rows == 1_000_000
    # Above the embedded data's largest training set: 2,469 households × 30 weekly snapshots.
    assert settings.training_max_rows() > 2_469 * max(PropensityTraining().history_weeks, LtvTraining().history_weeks)
    monkeypatch.setenv("PROPENSITY_TRAINING_MAX_ROWS", "250_000")
    assert settings.training_max_rows() == 250_000
    assert LtvTraining().resolved().max_training_rows == 250_000
    assert LtvTraining(max_training_rows=90).resolved().max_training_rows == 90  # a run's choice wins
    monkeypatch.setenv("PROPENSITY_TRAINING_MAX_ROWS", "lots")
    with pytest.raises(settings.SettingsError, match="PROPENSITY_TRAINING_MAX_ROWS='lots'"):
        settings.training_max_rows()
    with pytest.raises(settings.SettingsError, match="PROPENSITY_TRAINING_MAX_ROWS='lots'"):
        PropensityTraining().resolved()
    with pytest.raises(settings.SettingsError, match=r"^max_training_rows=0: expected a whole number of rows ≥ 1"):
        PropensityTraining(max_training_rows=0).resolved()


# -- from the lake -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    """60 households; the label is 1 for every snapshot of households 1..20 whose id is even
    (10 positive households), 0 otherwise; features random."""
    rng = np.random.default_rng(5)
    hh_parts, grp_parts, label_parts = [], [], []
    for d in ["2017-04-26", "2017-05-03", *TRAIN, VETTING]:
        hh = household_features(d, list(range(1, 61)), rng)
        grp = group_features(d, "grp_a", hh, rng)
        hh_parts.append(hh), grp_parts.append(grp)
        positive = (grp["household_id"] <= 20) & (grp["household_id"] % 2 == 0)
        label = np.where(positive, 1, 0)
        label_parts.append(grp[["as_of", "product_group", "household_id"]].assign(label=label.astype("int32")))
    lake = Lake(str(tmp_path_factory.mktemp("budget") / "lake"))
    lake.write_pandas("household_features", pd.concat(hh_parts, ignore_index=True), ["as_of"])
    lake.write_pandas("group_features", pd.concat(grp_parts, ignore_index=True), ["as_of", "product_group"])
    lake.write_pandas("propensity_labels", pd.concat(label_parts, ignore_index=True), ["as_of", "product_group"])
    return lake


def test_within_the_budget_the_training_frames_are_what_training_always_read(lake):
    train, holdout, sample = frames.training_frames(lake, "grp_a", TRAIN, VETTING, "propensity_labels", 180, 42)
    frame = frames.labelled_frame(lake, "grp_a", [*TRAIN, VETTING], "propensity_labels")
    pd.testing.assert_frame_equal(train, frame[frame["as_of"].isin(TRAIN)])
    pd.testing.assert_frame_equal(holdout, frame[frame["as_of"] == VETTING])
    assert not sample.sampled and sample.rows_available == sample.rows_used == 180


def _shuffled_copy(lake: Lake, root) -> Lake:
    """The same rows as `lake`, each table written in another row order."""
    copy = Lake(str(root))
    for table, partition_by in [("household_features", ["as_of"]), ("group_features", ["as_of", "product_group"]),
                                ("propensity_labels", ["as_of", "product_group"])]:
        rows = lake.read_pandas(table).assign(as_of=lambda f: f["as_of"].astype(str))
        copy.write_pandas(table, rows.sample(frac=1.0, random_state=3).reset_index(drop=True), partition_by)
    return copy


@pytest.mark.parametrize("budget", [180, 90])
def test_the_training_frames_do_not_depend_on_the_lakes_row_order(lake, tmp_path, budget):
    # The same data laid out in another order must give the same frames, row for row, so the
    # same model: a lake writer that orders rows differently once cost a group its champion.
    copy = _shuffled_copy(lake, tmp_path / "shuffled")
    assert not lake.read_pandas("group_features")["household_id"].equals(copy.read_pandas("group_features")["household_id"])
    ours = frames.training_frames(lake, "grp_a", TRAIN, VETTING, "propensity_labels", budget, 42)
    theirs = frames.training_frames(copy, "grp_a", TRAIN, VETTING, "propensity_labels", budget, 42)
    for mine, other in zip(ours[:2], theirs[:2]):
        pd.testing.assert_frame_equal(mine, other)
        assert list(zip(mine["as_of"], mine["household_id"])) == sorted(zip(mine["as_of"], mine["household_id"]))
    assert ours[2] == theirs[2]


def test_over_the_budget_only_sampled_households_are_read(lake):
    train, holdout, sample = frames.training_frames(lake, "grp_a", TRAIN, VETTING, "propensity_labels", 90, 42)
    assert sample.sampled and (sample.rows_available, sample.rows_used) == (180, 90)
    assert sample.strata["positive"] == {"households": 10, "households_used": 5, "rows": 30, "rows_used": 15,
                                         "fraction": 0.5}
    assert sample.strata["zero"] == {"households": 50, "households_used": 25, "rows": 150, "rows_used": 75,
                                     "fraction": 0.5}
    assert len(train) == 90 and train["household_id"].nunique() == 30
    assert train.groupby("household_id").size().eq(3).all()  # whole households
    assert int((train["label"] > 0).sum()) == 15
    assert len(holdout) == 60 and set(holdout["as_of"]) == {VETTING}  # the vetting snapshot whole
    # The rows are the full frame's rows of those households, feature for feature.
    full = frames.labelled_frame(lake, "grp_a", TRAIN, "propensity_labels")
    full = full[full["household_id"].isin(train["household_id"])]
    key = ["as_of", "household_id"]
    pd.testing.assert_frame_equal(train.sort_values(key).reset_index(drop=True), full.sort_values(key).reset_index(drop=True))


def test_training_over_the_budget_says_so_in_mlflow(lake, tmp_path):
    config = PropensityTraining(
        history_weeks=3, num_leaves=[4], learning_rate=[0.2], min_child_samples=[5], feature_fraction=[1.0],
        lambda_l2=[0.0], max_trials=1, max_rounds=10, early_stopping_rounds=5, max_training_rows=90,
    )
    mlflow_res = MlflowResource(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_root=(tmp_path / "a").as_uri())
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    try:
        out = train_and_register(PROPENSITY, lake, mlflow_res, "grp_a", date(2017, 6, 30), config, {})
        params = mlflow_res.client().get_run(out.run_id).data
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    assert out.train_rows == 90 and out.sample.sampled
    assert {k: params.params[k] for k in params.params if k.startswith("training_")} == {
        "training_max_rows": "90", "training_rows_available": "180", "training_rows_used": "90",
        "training_sampled": "True", "training_fraction_positive": "0.5", "training_fraction_zero": "0.5",
    }
    assert params.params["train_rows"] == "90" and params.tags["training_sampled"] == "true"


def test_the_model_asset_takes_the_budget_from_the_launchpad_and_reports_the_sample(lake, tmp_path):
    import dagster as dg

    from propensity_assets.propensity.assets import lifecycle
    from propensity_assets.shared.resources import LakeResource

    model_asset = lifecycle.assets[0]
    tiny = {"history_weeks": 3, "num_leaves": [4], "learning_rate": [0.2], "min_child_samples": [5],
            "feature_fraction": [1.0], "lambda_l2": [0.0], "max_trials": 1, "max_rounds": 10,
            "early_stopping_rounds": 5, "max_training_rows": 90}
    resources = {
        "lake": LakeResource(uri=lake.root),
        "mlflow": MlflowResource(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_root=(tmp_path / "a").as_uri()),
    }
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    try:
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("product_group", ["grp_a"])
            result = dg.materialize([model_asset], partition_key="2017-06-30|grp_a", instance=instance,
                                    resources=resources, run_config={"ops": {"propensity_model": {"config": tiny}}})
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    [mat] = result.asset_materializations_for_node("propensity_model")
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["training_sampled"] is True
    assert (meta["training_max_rows"], meta["training_rows_available"], meta["training_rows_used"]) == (90, 180, 90)
    assert meta["training_fraction_positive"] == meta["training_fraction_zero"] == 0.5
    strata = {r.data["stratum"]: r.data for r in meta["training_sample"].records}
    assert [strata["positive"][c] for c in ("households", "households_used", "rows", "rows_used")] == [10, 5, 30, 15]
    assert strata["positive"]["fraction"] == 0.5
    assert "| 90 | 180 | True |" in meta["models"]
