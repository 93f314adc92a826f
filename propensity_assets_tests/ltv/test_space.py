"""The LTV search space's permutations: deterministic, flat, stratified, and checked."""

import pytest

from propensity_assets.ltv.space import ALGORITHMS, REDUCERS, LtvSearchSpace, permutations


def test_permutations_are_deterministic_flat_and_cover_every_stratum():
    space = LtvSearchSpace(max_permutations=12)
    perms = permutations(space)
    assert perms == permutations(LtvSearchSpace(max_permutations=12))
    assert len(perms) == 12
    # 4 algorithms × 3 reducers = 12 strata: a budget of 12 tries each pair exactly once.
    assert sorted((p["algorithm"], p["reducer"]) for p in perms) == sorted(
        (a, r) for a in ALGORITHMS for r in REDUCERS
    )
    for p in perms:
        assert all(isinstance(v, (str, int, float)) for v in p.values())  # loggable as MLflow params
        assert ("pca_variance" in p) == (p["reducer"] == "pca")
        assert ("tweedie_variance_power" in p) == (p["algorithm"] == "lgbm_tweedie")
    assert permutations(LtvSearchSpace(seed=7, max_permutations=12)) != perms
    # A space smaller than the budget yields its whole cross product: 2 subsets × 2 leaves × 2 rates.
    small = LtvSearchSpace(algorithms=["lgbm_l2"], reducers=["none"], num_leaves=[7, 15], learning_rate=[0.05, 0.1],
                           min_child_samples=[50], max_permutations=100)
    assert len(permutations(small)) == 8


def test_permutations_reject_unknown_names():
    with pytest.raises(ValueError, match="algorithms.*'xgboost'"):
        permutations(LtvSearchSpace(algorithms=["xgboost"]))
    with pytest.raises(ValueError, match="selection_metric"):
        permutations(LtvSearchSpace(selection_metric="r2"))
    with pytest.raises(ValueError, match=r"feature_subsets.*\['hh_only'\]"):
        permutations(LtvSearchSpace(feature_subsets=["hh_only"]))
    with pytest.raises(ValueError, match="num_leaves is empty"):
        permutations(LtvSearchSpace(algorithms=["lgbm_l2"], num_leaves=[]))
