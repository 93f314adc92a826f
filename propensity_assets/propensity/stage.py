"""The propensity stage: what it declares to the shared lifecycle.

Label: the household buys any product of the group within 30 days (CONTRACTS §4).
Model: LightGBM binary classifiers over a declared search space. Metric: average
precision, beating the recency and 90-day-basket baselines on ROC AUC and AP (§7).
Profile: `propensity__<group>` and `propensity_decile__<group>`.
"""

from propensity_assets.lifecycle.assets import TrainingConfig
from propensity_assets.lifecycle.stage import ModelStage, ProfileColumns
from propensity_assets.propensity import model as M

LABELS_TABLE = "propensity_labels"
SCORES_TABLE = "propensity_scores"


class PropensityTraining(TrainingConfig):
    """Training window and the hyperparameter search space (CONTRACTS §7).

    Every list is a dimension of the grid; `max_trials` permutations are sampled.
    Early stopping watches `selection_metric` only.
    """

    num_leaves: list[int] = [15, 31, 63]
    learning_rate: list[float] = [0.03, 0.08]
    min_child_samples: list[int] = [50, 200]
    feature_fraction: list[float] = [0.7, 1.0]
    lambda_l2: list[float] = [0.0, 5.0]
    max_trials: int = 6
    max_rounds: int = 1500
    early_stopping_rounds: int = 50
    selection_metric: str = "average_precision"

    def space(self) -> M.SearchSpace:
        return M.SearchSpace(**{name: getattr(self, name) for name in M.SearchSpace.__dataclass_fields__})


def _train(fit_df, select_df, config: PropensityTraining):
    return M.train(fit_df, select_df, config.space())


PROPENSITY = ModelStage(
    name="propensity",
    title="propensity",
    labels_table=LABELS_TABLE,
    scores_table=SCORES_TABLE,
    score_column="score",
    horizon_days=lambda: M.HORIZON_DAYS,
    train=_train,
    evaluate=M.evaluate,
    baselines=M.baseline_scores,
    metric="average_precision",
    higher_is_better={"average_precision": True, "roc_auc": True, "brier": False, "log_loss": False, "lift_top_decile": True},
    baseline_metrics=("roc_auc", "average_precision"),
    profile=ProfileColumns(prefix="propensity", value_column="score"),
    reports=lambda y, p: {"calibration": M.calibration_table(y, p)},
    output_min=0.0,
    output_max=1.0,
)
