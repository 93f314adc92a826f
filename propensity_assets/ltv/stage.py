"""The LTV stage: what it declares to the shared lifecycle.

Label: the household's spend on the group over the next H days (CONTRACTS §8; H = 90 by
default, `PROPENSITY_LTV_HORIZON_DAYS`). Model: the seed's parameter-permutation
interface over regressors (LightGBM L2 and Tweedie, random forest, scikit-learn
gradient boosting) × reducers (none, PCA, selection by importance) × feature subsets.
Metric: RMSE; a candidate must beat the previous-H-days spend and the BTYD baseline
(BG/NBD + Gamma-Gamma) on RMSE and normalized Gini. Profile: `ltv__<group>`, `ltv_decile__<group>`.
"""

from propensity_assets import settings
from propensity_assets.lifecycle.assets import TrainingConfig
from propensity_assets.lifecycle.stage import ModelStage, ProfileColumns, TrainResult
from propensity_assets.ltv import metrics as LM

LABELS_TABLE = "ltv_labels"
SCORES_TABLE = "ltv_scores"


class LtvTraining(TrainingConfig):
    """The parameter-permutation interface as launchpad config (mirrors `LtvSearchSpace`).

    Every list is a dimension of the cross product of algorithms × reducers × feature
    subsets × each algorithm's hyperparameters; `max_permutations` of them are tried
    (stratified so every algorithm and reducer is tried), each a child run in MLflow.
    """

    history_weeks: int = 26
    algorithms: list[str] = ["lgbm_l2", "lgbm_tweedie", "random_forest", "sklearn_gbr"]
    reducers: list[str] = ["none", "pca", "select_by_importance"]
    feature_subsets: list[str] = ["all", "rates"]
    num_leaves: list[int] = [7, 15]
    learning_rate: list[float] = [0.05]
    min_child_samples: list[int] = [50, 100]
    feature_fraction: list[float] = [0.8]
    lambda_l2: list[float] = [10.0]
    tweedie_variance_power: list[float] = [1.2, 1.5]
    rf_n_estimators: list[int] = [60]
    rf_max_depth: list[int] = [10, 16]
    rf_min_samples_leaf: list[int] = [20, 50]
    rf_max_features: list[float] = [0.3]
    gbr_learning_rate: list[float] = [0.05]
    gbr_max_leaf_nodes: list[int] = [15, 31]
    gbr_min_samples_leaf: list[int] = [50, 200]
    gbr_l2_regularization: list[float] = [0.0, 1.0]
    pca_variance: list[float] = [0.95]
    select_top_k: list[int] = [15]
    max_permutations: int = 8
    max_rounds: int = 2000
    early_stopping_rounds: int = 200
    rf_max_samples: float = 0.25
    gbr_max_iter: int = 500
    selection_metric: str = "rmse"

    def space(self):
        from propensity_assets.ltv.model import LtvSearchSpace

        return LtvSearchSpace(**{name: getattr(self, name) for name in LtvSearchSpace.__dataclass_fields__})


def _train(fit_df, select_df, config: LtvTraining) -> TrainResult:
    from propensity_assets.ltv.model import train

    result = train(fit_df, select_df, config.space(), horizon_days=settings.ltv_horizon_days())
    return TrainResult(
        predictor=result.predictor,
        params=result.params,
        trials=result.trials,
        selection_metrics=result.validation_metrics,
        importances=result.importances,
        figures=lambda y, p: result.figures(),
    )


def _baselines(frame, horizon_days: int) -> dict:
    """The previous H days' spend, and BTYD (BG/NBD + Gamma-Gamma) fitted on the snapshot's
    own history (RFM as of the snapshot: it sees nothing after as_of)."""
    from propensity_assets.ltv.btyd import BtydBaseline

    return {
        "previous_spend": LM.previous_spend_baseline(frame, horizon_days),
        "btyd": BtydBaseline().fit(frame).predict(frame, horizon_days),
    }


LTV = ModelStage(
    name="ltv",
    title="LTV",
    labels_table=LABELS_TABLE,
    scores_table=SCORES_TABLE,
    score_column="ltv",
    horizon_days=settings.ltv_horizon_days,
    train=_train,
    evaluate=LM.evaluate,
    baselines=_baselines,
    metric="rmse",
    higher_is_better={
        "rmse": False, "mae": False, "normalized_gini": True, "spearman": True, "top_decile_capture": True,
    },
    baseline_metrics=("rmse", "normalized_gini"),
    profile=ProfileColumns(prefix="ltv", value_column="ltv"),
    score_extras=lambda: {"horizon_days": settings.ltv_horizon_days()},
    reports=lambda y, p: {"deciles": LM.decile_table(y, p)},
    output_min=0.0,
    output_max=None,
)
