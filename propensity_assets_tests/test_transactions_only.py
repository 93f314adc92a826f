"""A user's own data with nothing but transactions (no products, no campaigns) and a
catalogue holding only `all_products` (CONTRACTS §2): ingest, features, labels, the
propensity and LTV lifecycles and the profile run unchanged. Real Spark, MLflow and
Dagster on a small generated dataset (48 households, 2017-01-01 .. 2017-06-30).
"""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from propensity_assets.shared import registry, settings
from propensity_assets.shared.lake import Lake
from propensity_assets_tests.in_process import project

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")

CUTOFF = "2017-06-30"  # a Friday, and the last day of the data
GROUP = "all_products"


def generate(n_households: int = 48, seed: int = 5) -> pd.DataFrame:
    """Households with their own visit rate and basket size; product ids no table knows."""
    rng = np.random.default_rng(seed)
    rows, basket = [], 1
    for h in range(1, n_households + 1):
        gap, size = rng.uniform(2, 15), rng.uniform(5, 60)
        day = date(2017, 1, 1) + timedelta(days=int(rng.integers(0, 20)))
        while day <= date(2017, 6, 30):
            for _ in range(int(rng.integers(1, 4))):
                rows.append((h, basket, int(rng.integers(1, 30)), 1.0, round(float(rng.gamma(2.0, size / 4)), 2),
                             f"{day} {int(rng.integers(8, 21)):02d}:00:00"))
            basket += 1
            day += timedelta(days=max(1, int(rng.exponential(gap))))
    return pd.DataFrame(rows, columns=["household_id", "basket_id", "product_id", "quantity", "sales_value",
                                       "transaction_timestamp"])


def in_range(start: str, end: str, group: str | None = GROUP) -> dict:
    suffix = f"|{group}" if group else ""
    return {ASSET_PARTITION_RANGE_START_TAG: f"{start}{suffix}", ASSET_PARTITION_RANGE_END_TAG: f"{end}{suffix}"}


