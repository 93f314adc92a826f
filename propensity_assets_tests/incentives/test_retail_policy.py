"""The retail recommender (pure logic): its policy read back from JSON recommends exactly
what the lake table holds, and its policy values."""

import json

import numpy as np
import pandas as pd

from propensity_assets.incentives import retail_verdicts
from propensity_assets.incentives.retail_policy import (
    RetailPolicy, RetailRecommender, fit_policy, latest_rows, policy_values, recommendations, value_of,
)
from propensity_assets.incentives.retail_study import RetailConfig
from propensity_assets_tests.incentives.retail_data import synthetic_retail


def test_the_registered_policy_recommends_what_the_table_holds(tmp_path):
    study = synthetic_retail(effect=12.0, n=600)
    cells = retail_verdicts.estimate_cells(study.data, RetailConfig())
    table = recommendations(cells, RetailConfig())
    policy = fit_policy(cells, RetailConfig())
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy.to_dict()))
    model = RetailRecommender()
    model.load_context(type("Context", (), {"artifacts": {"policy": str(path)}})())
    rows = latest_rows(cells)
    out = model.predict(None, rows[["unit_id", "grp_spend_90d", "grp_baskets_90d", "hh_spend_90d"]])
    pd.testing.assert_frame_equal(out, table.drop(columns=["as_of"]))
    assert RetailPolicy.from_dict(policy.to_dict()).options[0].name == "campaign type B"
    assert fit_policy([c for c in cells if not c.identified], RetailConfig()) is None


def test_policy_values_at_the_lower_bound():
    profits = pd.DataFrame({"recommended": ["B", "none"], "expected_profit": [3.0, 0.0],
                            "expected_profit__none": [0.0, 0.0], "expected_profit__B": [3.0, -1.0]})
    assert policy_values(profits) == {"recommended": 1.5, "no incentive": 0.0, "treat all: B": 1.0}
    # A champion's option the candidate does not identify (C) earns 0.
    assert value_of(profits, np.array(["B", "C"])) == 1.5
    assert value_of(profits, np.array(["none", "B"])) == -0.5
