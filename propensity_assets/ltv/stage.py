"""The LTV stage: what it declares to the shared lifecycle.

Label: the household's spend on the group over the next H days (CONTRACTS §8; H = 90 by
default, `PROPENSITY_LTV_HORIZON_DAYS`: a deployment setting, not launchpad config, because
the labels table, its schedule and every trained model must share one H; see
`settings.ltv_horizon_days`). Model: the seed's parameter-permutation
interface over regressors (LightGBM L2 and Tweedie, random forest, scikit-learn
gradient boosting) × reducers (none, PCA, selection by importance) × feature subsets.
Metric: RMSE; a candidate must beat the previous-H-days spend and the BTYD baseline
(BG/NBD + Gamma-Gamma) on RMSE and normalized Gini. Profile: `ltv__<group>`, `ltv_decile__<group>`.
"""

from propensity_assets.shared import settings, tables
from propensity_assets.lifecycle.config import search_config
from propensity_assets.lifecycle.stage import LabelSpec, ModelStage, ProfileColumns, TrainResult, lazy
from propensity_assets.ltv.space import LtvSearchSpace


LtvTraining = search_config(
    "LtvTraining",
    LtvSearchSpace,
    """The parameter-permutation interface as launchpad config (the fields of `LtvSearchSpace`).

    Every list is a dimension of the cross product of algorithms × reducers × feature
    subsets × each algorithm's hyperparameters; `max_permutations` of them are tried
    (stratified so every algorithm and reducer is tried), each a child run in MLflow.
    """,
    history_weeks=26,
)


def _train(fit_df, select_df, config) -> TrainResult:
    from propensity_assets.ltv.model import train

    return train(fit_df, select_df, config.space(), horizon_days=settings.ltv_horizon_days(),
                 threads=config.training_threads)


def _baselines(frame, horizon_days: int) -> dict:
    """The previous H days' spend, and BTYD (BG/NBD + Gamma-Gamma) fitted on the snapshot's
    own history (RFM as of the snapshot: it sees nothing after as_of)."""
    from propensity_assets.ltv.btyd import BtydBaseline
    from propensity_assets.ltv.metrics import previous_spend_baseline

    return {
        "previous_spend": previous_spend_baseline(frame, horizon_days),
        "btyd": BtydBaseline().fit(frame).predict(frame, horizon_days),
    }


LTV = ModelStage(
    name="ltv",
    title="LTV",
    labels_table=tables.LTV_LABELS,
    label=LabelSpec.total(
        "sales_value",
        description=(
            "The LTV label (CONTRACTS §8): the household's spend on the group's products on days "
            "d ≤ day < d + H (H = PROPENSITY_LTV_HORIZON_DAYS, 90 by default; total spend for `all_products`), "
            "0 for a household of the population that bought nothing in the group then. A partition whose "
            "horizon runs past the end of the data is refused."
        ),
        schedule_minute=40,
    ),
    scores_table=tables.LTV_SCORES,
    score_column="ltv",
    report_metrics=("rmse", "normalized_gini", "mae", "spearman", "top_decile_capture", "calibration"),
    report_window="(labels {as_of} + H days)",
    actual_name="spend",
    horizon_days=settings.ltv_horizon_days,
    train=_train,
    evaluate=lazy("propensity_assets.ltv.metrics:evaluate"),  # scipy loads with the run
    baselines=_baselines,
    metric="rmse",
    higher_is_better={
        "rmse": False, "mae": False, "normalized_gini": True, "spearman": True, "top_decile_capture": True,
    },
    baseline_metrics=("rmse", "normalized_gini"),
    # BTYD is a fitted model, not a naive rule: on small groups its RMSE and the regressors'
    # differ by less than the bootstrap's noise while the regressors rank better, so only a
    # loss at 95 % confidence counts.
    baseline_confidence=0.95,
    profile=ProfileColumns(prefix="ltv", value_column="ltv"),
    score_extras=lambda: {"horizon_days": settings.ltv_horizon_days()},
    reports=lazy("propensity_assets.ltv.metrics:reports"),
    output_min=0.0,
    output_max=None,
)
