"""Data-quality checks after ingest: population against the previous as_of, finite
features, label rates within their history's band, valid scores. Hand-built partitions
whose answers are counted by hand, real Spark and a real Dagster instance."""

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from propensity_assets.features import checks as feature_checks
from propensity_assets.lifecycle import checks as lifecycle_checks
from propensity_assets.shared import checks as shared_checks
from propensity_assets.shared.lake import Lake
from propensity_assets.shared.resources import LakeResource
from propensity_assets.shared.settings import SettingsError
from propensity_assets_tests.conftest import tx_frame
from propensity_assets_tests.test_definitions import range_tags, write_tiny_lake


def _features(as_of: str, group: str, households: int) -> pd.DataFrame:
    return pd.DataFrame({"as_of": as_of, "product_group": group, "household_id": range(households),
                         "grp_spend_30d": 1.0})


def _metadata(check: dg.AssetCheckResult) -> dict:
    return {k: getattr(v, "value", v) for k, v in check.metadata.items()}


def test_population_drop_beyond_tolerance_is_named(lake_root):
    lake = Lake(lake_root)
    parts = [_features("2017-03-01", "milk", 100), _features("2017-03-01", "beef", 100),
             _features("2017-03-02", "milk", 97), _features("2017-03-02", "beef", 99),
             _features("2017-03-04", "milk", 97)]
    lake.write_pandas("group_features", pd.concat(parts), ["as_of", "product_group"])
    pairs = [("2017-03-01", "milk"), ("2017-03-02", "milk"), ("2017-03-02", "beef"), ("2017-03-04", "milk"),
             ("2017-03-04", "beef")]
    drops = shared_checks.population_drops(lake, "group_features", pairs)
    # 03-01 has no previous as_of; beef fell 1 % (≤ 2 %); 03-04 compares with 03-02 (the
    # previous stored date), where milk held 97; beef at 03-04 was never written: 0 of 99.
    assert drops == {
        ("2017-03-02", "milk"): "group_features 2017-03-02|milk: 97 households against 100 at the previous as_of "
        "2017-03-01 (−3.0%, tolerance 2.0%): data may be missing; re-ingest, or raise "
        "PROPENSITY_POPULATION_DROP_TOLERANCE if the drop is expected",
        ("2017-03-04", "beef"): "group_features 2017-03-04|beef: 0 households against 99 at the previous as_of "
        "2017-03-02 (−100.0%, tolerance 2.0%): data may be missing; re-ingest, or raise "
        "PROPENSITY_POPULATION_DROP_TOLERANCE if the drop is expected",
    }
    check = shared_checks.population_result(lake, "group_features", pairs)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert _metadata(check)["partitions_checked"] == 5 and _metadata(check)["partitions_failed"] == 2


def test_population_tolerance_is_configurable_and_validated(lake_root, monkeypatch):
    lake = Lake(lake_root)
    lake.write_pandas("household_features", pd.concat([
        _features("2017-03-01", "x", 100), _features("2017-03-02", "x", 97)]).drop(columns="product_group"), ["as_of"])
    assert list(shared_checks.population_drops(lake, "household_features", [("2017-03-02",)])) == [("2017-03-02",)]
    assert shared_checks.population_drops(lake, "household_features", [("2017-03-02",)], tolerance=0.03) == {}
    monkeypatch.setenv("PROPENSITY_POPULATION_DROP_TOLERANCE", "0.03")
    assert shared_checks.population_drops(lake, "household_features", [("2017-03-02",)]) == {}
    assert list(shared_checks.population_drops(lake, "household_features", [("2017-03-02",)], tolerance=0.02)) == [
        ("2017-03-02",)]  # a scoring run's own tolerance wins over the deployment's
    monkeypatch.setenv("PROPENSITY_POPULATION_DROP_TOLERANCE", "5%")
    with pytest.raises(SettingsError) as info:
        shared_checks.population_drops(lake, "household_features", [("2017-03-02",)])
    assert str(info.value) == (
        "PROPENSITY_POPULATION_DROP_TOLERANCE='5%': expected a fraction between 0 and 1, e.g. 0.02"
    )


def _labels(as_of: str, group: str, positives: int, rows: int = 40) -> pd.DataFrame:
    return pd.DataFrame({"as_of": as_of, "product_group": group, "household_id": range(rows),
                         "label": [1] * positives + [0] * (rows - positives)})


def test_label_rate_outside_the_band_of_history_warns(lake_root):
    lake = Lake(lake_root)
    dates = [str(d.date()) for d in pd.date_range("2017-03-01", periods=12)]
    # Ten days at 50 % (sd 0: the band is the floor, 0.45 .. 0.55), then 52.5 % (inside it),
    # then 65 %: history mean 0.50227, sd 0.00719, 4 sd below the floor: 0.4523 .. 0.5523.
    parts = [_labels(d, "milk", 20) for d in dates[:10]] + [_labels(dates[10], "milk", 21), _labels(dates[11], "milk", 26)]
    lake.write_pandas("propensity_labels", pd.concat(parts), ["as_of", "product_group"])
    check = lifecycle_checks.label_rate_result(lake, "propensity_labels", [(d, "milk") for d in dates])
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    meta = _metadata(check)
    # The first seven dates have fewer than seven earlier ones: not judged.
    assert meta["partitions_checked"] == 12 and meta["without_history"] == 7 and meta["partitions_failed"] == 1
    assert meta["failures"].splitlines()[2] == "| 2017-03-12 | milk | 0.6500 | 0.4523 | 0.5523 | 11 |"
    # History comes from the lake too: a run of the last date alone judges it the same way.
    alone = lifecycle_checks.label_rate_result(lake, "propensity_labels", [(dates[11], "milk")])
    assert not alone.passed and _metadata(alone)["failures"] == meta["failures"]


