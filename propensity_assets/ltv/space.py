"""The LTV parameter-permutation space (the seed's interface): plain data, importable
without LightGBM or scikit-learn (the launchpad config is built from it, see
`lifecycle.config.search_config`)."""

from __future__ import annotations

from dataclasses import dataclass, field

ALGORITHMS = ("lgbm_l2", "lgbm_tweedie", "random_forest", "sklearn_gbr")
REDUCERS = ("none", "pca", "select_by_importance")
FEATURE_SUBSETS = ("all", "rates", "household", "group", "lake")


@dataclass
class LtvSearchSpace:
    """A declared space of LTV regressors; every list is a dimension of the cross product.

    The launchpad config (`ltv.stage.LtvTraining`) has exactly these fields. `max_permutations`
    bounds the cost: with the defaults, the 12 shipped groups at one cutoff (26 weekly
    snapshots, ~57k rows per group) train in 257 s with BTYD on an idle 2-core machine
    (`benchmarks/ltv_benchmark.py speed`, median of 2; 433 s with OMP_WAIT_POLICY=PASSIVE).
    12 would try every (algorithm, reducer) pair once at about 1.5× the time.
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
    # snapshot, so its curve is noisy, and stopping at its first dip under-fits the
    # big spenders (measured: 50 rounds of patience cost ~5 RMSE on the holdout). 100
    # rounds choose the same model as 200 for all 12 shipped groups at 2017-09-29
    # (identical holdout RMSE and Gini) and train ~100 fewer rounds per LightGBM trial.
    early_stopping_rounds: int = 100
    # Random forests are fitted on a bootstrap share of the rows: the cost grows with rows.
    rf_max_samples: float = 0.25
    # scikit-learn boosting's round cap; it stops early on the validation sample with the
    # same patience as LightGBM (`early_stopping_rounds`), growing 50 rounds at a time.
    gbr_max_iter: int = 500
    selection_metric: str = "rmse"
    seed: int = 42
