"""Every registered stage model is this MLflow pyfunc: it looks up its own features.

Like the Databricks feature store's `score_batch`, a caller passes only keys:

    model = mlflow.pyfunc.load_model("models:/ltv__all_products@champion")
    model.predict(pd.DataFrame({"household_id": [1, 2], "as_of": ["2017-12-01"] * 2}))

and the model reads `household_features` and `group_features` for those keys from the
lake (PROPENSITY_LAKE_URI, else the URI recorded at training). A caller that already
has the feature columns passes them instead and nothing is looked up; the scoring
assets do that with the lake of their own run.

This module and the pickled predictor import only pandas, numpy, pyarrow, scikit-learn,
LightGBM and MLflow, so the model loads in a virtualenv made from its requirements.
"""

from __future__ import annotations

import pickle

import mlflow.pyfunc
import numpy as np
import pandas as pd

from propensity_assets.shared import settings
from propensity_assets.shared.lake import Lake
from propensity_assets.features.declaration import KEYS
from propensity_assets.features.lookup import lookup_features

# What a registered model needs to load and predict, and nothing more.
PIP_REQUIREMENTS = ["mlflow", "pandas<3", "numpy", "pyarrow", "scikit-learn", "lightgbm"]


class LifecycleModel(mlflow.pyfunc.PythonModel):
    """One stage's model for one product group; scores keys or feature rows."""

    def load_context(self, context):
        config = context.model_config
        self.group = config["product_group"]
        self.output = config["output_column"]
        self.lower = config.get("output_min")
        self.upper = config.get("output_max")
        self.lake_uri = settings.configured_lake_uri() or config["lake_uri"]
        with open(context.artifacts["predictor"], "rb") as handle:
            self.predictor = pickle.load(handle)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = model_input.copy()
        frame["as_of"] = frame["as_of"].astype(str)
        if not set(self.predictor.features) <= set(frame.columns):
            looked_up = lookup_features(Lake(self.lake_uri), frame[KEYS], self.group)
            frame = frame[KEYS].merge(looked_up, on=KEYS, how="left")
        # A household outside the population at its as_of has no features: no prediction.
        known = frame["hh_days_since_last"].notna() if "hh_days_since_last" in frame else pd.Series(True, index=frame.index)
        values = pd.Series(np.nan, index=frame.index)
        if known.any():
            predicted = np.asarray(self.predictor.predict(frame.loc[known]), dtype="float64")
            values[known] = np.clip(predicted, self.lower, self.upper)
        return pd.DataFrame({"household_id": frame["household_id"], "as_of": frame["as_of"], self.output: values})
