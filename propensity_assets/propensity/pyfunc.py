"""The registered propensity model as an MLflow pyfunc that looks up its own features.

Like the Databricks feature store's `score_batch`, a caller passes only keys:

    model = mlflow.pyfunc.load_model("models:/propensity__soft_drinks@champion")
    model.predict(pd.DataFrame({"household_id": [1, 2], "as_of": ["2017-12-01"] * 2}))

and the model reads `household_features` and `group_features` for those keys from
the lake (the URI recorded at training, or PROPENSITY_LAKE_URI). A caller that
already has the feature columns may pass them instead; nothing is looked up then.
"""

import os

import lightgbm as lgb
import mlflow.pyfunc
import pandas as pd
import pyarrow.dataset as ds

from propensity_assets.lake import Lake
from propensity_assets.propensity.model import KEYS, feature_matrix


class FeatureLookupError(LookupError):
    """The lake lacks the features a lookup needs; the message names table and partition."""


def lookup_features(lake: Lake, keys: pd.DataFrame, group: str) -> pd.DataFrame:
    """Feature rows for (household_id, as_of) keys, from the lake. Keys outside the
    population at their as_of get no row."""
    dates = sorted(keys["as_of"].astype(str).unique())
    for table, spec in [("household_features", {}), ("group_features", {"product_group": group})]:
        for d in dates:
            if not lake.exists(table, {"as_of": d, **spec}):
                where = "/".join([f"as_of={d}", *(f"{k}={v}" for k, v in spec.items())])
                raise FeatureLookupError(
                    f"lake table {table!r} has no partition {where}: materialize {table} for as_of {d} first"
                )
    in_dates = ds.field("as_of").isin(dates)
    household = lake.read_pandas("household_features", filters=in_dates)
    grp = lake.read_pandas("group_features", filters=in_dates & (ds.field("product_group") == group))
    return feature_matrix(household, grp.drop(columns=["product_group"]))


class PropensityModel(mlflow.pyfunc.PythonModel):
    """LightGBM propensity for one product group; scores keys or feature rows."""

    def load_context(self, context):
        config = context.model_config
        self.features = list(config["features"])
        self.group = config["product_group"]
        self.best_iteration = int(config.get("best_iteration") or 0) or None
        self.lake_uri = os.environ.get("PROPENSITY_LAKE_URI") or config["lake_uri"]
        self.booster = lgb.Booster(model_file=context.artifacts["booster"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = model_input.copy()
        frame["as_of"] = frame["as_of"].astype(str)
        if not set(self.features) <= set(frame.columns):
            looked_up = lookup_features(Lake(self.lake_uri), frame[KEYS], self.group)
            frame = frame[KEYS].merge(looked_up, on=KEYS, how="left")
        known = frame[self.features[0]].notna() if "hh_days_since_last" not in frame else frame["hh_days_since_last"].notna()
        scores = pd.Series(float("nan"), index=frame.index)
        if known.any():
            scores[known] = self.booster.predict(
                frame.loc[known, self.features].astype("float64"), num_iteration=self.best_iteration
            )
        return pd.DataFrame({"household_id": frame["household_id"], "as_of": frame["as_of"], "score": scores})
