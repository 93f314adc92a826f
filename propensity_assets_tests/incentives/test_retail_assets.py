"""The retail campaign study assets end to end on a small source with campaigns: real
ingest, Spark features, the study, its verdicts and checks, recommendations, the registered
recommender and the profile column it declares (real Spark, MLflow and Dagster)."""


import pandas as pd
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from propensity_assets.definitions import defs
from propensity_assets.profile.sources import sources_from, study_columns
from propensity_assets.shared.lake import Lake
from propensity_assets_tests.in_process import project
from propensity_assets_tests.incentives.retail_data import planted_retail_data

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")

STARTS = (pd.Timestamp("2017-04-03"), pd.Timestamp("2017-05-01"))
EFFECT = 12.0


def write_source(directory) -> None:
    """The planted data in the canonical schema: the group's product 1 is CHEESE; product 2
    (EGGS) is in no coupon pool."""
    tx, tables = planted_retail_data(EFFECT, n=400, seed=11, starts=STARTS)
    tx = pd.concat([tx, pd.DataFrame({"household_id": [1], "product_id": [2], "sales_value": [1.0],
                                      "day": [pd.Timestamp("2017-01-02")], "coupon_disc": [0.0]})], ignore_index=True)
    tx["basket_id"] = range(1, len(tx) + 1)
    tx["quantity"] = 1.0
    tx["transaction_timestamp"] = tx.pop("day") + pd.Timedelta(hours=10)
    tx.to_csv(directory / "transactions.csv", index=False)
    pd.DataFrame({"product_id": [1, 2], "product_category": ["CHEESE", "EGGS"]}).to_csv(directory / "products.csv", index=False)
    tables.campaigns.to_csv(directory / "campaigns.csv", index=False)
    tables.descriptions.to_csv(directory / "campaign_descriptions.csv", index=False)
    tables.coupons.to_csv(directory / "coupons.csv", index=False)
    tables.redemptions.to_csv(directory / "coupon_redemptions.csv", index=False)


def test_retail_studies_from_the_lake(tmp_path, spark):
    (tmp_path / "source").mkdir()
    write_source(tmp_path / "source")
    (tmp_path / "groups.yaml").write_text(
        "product_groups:\n  cheese:\n    categories: [CHEESE]\n  eggs:\n    categories: [EGGS]\n")
    lake = Lake(str(tmp_path / "lake"))
    with project(tmp_path, spark, ["cheese", "eggs"]) as (materialize, resources):
        materialize(["transactions", "products", "households", "campaigns", "campaign_descriptions", "coupons",
                     "coupon_redemptions", "product_group_members"])
        # Features over the starts and 28 days before them (the placebo's): 2017-03-06 .. 2017-05-01.
        materialize(["household_features"], tags={ASSET_PARTITION_RANGE_START_TAG: "2017-03-06",
                                                  ASSET_PARTITION_RANGE_END_TAG: "2017-05-01"})
        materialize(["group_features"], tags={ASSET_PARTITION_RANGE_START_TAG: "2017-03-06|cheese",
                                              ASSET_PARTITION_RANGE_END_TAG: "2017-05-01|eggs"})
        result = materialize(["retail_study_data"], tags={ASSET_PARTITION_RANGE_START_TAG: "cheese",
                                                          ASSET_PARTITION_RANGE_END_TAG: "eggs"})
        client = resources["mlflow"].client()
        champion = client.get_model_version_by_alias("incentive__retail_cheese", "champion")
        registered = {m.name for m in client.search_registered_models()}

    meta = {m.asset_key.to_user_string(): m.metadata for m in
            (e.event_specific_data.materialization for e in result.get_asset_materialization_events())}["retail_study_data"]
    assert meta["nothing to do"].value == {"eggs": "nothing to do: no campaign's coupon pool holds a product of the group"}
    assert meta["excluded rows"].value == 0
    data = lake.read_pandas("incentive_study_data")
    cheese = data[data["study"] == "retail_cheese"]
    tx = lake.read_pandas("transactions")
    # Every household that shopped in the 90 days before each start is a unit of that campaign.
    for campaign, start in zip((1, 2), STARTS):
        day = tx["transaction_timestamp"].dt.tz_localize(None).dt.normalize()
        shoppers = set(tx.loc[(day >= start - pd.Timedelta(days=90)) & (day < start), "household_id"])
        assert set(cheese.loc[cheese["campaign_id"] == campaign, "unit_id"]) == shoppers
    assert (data["study"] == "retail_eggs").sum() == 0

    row = lake.read_partition("incentive_summary", {"study": "retail_cheese"}).iloc[0]
    assert (row["treatment"], row["campaign_type"], row["n_treated"] + row["n_control"]) == (
        "campaign type B", "B", len(cheese))
    assert row["n_treated"] == int(cheese["treated"].sum())
    assert row["ate_lower"] <= EFFECT <= row["ate_upper"], row.to_dict()
    assert row["placebo_lower"] <= 0 <= row["placebo_upper"], row.to_dict()
    assert row["verdict"] == "identified", row["reason"]
    eggs = lake.read_partition("incentive_summary", {"study": "retail_eggs"})
    assert eggs[["treatment", "verdict", "reason", "n_treated"]].values.tolist() == [
        ["no campaign", "not identified", "nothing to do: no campaign's coupon pool holds a product of the group", 0]]
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["placebo"].passed and checks["plausibility"].passed

    recs = lake.read_pandas("incentive_recommendations")
    assert set(recs["study"]) == {"retail_cheese"}
    assert len(recs) == cheese["unit_id"].nunique()
    # The recommender of the group with an identified campaign type is registered and promoted.
    assert str(champion.version) == "1" and champion.tags["vetting.decision"] == "champion", champion.tags
    assert "incentive__retail_cheese" in registered and "incentive__retail_eggs" not in registered
    assert float(champion.tags["vetting.lower_bound_profit"]) > 0
    meta_recs = {m.asset_key.to_user_string(): m.metadata for m in
                 (e.event_specific_data.materialization for e in result.get_asset_materialization_events())}
    assert "incentive__retail_cheese" in meta_recs["retail_recommendations"]["models"].value
    # Each group's partition its own figures (one run studied both groups).
    own = {(m.asset_key.to_user_string(), m.partition): m.metadata for m in
           (e.event_specific_data.materialization for e in result.get_asset_materialization_events())}
    cheese_recs, eggs_recs = own[("retail_recommendations", "cheese")], own[("retail_recommendations", "eggs")]
    assert cheese_recs["households_recommended"].value == len(recs) == cheese_recs["dagster/row_count"].value
    assert (cheese_recs["model_version"].value, cheese_recs["decision"].value) == ("1", "champion")
    assert (cheese_recs["identified"].value, eggs_recs["identified"].value) == (1, 0)
    assert own[("retail_study_data", "cheese")]["study_rows"].value == len(cheese)
    assert own[("retail_study_data", "eggs")]["study_rows"].value == 0 and "model_version" not in eggs_recs
    assert own[("retail_summary", "cheese")]["lake_location"].value.endswith("/incentive_summary/study=retail_cheese")

    (source,) = [s for s in sources_from(defs.assets) if s.asset_key == "retail_recommendations"]
    profile = study_columns(lake, source, ["cheese", "eggs"], pd.Series(sorted(cheese["unit_id"].unique())))
    assert list(profile) == ["incentive__cheese", "incentive__eggs"]
    assert set(profile["incentive__eggs"]) == {"not identified"}
    by_household = recs.set_index("unit_id")["recommended"]
    assert profile["incentive__cheese"].tolist() == by_household.reindex(sorted(cheese["unit_id"].unique())).tolist()
