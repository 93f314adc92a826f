"""The LTV parameter-permutation space (the seed's interface) and its permutations: plain
data, importable without LightGBM or scikit-learn (the launchpad config is built from it,
see `lifecycle.config.search_config`).

A declared `LtvSearchSpace` crosses algorithms, dimensionality reducers, named feature
subsets (`features.declaration.LTV_SUBSETS`) and each algorithm's hyperparameters;
`permutations` turns it into a deterministic list of flat parameter dicts.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from propensity_assets.features.declaration import LTV_SUBSETS

ALGORITHMS = ("lgbm_l2", "lgbm_tweedie", "random_forest", "sklearn_gbr")
REDUCERS = ("none", "pca", "select_by_importance")
FEATURE_SUBSETS = tuple(LTV_SUBSETS)
# Lower is better for these; higher for every other selectable metric.
MINIMIZE = {"rmse", "mae"}
SELECTABLE = {"rmse", "mae", "normalized_gini", "spearman", "top_decile_capture"}


@dataclass
class LtvSearchSpace:
    """A declared space of LTV regressors; every list is a dimension of the cross product.

    The launchpad config (`ltv.stage.LtvTraining`) has exactly these fields. `max_permutations`
    bounds the cost, which grows with it: the default 8 keeps a training of every shipped
    group within the daily run on two cores; 12 would try every (algorithm, reducer) pair
    once at about 1.5× the time (`benchmarks/ltv_benchmark.py speed` measures it).
    """

    algorithms: list[str] = field(default_factory=lambda: list(ALGORITHMS))
    reducers: list[str] = field(default_factory=lambda: list(REDUCERS))
    # "household" (hh_* only) is declared too; it helps only the all_products group.
    feature_subsets: list[str] = field(default_factory=lambda: ["all", "rates"])
    # LightGBM (both objectives)
    num_leaves: list[int] = field(default_factory=lambda: [7, 15])
    learning_rate: list[float] = field(default_factory=lambda: [0.05])
    min_child_samples: list[int] = field(default_factory=lambda: [50, 100])
    feature_fraction: list[float] = field(default_factory=lambda: [0.8])
    lambda_l2: list[float] = field(default_factory=lambda: [10.0])
    tweedie_variance_power: list[float] = field(default_factory=lambda: [1.2, 1.5])
    # Random forest
    rf_n_estimators: list[int] = field(default_factory=lambda: [60])
    rf_max_depth: list[int] = field(default_factory=lambda: [10, 16])
    rf_min_samples_leaf: list[int] = field(default_factory=lambda: [20, 50])
    rf_max_features: list[float] = field(default_factory=lambda: [0.3])
    # scikit-learn HistGradientBoostingRegressor
    gbr_learning_rate: list[float] = field(default_factory=lambda: [0.05])
    gbr_max_leaf_nodes: list[int] = field(default_factory=lambda: [15, 31])
    gbr_min_samples_leaf: list[int] = field(default_factory=lambda: [50, 200])
    gbr_l2_regularization: list[float] = field(default_factory=lambda: [0.0, 1.0])
    # Reducers
    pca_variance: list[float] = field(default_factory=lambda: [0.95])
    select_top_k: list[int] = field(default_factory=lambda: [15])
    # Search
    max_permutations: int = 8
    max_rounds: int = 2000
    # Patient early stopping: the selection sample repeats each household in every
    # snapshot, so its curve is noisy, and stopping at its first dip under-fits the big
    # spenders (a shorter patience costs holdout RMSE). More patience than this chooses
    # the same models on the shipped groups and only trains more rounds per trial.
    early_stopping_rounds: int = 100
    # Random forests are fitted on a bootstrap share of the rows: the cost grows with rows.
    rf_max_samples: float = 0.25
    # scikit-learn boosting's round cap; it stops early on the validation sample with the
    # same patience as LightGBM (`early_stopping_rounds`), growing 50 rounds at a time.
    gbr_max_iter: int = 500
    selection_metric: str = "rmse"
    seed: int = 42

    def __post_init__(self):
        # Refused when the space is built, before a training reads anything.
        check(self)


# -- permutations -------------------------------------------------------------------------

_ALGORITHM_PARAMS = {
    "lgbm_l2": ["num_leaves", "learning_rate", "min_child_samples", "feature_fraction", "lambda_l2"],
    "lgbm_tweedie": [
        "num_leaves", "learning_rate", "min_child_samples", "feature_fraction", "lambda_l2", "tweedie_variance_power",
    ],
    "random_forest": ["rf_n_estimators", "rf_max_depth", "rf_min_samples_leaf", "rf_max_features"],
    "sklearn_gbr": ["gbr_learning_rate", "gbr_max_leaf_nodes", "gbr_min_samples_leaf", "gbr_l2_regularization"],
}
_REDUCER_PARAMS = {"none": [], "pca": ["pca_variance"], "select_by_importance": ["select_top_k"]}


def _grid(space: LtvSearchSpace, names: list[str]) -> list[dict]:
    for name in names:
        if not getattr(space, name):
            raise ValueError(f"LtvSearchSpace.{name} is empty; give at least one value")
    return [dict(zip(names, values)) for values in itertools.product(*(getattr(space, n) for n in names))]


def check(space: LtvSearchSpace) -> None:
    """Refuse a space that names unknown values or allows no permutation (ValueError)."""
    for name, allowed, values in [
        ("algorithms", ALGORITHMS, space.algorithms), ("reducers", REDUCERS, space.reducers),
    ]:
        unknown = [v for v in values if v not in allowed]
        if unknown or not values:
            raise ValueError(f"LtvSearchSpace.{name}: unknown or no values {unknown}; expected a subset of {list(allowed)}")
    unknown = [s for s in space.feature_subsets if s not in FEATURE_SUBSETS]
    if unknown or not space.feature_subsets:
        raise ValueError(
            f"LtvSearchSpace.feature_subsets: unknown or no values {unknown}; expected a subset of {list(FEATURE_SUBSETS)}"
        )
    if space.selection_metric not in SELECTABLE:
        raise ValueError(f"LtvSearchSpace.selection_metric {space.selection_metric!r}; expected one of {sorted(SELECTABLE)}")
    if space.max_permutations < 1:
        raise ValueError(f"LtvSearchSpace.max_permutations must be ≥ 1, got {space.max_permutations}")
    if space.gbr_max_iter < 1:
        raise ValueError(f"LtvSearchSpace.gbr_max_iter must be ≥ 1, got {space.gbr_max_iter}")
    for name in ("max_rounds", "early_stopping_rounds"):
        if getattr(space, name) < 1:
            raise ValueError(f"LtvSearchSpace.{name} must be ≥ 1, got {getattr(space, name)}")


def permutations(space: LtvSearchSpace) -> list[dict]:
    """A deterministic, seeded sample of at most `max_permutations` from the cross product.

    Each permutation is a flat dict (algorithm, reducer, feature_subset and the
    parameters that apply to them), loggable as MLflow params. The sample is stratified
    by (algorithm, reducer): strata take turns in a seeded order, so a budget as large as
    the number of strata tries every declared algorithm and reducer at least once,
    whereas a plain sample would be dominated by the largest hyperparameter grid.
    """
    check(space)
    rng = random.Random(space.seed)
    strata = []
    for algorithm, reducer in itertools.product(space.algorithms, space.reducers):
        members = [
            {"algorithm": algorithm, "reducer": reducer, "feature_subset": subset, **hyper, **red}
            for subset in space.feature_subsets
            for hyper in _grid(space, _ALGORITHM_PARAMS[algorithm])
            for red in _grid(space, _REDUCER_PARAMS[reducer])
        ]
        rng.shuffle(members)
        strata.append(members)
    rng.shuffle(strata)
    chosen = []
    for layer in itertools.zip_longest(*strata):
        chosen.extend(p for p in layer if p is not None)
        if len(chosen) >= space.max_permutations:
            break
    return chosen[: space.max_permutations]
