"""`from_champion`'s pinning: a champion's selected trial (MLflow params, as strings) pins
each search dimension it names to that one value, typed as the dimension; the search of
the pinned space is exactly that trial."""

import pytest

from propensity_assets.lifecycle.training import pinned
from propensity_assets.ltv.space import permutations
from propensity_assets.ltv.stage import LtvTraining
from propensity_assets.propensity.stage import PropensityTraining


def test_an_ltv_permutation_pins_its_algorithm_reducer_subset_and_hyperparameters():
    config = LtvTraining()
    best = {"algorithm": "random_forest", "reducer": "pca", "feature_subset": "rates", "rf_n_estimators": "60",
            "rf_max_depth": "16", "rf_min_samples_leaf": "20", "rf_max_features": "0.3", "pca_variance": "0.95"}
    pin = pinned(config, best, "ltv__cheese v3")
    assert (pin.algorithms, pin.reducers, pin.feature_subsets) == (["random_forest"], ["pca"], ["rates"])
    assert (pin.rf_n_estimators, pin.rf_max_depth, pin.rf_max_features, pin.pca_variance) == ([60], [16], [0.3], [0.95])
    assert pin.num_leaves == [7, 15] and pin.max_permutations == 8  # not named by the trial: as declared
    assert permutations(pin.space()) == [{
        "algorithm": "random_forest", "reducer": "pca", "feature_subset": "rates", "rf_n_estimators": 60,
        "rf_max_depth": 16, "rf_min_samples_leaf": 20, "rf_max_features": 0.3, "pca_variance": 0.95,
    }]


def test_the_chosen_rounds_are_not_a_dimension():
    best = {"algorithm": "lgbm_tweedie", "reducer": "none", "feature_subset": "all", "num_leaves": "15",
            "learning_rate": "0.05", "min_child_samples": "100", "feature_fraction": "0.8", "lambda_l2": "10.0",
            "tweedie_variance_power": "1.2", "rounds": "378"}
    [only] = permutations(pinned(LtvTraining(), best, "ltv__all_products v1").space())
    assert only == {**{k: v for k, v in best.items() if k in ("algorithm", "reducer", "feature_subset")},
                    "num_leaves": 15, "learning_rate": 0.05, "min_child_samples": 100, "feature_fraction": 0.8,
                    "lambda_l2": 10.0, "tweedie_variance_power": 1.2}


def test_a_propensity_trial_pins_the_grid_to_one_point():
    best = {"num_leaves": "63", "learning_rate": "0.03", "min_child_samples": "200", "feature_fraction": "0.7",
            "lambda_l2": "5.0", "rounds": "212"}
    pin = pinned(PropensityTraining(history_weeks=26), best, "propensity__beef v2")
    assert pin.history_weeks == 26
    assert pin.space().trials() == [
        {"num_leaves": 63, "learning_rate": 0.03, "min_child_samples": 200, "feature_fraction": 0.7, "lambda_l2": 5.0}
    ]


def test_a_value_that_does_not_fit_its_dimension_names_the_version_and_the_field():
    with pytest.raises(ValueError) as bad:
        pinned(LtvTraining(), {"num_leaves": "many", "rf_max_depth": "16"}, "ltv__cheese v3")
    assert str(bad.value) == "ltv__cheese v3's selected configuration does not fit this search space: num_leaves='many'"
