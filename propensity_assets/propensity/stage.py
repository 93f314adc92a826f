"""The propensity stage: what it declares to the shared lifecycle.

Label: the household buys any product of the group within 30 days (CONTRACTS §4).
Model: LightGBM binary classifiers over a declared search space. Metric: average
precision, beating the recency and 90-day-basket baselines on ROC AUC and AP (§7).
Profile: `propensity__<group>` and `propensity_decile__<group>`.
"""

from propensity_assets.lifecycle.config import search_config
from propensity_assets.lifecycle.stage import LabelSpec, ModelStage, ProfileColumns, lazy
from propensity_assets.propensity.space import HORIZON_DAYS, SearchSpace
from propensity_assets.shared import tables



PropensityTraining = search_config(
    "PropensityTraining",
    SearchSpace,
    """Training window and the hyperparameter search space (CONTRACTS §7).

    Every list is a dimension of the grid; `max_trials` permutations are sampled.
    Early stopping watches `selection_metric` only.
    """,
)


# The model code (LightGBM, scikit-learn) loads when a run trains or evaluates, not with the definitions.
MODEL = "propensity_assets.propensity.model"


def _train(fit_df, select_df, config):
    from propensity_assets.propensity.model import train

    return train(fit_df, select_df, config.space(), threads=config.training_threads)


PROPENSITY = ModelStage(
    name="propensity",
    title="propensity",
    labels_table=tables.PROPENSITY_LABELS,
    label=LabelSpec.any_purchase(
        description=(
            "The propensity label (CONTRACTS §4): 1 if the household bought any product of the group on a day "
            "d ≤ day < d + 30, else 0, for every household in the population at d. A partition whose label "
            "window runs past the end of the data is refused."
        ),
        schedule_minute=30,
    ),
    scores_table=tables.PROPENSITY_SCORES,
    score_column="score",
    report_metrics=("roc_auc", "average_precision", "brier", "lift_top_decile"),
    report_window="(labels {as_of} + 30 days)",
    actual_name="purchase rate",
    horizon_days=lambda: HORIZON_DAYS,
    train=_train,
    evaluate=lazy(f"{MODEL}:evaluate"),
    baselines=lazy(f"{MODEL}:baseline_scores"),
    metric="average_precision",
    higher_is_better={"average_precision": True, "roc_auc": True, "brier": False, "log_loss": False, "lift_top_decile": True},
    baseline_metrics=("roc_auc", "average_precision"),
    profile=ProfileColumns(prefix="propensity", value_column="score"),
    reports=lazy(f"{MODEL}:reports"),
    output_min=0.0,
    output_max=1.0,
)
