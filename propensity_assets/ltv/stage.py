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