@pytest.mark.classic_and_connect
def test_non_finite_features_are_counted_while_writing_and_located(spark, lake_root):
    frame = spark.createDataFrame(
        [("2017-03-01", "milk", 1, 1.0, 2.0), ("2017-03-01", "milk", 2, float("nan"), None),
         ("2017-03-02", "milk", 1, float("inf"), 1.0), ("2017-03-02", "beef", 1, 0.0, float("-inf"))],
        "as_of string, product_group string, household_id long, a double, b double",
    )
    observed, counter = feature_checks.NonFinite.observe(frame)
    specs = [{"as_of": d, "product_group": g} for d, g in [("2017-03-01", "milk"), ("2017-03-02", "milk"),
                                                            ("2017-03-02", "beef")]]
    resource = LakeResource(uri=lake_root)
    assert resource.write_spark("group_features", observed, specs) == 3
    assert counter.columns == ["a", "b"]
    assert counter.counts() == {"a": 2, "b": 1}  # the null in b is allowed
    check = counter.result(Lake(lake_root), "group_features", specs)
    assert not check.passed
    assert sorted(check.metadata["failures"].value.splitlines()[2:]) == [
        "| 2017-03-01 | milk | a | 1 |", "| 2017-03-02 | beef | b | 1 |", "| 2017-03-02 | milk | a | 1 |",
    ]


def test_invalid_scores_are_named_per_partition():
    scores = pd.DataFrame({
        "as_of": ["2017-03-01"] * 3 + ["2017-03-02"] * 3,
        "product_group": ["milk"] * 3 + ["beef"] * 3,
        "score": [0.1, np.nan, 1.5, 0.2, 0.3, 1.0],
    })
    assert lifecycle_checks.invalid_scores(scores, "score", 0.0, 1.0) == {
        ("2017-03-01", "milk"): "score: 1 null, 0 not finite, 1 outside [0, 1] of 3 scores; the partition was not written"
    }
    ltv = scores.assign(score=[5.0, np.inf, -1.0, 0.0, 1e6, 3.0])
    assert lifecycle_checks.invalid_scores(ltv, "score", 0.0, None) == {
        ("2017-03-01", "milk"): "score: 0 null, 1 not finite, 1 outside [0, ∞) of 3 scores; the partition was not written"
    }


@pytest.mark.classic_and_connect
def test_a_population_drop_fails_the_feature_run_with_a_blocking_check(spark_resource, lake_root):
    """Features over 03-02..03-05 pass (the population only grows); after households 2
    and 3 vanish from the transactions, as_of 03-05 holds 1 household against 2 at 03-04."""
    from propensity_assets.features.assets import group_features, household_features

    lake = write_tiny_lake(lake_root)
    resources = {"spark": spark_resource, "lake": LakeResource(uri=lake_root)}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("product_group", ["snacks"])
        good = dg.materialize([household_features, group_features], instance=instance, resources=resources,
                              tags=range_tags("2017-03-02", "2017-03-05"), selection=["household_features"])
        assert good.success
        evaluations = {e.check_name: e for e in good.get_asset_check_evaluations()}
        assert sorted(evaluations) == ["features_finite", "population"]
        assert all(e.passed for e in evaluations.values())
        assert evaluations["population"].metadata["partitions_checked"].value == 4

        lake.write_pandas("transactions", tx_frame([
            (1, 11, 1, 2, 3.0, "2017-03-01 10:00:00"), (1, 12, 2, 3, 6.0, "2017-03-04 18:00:00"),
        ]))
        bad = dg.materialize([household_features], instance=instance, resources=resources,
                             partition_key="2017-03-05", raise_on_error=False)
        assert not bad.success
        [evaluation] = [e for e in bad.get_asset_check_evaluations() if e.check_name == "population"]
        assert not evaluation.passed and evaluation.blocking
        assert evaluation.metadata["failures"].value.splitlines()[2] == (
            "| 2017-03-05 | household_features 2017-03-05: 1 households against 2 at the previous as_of 2017-03-04 "
            "(−50.0%, tolerance 2.0%): data may be missing; re-ingest, or raise PROPENSITY_POPULATION_DROP_TOLERANCE "
            "if the drop is expected |"
        )
        # Bad data is not a transient failure: the step is not retried.
        assert [e.event_type_value for e in bad.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"] == []
        [failure] = bad.get_step_failure_events()
        assert "blocking asset check failed with ERROR severity:\nhousehold_features: population" in (
            failure.step_failure_data.error.message)