@pytest.fixture(scope="module")
def run(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("transactions_only")
    (root / "source").mkdir()
    generate().to_csv(root / "source" / "transactions.csv", index=False)
    (root / "groups.yaml").write_text("product_groups:\n  all_products:\n    description: Everything\n    all: true\n")
    with project(root, spark, [GROUP]) as (materialize, resources):
        yield materialize, Lake(str(root / "lake")), resources["mlflow"].client()


TINY_PROPENSITY = {"history_weeks": 4, "num_leaves": [4], "learning_rate": [0.1], "min_child_samples": [5],
                   "feature_fraction": [1.0], "lambda_l2": [0.0], "max_trials": 1, "max_rounds": 30,
                   "early_stopping_rounds": 5}
TINY_LTV = {"history_weeks": 4, "algorithms": ["lgbm_l2"], "reducers": ["none"], "feature_subsets": ["all"],
            "num_leaves": [4], "min_child_samples": [5], "max_permutations": 1, "max_rounds": 50,
            "early_stopping_rounds": 10}


def test_the_whole_pipeline_on_transactions_only(run):
    materialize, lake, client = run
    ingest = materialize(["transactions", "products", "households", "campaigns", "campaign_descriptions", "coupons",
                          "coupon_redemptions", "product_group_members"])
    materializations = [e.event_specific_data.materialization for e in ingest.get_asset_materialization_events()]
    notes = {m.asset_key.to_user_string(): m.metadata.get("note") for m in materializations}
    for table in ("products", "campaigns"):
        assert notes[table].value.startswith(f"the source has no {table} table (")
        assert notes[table].value.endswith(f"/source/{table}.*); written empty")
    members = lake.read_pandas("product_group_members")
    assert members["product_group"].tolist() == [GROUP] and members["product_id"].isna().all()

    materialize(["household_features"], tags=in_range("2017-03-04", CUTOFF, group=None))
    materialize(["group_features"], tags=in_range("2017-03-04", CUTOFF))
    materialize(["propensity_labels"], tags=in_range("2017-05-03", "2017-05-31"))
    ltv_run = materialize(["ltv_labels"], tags=in_range("2017-03-04", "2017-04-01"))

    # all_products' group features are the household features (CONTRACTS §2).
    hh = lake.read_pandas("household_features").set_index(["as_of", "household_id"]).sort_index()
    grp = lake.read_pandas("group_features").set_index(["as_of", "household_id"]).sort_index()
    for metric in ("baskets", "spend", "units", "days"):
        for w in (30, 90, 365):
            np.testing.assert_allclose(grp[f"grp_{metric}_{w}d"], hh[f"hh_{metric}_{w}d"], err_msg=f"{metric}_{w}d")
    np.testing.assert_array_equal(grp["grp_days_since_last"], hh["hh_days_since_last"])
    assert (grp.loc[grp["grp_spend_365d"] > 0, "grp_spend_share_365d"] == 1.0).all()
    # The LTV label of all_products is the household's total spend over the 90 days.
    tx = lake.read_pandas("transactions")
    day = tx["transaction_timestamp"].dt.normalize()
    window = tx[(day >= "2017-04-01") & (day < pd.Timestamp("2017-04-01") + pd.Timedelta(days=90))]
    expected = window.groupby("household_id")["sales_value"].sum()
    labels = lake.read_pandas("ltv_labels")
    got = labels[labels["as_of"] == "2017-04-01"].set_index("household_id")["label"]
    np.testing.assert_allclose(got.reindex(expected.index), expected.to_numpy())
    # The labels run's summary is what it wrote: every row of the 29 dates, their mean and positive share.
    meta = ltv_run.get_asset_materialization_events()[0].materialization.metadata
    assert meta["run_rows"].value == len(labels) and meta["partitions_written"].value == 29
    # ... and each partition its own rows and mean label.
    for event in ltv_run.get_asset_materialization_events():
        as_of = event.materialization.partition.split("|")[0]
        mine = labels[labels["as_of"] == as_of]["label"]
        own = event.materialization.metadata
        assert own["rows"].value == own["dagster/row_count"].value == len(mine), as_of
        assert own["label_mean"].value == pytest.approx(mine.mean(), rel=1e-12), as_of
    summary = meta["by_group"].value
    share = (labels['label'] > 0).mean()
    assert f"| {GROUP} | {len(labels)} | {labels['label'].mean():.4f} | {share:.4f} |" in summary

    key = f"{CUTOFF}|{GROUP}"
    for stage, config in (("propensity", TINY_PROPENSITY), ("ltv", TINY_LTV)):
        result = materialize([f"{stage}_model", f"{stage}_champion"], partition_key=key,
                             run_config={"ops": {f"{stage}_model": {"config": config}}})
        decision = result.asset_materializations_for_node(f"{stage}_champion")[0].metadata["decision"].value
        assert decision in ("champion", "rejected"), decision
        name = registry.model_name(stage, GROUP)
        if registry.version_by_alias(client, name, registry.CHAMPION) is None:
            registry.promote(client, name, "1", "the test needs a champion to score with", by="test")

    materialize(["propensity_scores", "ltv_scores"], partition_key=key)
    # The retail campaign study has nothing to do, says so, and fails nothing.
    retail = materialize(["retail_study_data"], partition_key=GROUP)
    why = "nothing to do: the dataset has no campaigns (campaigns or campaign_descriptions is empty)"
    summary = lake.read_partition("incentive_summary", {"study": "retail_all_products"})
    assert summary[["treatment", "verdict", "reason"]].values.tolist() == [["no campaign", "not identified", why]]
    assert not lake.exists("incentive_study_data", {"study": "retail_all_products"})
    meta = {m.asset_key.to_user_string(): m.metadata for m in
            (e.event_specific_data.materialization for e in retail.get_asset_materialization_events())}
    assert meta["retail_study_data"]["nothing to do"].value == {GROUP: why}
    materialize(["customer_profile"], partition_key=CUTOFF)
    profile = lake.read_pandas("customer_profile")
    assert list(profile.columns) == [
        "household_id", "propensity__all_products", "propensity_decile__all_products",
        "ltv__all_products", "ltv_decile__all_products", "incentive__all_products", "as_of",
    ]
    assert set(profile["incentive__all_products"]) == {"not identified"}
    assert len(profile) == lake.read_pandas("household_features").query("as_of == @CUTOFF").shape[0]
    assert profile["propensity__all_products"].between(0, 1).all() and (profile["ltv__all_products"] >= 0).all()
