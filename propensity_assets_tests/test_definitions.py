"""The code location as Dagster sees it: a snapshot of the asset graph, and runs launched
the way single-run backfills and `--partition-range` launch them (range tags, one run)."""

import subprocess
import sys
from datetime import date

import dagster as dg
import pandas as pd
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from propensity_assets.shared.lake import Lake
from propensity_assets.shared.resources import LakeResource
from propensity_assets_tests.conftest import REPO, tx_frame

# Single-run backfill policies are beta in Dagster 1.13; the project relies on them knowingly.
pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")


def _partitions_type(partitions_def) -> str | None:
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        dims = ", ".join(
            f"{dim.name}: {_partitions_type(dim.partitions_def)}" for dim in partitions_def.partitions_defs
        )
        return f"MultiPartitionsDefinition({dims})"
    if isinstance(partitions_def, dg.DynamicPartitionsDefinition):
        return f"DynamicPartitionsDefinition[{partitions_def.name}]"
    return type(partitions_def).__name__


# An unintended change to the asset graph shows up here, in review. Update it on purpose.
DAILY = "DailyPartitionsDefinition"
GROUPS = "DynamicPartitionsDefinition[product_group]"
AS_OF_X_GROUP = f"MultiPartitionsDefinition(as_of: {DAILY}, product_group: {GROUPS})"
CUTOFF_X_GROUP = f"MultiPartitionsDefinition(cutoff: WeeklyPartitionsDefinition, product_group: {GROUPS})"
GROUP = "DynamicPartitionsDefinition[product_group]"
STUDY = "DynamicPartitionsDefinition[incentive_study]"
EXPECTED_ASSET_GRAPH = [
    ("audiences", "audiences", AS_OF_X_GROUP, ["customer_profile"]),
    ("campaign_descriptions", "ingest", None, []),
    ("campaigns", "ingest", None, []),
    ("coupon_redemptions", "ingest", None, []),
    ("coupons", "ingest", None, []),
    ("customer_profile", "profile", DAILY, ["ltv_scores", "propensity_scores"]),
    ("group_features", "features", AS_OF_X_GROUP, ["product_group_members", "transactions"]),
    ("household_features", "features", DAILY, ["transactions"]),
    ("households", "ingest", None, []),
    ("incentive_effects", "incentives", STUDY, ["incentive_graph", "incentive_study_data"]),
    ("incentive_graph", "incentives", STUDY, ["incentive_study_data"]),
    (
        "incentive_recommendations",
        "incentives",
        STUDY,
        ["incentive_effects", "incentive_refutations", "incentive_study_data"],
    ),
    ("incentive_refutations", "incentives", STUDY, ["incentive_effects", "incentive_graph", "incentive_study_data"]),
    ("incentive_study_data", "incentives", STUDY, []),
    ("incentive_summary", "incentives", STUDY, ["incentive_graph", "incentive_study_data"]),
    ("ltv_champion", "ltv", CUTOFF_X_GROUP, ["ltv_model"]),
    ("ltv_cohorts", "ltv", DAILY, ["household_features", "ltv_scores"]),
    ("ltv_decay", "ltv", GROUP, ["ltv_champion", "ltv_labels"]),
    ("ltv_labels", "ltv", AS_OF_X_GROUP, ["product_group_members", "transactions"]),
    ("ltv_model", "ltv", CUTOFF_X_GROUP, ["group_features", "household_features", "ltv_labels"]),
    ("ltv_scores", "ltv", AS_OF_X_GROUP, ["group_features", "household_features"]),
    ("product_group_members", "ingest", None, ["products"]),
    ("products", "ingest", None, []),
    ("propensity_champion", "propensity", CUTOFF_X_GROUP, ["propensity_model"]),
    ("propensity_decay", "propensity", GROUP, ["propensity_champion", "propensity_labels"]),
    ("propensity_labels", "propensity", AS_OF_X_GROUP, ["product_group_members", "transactions"]),
    (
        "propensity_model",
        "propensity",
        CUTOFF_X_GROUP,
        ["group_features", "household_features", "propensity_labels"],
    ),
    ("propensity_scores", "propensity", AS_OF_X_GROUP, ["group_features", "household_features"]),
    ("retail_effects", "retail_incentives", GROUP, ["retail_study_data"]),
    ("retail_recommendations", "retail_incentives", GROUP, ["retail_summary"]),
    (
        "retail_study_data",
        "retail_incentives",
        GROUP,
        ["campaign_descriptions", "campaigns", "coupon_redemptions", "coupons", "group_features", "household_features",
         "product_group_members", "transactions"],
    ),
    ("retail_summary", "retail_incentives", GROUP, ["retail_study_data"]),
    ("sql_catalog", "profile", None, ["customer_profile"]),
    ("transactions", "ingest", None, ["products"]),
]


# The checks on each asset, the jobs, schedules and resources of the code location.
EXPECTED_CHECKS = {
    "campaign_descriptions": ["invalid_rows"], "campaigns": ["invalid_rows"], "coupon_redemptions": ["invalid_rows"],
    "coupons": ["invalid_rows"], "households": ["invalid_rows"], "products": ["invalid_rows"],
    "transactions": ["invalid_rows", "suspicious_rows"],
    "household_features": ["features_finite", "population"], "group_features": ["features_finite", "population"],
    "propensity_labels": ["label_rate"], "ltv_labels": ["label_rate"],
    "propensity_scores": ["scores_valid"], "ltv_scores": ["scores_valid"],
    "incentive_effects": ["cate_validation", "extrapolation"],
    "incentive_refutations": ["data_subset", "dummy_outcome", "placebo_treatment", "random_common_cause"],
    "retail_summary": ["placebo", "plausibility"],
}
EXPECTED_JOBS = {
    "audiences_job", "daily_features_job", "daily_scoring_job", "decay_job", "incentives_job", "ingest_job",
    "ltv_labels_job", "ltv_scoring_job",
    "ltv_training_job", "profile_job", "propensity_labels_job", "propensity_scoring_job", "propensity_training_job",
    "retail_incentives_job", "weekly_training_job",
}
EXPECTED_RESOURCES = {"incentive_studies", "lake", "mlflow", "product_groups", "source", "spark"}
# The columns each stage declares for the profile (tags on its assets).
EXPECTED_PROFILE_SOURCES = {
    "propensity_scores": {"profile/prefix": "propensity", "profile/table": "propensity_scores",
                          "profile/value_column": "score"},
    "ltv_scores": {"profile/prefix": "ltv", "profile/table": "ltv_scores", "profile/value_column": "ltv"},
    "retail_recommendations": {"profile/prefix": "incentive", "profile/table": "incentive_recommendations",
                               "profile/value_column": "recommended", "profile/deciles": "false",
                               "profile/study_prefix": "retail_", "profile/verdict_table": "incentive_summary"},
}


def test_definitions_load_and_asset_graph_snapshot():
    from propensity_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    snapshot = sorted(
        (
            key.to_user_string(),
            graph.get(key).group_name,
            _partitions_type(graph.get(key).partitions_def),
            sorted(parent.to_user_string() for parent in graph.get(key).parent_keys),
        )
        for key in graph.get_all_asset_keys()
    )
    assert snapshot == EXPECTED_ASSET_GRAPH
    checks = {}
    for key in graph.get_all_asset_keys():
        names = sorted(c.name for c in graph.get(key).check_keys) if hasattr(graph.get(key), "check_keys") else []
        if names:
            checks[key.to_user_string()] = names
    repository = defs.get_repository_def()
    if not checks:  # the check keys as the repository holds them
        for check_key in repository.asset_graph.asset_check_keys:
            checks.setdefault(check_key.asset_key.to_user_string(), []).append(check_key.name)
        checks = {k: sorted(v) for k, v in checks.items()}
    assert checks == EXPECTED_CHECKS
    assert {j.name for j in repository.get_all_jobs() if not j.name.startswith("__")} == EXPECTED_JOBS
    assert set(repository.get_top_level_resources()) == EXPECTED_RESOURCES
    profile_tags = {
        key.to_user_string(): {k: v for k, v in graph.get(key).tags.items() if k.startswith("profile/")}
        for key in graph.get_all_asset_keys()
    }
    assert {k: v for k, v in profile_tags.items() if v} == EXPECTED_PROFILE_SOURCES

    # Both feature assets backfill a range as one run (one Spark job), not one run per key.
    for name in ("household_features", "group_features"):
        policy = graph.get(dg.AssetKey(name)).backfill_policy
        assert policy is not None and policy.max_partitions_per_run is None, name

    job_names = {job.name for job in defs.resolve_all_job_defs()}
    assert {"ingest_job", "weekly_training_job", "daily_scoring_job", "ltv_training_job", "propensity_training_job",
            "incentives_job", "retail_incentives_job"} <= job_names
    sensors = {s.name for s in defs.resolve_all_sensor_defs()} if hasattr(defs, "resolve_all_sensor_defs") else {
        s.name for s in defs.get_repository_def().sensor_defs}
    assert sensors == {
        "product_group_sync_sensor", "automation_condition_sensor", "score_after_features", "incentive_study_sync_sensor",
        "propensity_rescore_sensor", "propensity_retrain_sensor", "ltv_rescore_sensor", "ltv_retrain_sensor",
    }
    # Every modelling stage's train, vet and score assets are in the weekly and daily jobs.
    weekly = defs.resolve_job_def("weekly_training_job").asset_layer.executable_asset_keys
    assert {k.to_user_string() for k in weekly} == {"propensity_model", "propensity_champion", "ltv_model", "ltv_champion"}
    daily = defs.resolve_job_def("daily_scoring_job").asset_layer.executable_asset_keys
    assert {k.to_user_string() for k in daily} == {"group_features", "propensity_scores", "ltv_scores"}


def write_tiny_lake(lake_root: str) -> Lake:
    """`transactions` and `product_group_members`, as ingest would leave them."""
    from propensity_assets.shared import tables

    lake = Lake(lake_root)
    # Products: 1 = soft drink, 2 = bag snack, 3 = cheese (in no group).
    transactions = tx_frame(
        [
            (1, 11, 1, 2, 3.0, "2017-03-01 10:00:00"),
            (1, 11, 3, 1, 5.0, "2017-03-01 10:00:00"),
            (2, 21, 2, 1, 2.5, "2017-03-02 11:00:00"),
            (1, 12, 2, 3, 6.0, "2017-03-03 18:00:00"),
            (3, 31, 3, 1, 4.0, "2017-03-04 09:00:00"),
        ]
    )
    lake.write_pandas("transactions", transactions)
    members = pd.DataFrame(
        {"product_group": ["snacks", "soft_drinks", "party", "party"], "product_id": [2, 1, 1, 2]}
    )
    lake.write_pandas(tables.PRODUCT_GROUP_MEMBERS, members)
    return lake


def range_tags(start: str, end: str) -> dict[str, str]:
    """The tags a single-run backfill (or `--partition-range`) puts on its one run."""
    return {ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end}


def test_requested_keys_expands_range_tags_for_both_partitions_kinds():
    """`requested_keys` on a daily and on a dates × groups asset, launched by range tags."""
    from propensity_assets.shared.partitions import as_of_group_partitions, as_of_partitions, requested_keys

    seen = {}

    @dg.asset(partitions_def=as_of_partitions, backfill_policy=dg.BackfillPolicy.single_run())
    def daily(context: dg.AssetExecutionContext) -> None:
        seen["daily"] = requested_keys(context)

    @dg.asset(partitions_def=as_of_group_partitions, backfill_policy=dg.BackfillPolicy.single_run())
    def dates_by_group(context: dg.AssetExecutionContext) -> None:
        seen["dates_by_group"] = requested_keys(context)

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("product_group", ["snacks", "soft_drinks", "party"])
        assert dg.materialize([daily], instance=instance, tags=range_tags("2017-03-03", "2017-03-05")).success
        tags = range_tags("2017-03-03|snacks", "2017-03-04|soft_drinks")
        assert dg.materialize([dates_by_group], instance=instance, tags=tags).success
        assert dg.materialize([daily], instance=instance, partition_key="2017-03-07").success

    assert seen["daily"] == ["2017-03-07"]  # the last run: one key, no range tags
    assert seen["dates_by_group"] == [
        "2017-03-03|snacks",
        "2017-03-03|soft_drinks",
        "2017-03-04|snacks",
        "2017-03-04|soft_drinks",
    ]


@pytest.mark.classic_and_connect
def test_household_features_date_range_as_one_run(spark_resource, lake_root):
    """A `--partition-range` of the daily asset: one run writes every date of the range."""
    from propensity_assets.features.assets import household_features

    lake = write_tiny_lake(lake_root)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [household_features],
            instance=instance,
            resources={"spark": spark_resource, "lake": LakeResource(uri=lake_root)},
            tags=range_tags("2017-03-02", "2017-03-05"),
        )
        assert result.success
        assert len(instance.get_runs()) == 1
        materialized = instance.get_materialized_partitions(dg.AssetKey("household_features"))
    dates = ["2017-03-02", "2017-03-03", "2017-03-04", "2017-03-05"]
    assert sorted(materialized) == dates
    assert lake.partitions("household_features", "as_of") == dates
    feats = lake.read_pandas("household_features")
    population = {"2017-03-02": [1], "2017-03-03": [1, 2], "2017-03-04": [1, 2], "2017-03-05": [1, 2, 3]}
    assert {d: sorted(rows["household_id"]) for d, rows in feats.groupby("as_of")} == population
    # the run's summary, read back from what it wrote: 1 + 2 + 2 + 3 rows, 3 households
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert (meta["run_rows"].value, meta["run_households"].value, meta["partitions_written"].value) == (8, 3, 4)
    # ... and each as_of its own: 1, 2, 2 and 3 households.
    own = {e.materialization.partition: e.materialization.metadata["rows"].value
           for e in result.get_asset_materialization_events()}
    assert own == {"2017-03-02": 1, "2017-03-03": 2, "2017-03-04": 2, "2017-03-05": 3}
    at = feats.set_index(["as_of", "household_id"])
    assert at.loc[("2017-03-05", 1), "hh_spend_30d"] == 14.0
    assert at.loc[("2017-03-05", 1), "hh_days_since_last"] == 2


@pytest.mark.classic_and_connect
def test_single_run_backfill_covers_the_whole_rectangle(spark_resource, lake_root):
    """A run over 3 dates × 2 groups, launched the way a single-run backfill is (range
    tags, no partition key), writes all 6 partitions and nothing outside the rectangle.

    Guards the Dagster gap where such runs exposed only the first key through
    `context.partition_keys`: `requested_keys` expands the range tags itself.
    """
    from propensity_assets.features.assets import group_features

    lake = write_tiny_lake(lake_root)

    with dg.instance_for_test() as instance:
        # The range covers the first two groups in the instance's order; `party` is outside it.
        instance.add_dynamic_partitions("product_group", ["snacks", "soft_drinks", "party"])
        result = dg.materialize(
            [group_features],
            instance=instance,
            resources={"spark": spark_resource, "lake": LakeResource(uri=lake_root)},
            tags=range_tags("2017-03-03|snacks", "2017-03-05|soft_drinks"),
        )
        assert result.success
        assert len(instance.get_runs()) == 1
        materialized = instance.get_materialized_partitions(dg.AssetKey("group_features"))
        records = instance.fetch_materializations(dg.AssetKey("group_features"), limit=20).records
        stored = {r.asset_materialization.partition: r.asset_materialization.metadata for r in records}

    expected = {
        (d, g) for d in ("2017-03-03", "2017-03-04", "2017-03-05") for g in ("snacks", "soft_drinks")
    }
    # Every partition of the rectangle recorded as materialized by that one run.
    assert {tuple(key.split("|")) for key in materialized} == expected

    events = result.get_asset_materialization_events()
    assert events and all(e.materialization.metadata["partitions_written"].value == 6 for e in events)
    # The run's figures: populations 2, 2 and 3 at the three dates, in both groups; `party` (outside) not counted
    assert {(e.materialization.metadata["run_rows"].value, e.materialization.metadata["run_households"].value)
            for e in events} == {(14, 3)}
    # Each partition its own figures, as the instance stored them. Snacks (product 2): household 2
    # bought for 2.5 on 03-02, household 1 for 6.0 on 03-03; soft drinks (product 1): household 1
    # for 3.0 on 03-01. Rows: the population (2, 2, 3).
    own = {key: (m["rows"].value, m["dagster/row_count"].value, m["buyers_30d"].value, m["group_spend_30d"].value)
           for key, m in stored.items()}
    assert own == {
        "2017-03-03|snacks": (2, 2, 1, 2.5), "2017-03-04|snacks": (2, 2, 2, 8.5), "2017-03-05|snacks": (3, 3, 2, 8.5),
        "2017-03-03|soft_drinks": (2, 2, 1, 3.0), "2017-03-04|soft_drinks": (2, 2, 1, 3.0),
        "2017-03-05|soft_drinks": (3, 3, 1, 3.0),
    }
    snacks = stored["2017-03-04|snacks"]
    assert snacks["lake_location"].value == f"{lake.uri('group_features')}/as_of=2017-03-04/product_group=snacks"
    schema = [c.name for c in snacks["dagster/column_schema"].schema.columns]
    assert schema[0] == "household_id" and "grp_spend_30d" in schema and schema[-2:] == ["as_of", "product_group"]

    written = {
        (as_of, group)
        for as_of in lake.partitions("group_features", "as_of")
        for group in lake.partitions(f"group_features/as_of={as_of}", "product_group")
    }
    assert written == expected

    feats = lake.read_pandas("group_features")
    # Population at d: households with a transaction before d.
    population = {"2017-03-03": {1, 2}, "2017-03-04": {1, 2}, "2017-03-05": {1, 2, 3}}
    for (as_of, group), rows in feats.groupby(["as_of", "product_group"]):
        assert set(rows["household_id"]) == population[as_of], (as_of, group)
        assert len(rows) == len(population[as_of]), (as_of, group)

    at = feats.set_index(["as_of", "product_group", "household_id"])
    # Household 1 at 2017-03-05: 6.0 of its 14.0 went on snacks; its soft drinks were 4 days before.
    assert at.loc[("2017-03-05", "snacks", 1), "grp_spend_30d"] == 6.0
    assert at.loc[("2017-03-05", "snacks", 1), "grp_spend_share_30d"] == 6.0 / 14.0
    assert at.loc[("2017-03-05", "soft_drinks", 1), "grp_days_since_last"] == 4
    assert pd.isna(at.loc[("2017-03-05", "soft_drinks", 3), "grp_days_since_last"])
    assert at.loc[("2017-03-03", "snacks", 2), "grp_baskets_30d"] == 1
    assert date.fromisoformat(feats["as_of"].min()) == date(2017, 3, 3)


def test_loading_the_definitions_imports_no_model_library():
    """The CLI, the daemon and the UI load the definitions for every run and tick: MLflow,
    the model libraries and the causal stack load only when an asset needs them."""
    heavy = ["mlflow", "lightgbm", "sklearn", "scipy", "econml", "dowhy", "causallearn", "pymc", "pymc_marketing",
             "matplotlib"]
    code = f"import sys, propensity_assets.definitions; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


@pytest.mark.classic_and_connect
def test_features_refuse_as_of_dates_the_transactions_do_not_reach(spark_resource, lake_root):
    """The tiny data ends on 2017-03-04: as_of 2017-03-05 reads up to 03-04 and runs; as_of
    2017-03-07 would read 03-05 and 03-06 as days without purchases, and is refused."""
    from propensity_assets.features.assets import group_features, household_features

    write_tiny_lake(lake_root)
    resources = {"spark": spark_resource, "lake": LakeResource(uri=lake_root)}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("product_group", ["snacks"])
        fresh = dg.materialize([household_features], instance=instance, resources=resources, partition_key="2017-03-05")
        assert fresh.success
        stale = dg.materialize([household_features], instance=instance, resources=resources,
                               tags=range_tags("2017-03-05", "2017-03-07"), raise_on_error=False)
        assert not stale.success
        [failure] = stale.get_step_failure_events()
        assert failure.step_failure_data.user_failure_data.description == (
            "household_features as_of 2017-03-06..2017-03-07 (2 dates): the ingested transactions end on "
            "2017-03-04, 2 day(s) short of the day before as_of 2017-03-07; features would read the missing days "
            "as no purchases. Ingest newer transactions, or materialize as_of up to 2017-03-05."
        )
        group = dg.materialize([group_features], instance=instance, resources=resources,
                               partition_key="2017-03-06|snacks", raise_on_error=False)
        [failure] = group.get_step_failure_events()
        assert failure.step_failure_data.user_failure_data.description.startswith(
            "group_features as_of 2017-03-06: the ingested transactions end on 2017-03-04, 1 day(s) short"
        )
    assert Lake(lake_root).partitions("household_features", "as_of") == ["2017-03-05"]  # nothing else written
    assert not Lake(lake_root).exists("group_features")


def test_features_scores_and_profile_carry_freshness_policies_from_the_daily_cycle():
    """Due 1, 2 and 3 hours after the features schedule (05:00) starts the daily cycle; the
    other assets have none."""
    from propensity_assets.definitions import defs
    from propensity_assets.features.automation import daily_features_schedule

    assert daily_features_schedule.cron_schedule == "0 5 * * *"
    policies = {spec.key.to_user_string(): spec.freshness_policy for spec in defs.resolve_all_asset_specs()
                if spec.freshness_policy is not None}
    due = {key: (p.deadline_cron, p.lower_bound_delta.total_seconds() / 3600) for key, p in policies.items()}
    assert due == {
        "household_features": ("0 6 * * *", 1.0), "group_features": ("0 6 * * *", 1.0),
        "propensity_scores": ("0 7 * * *", 2.0), "ltv_scores": ("0 7 * * *", 2.0),
        "customer_profile": ("0 8 * * *", 3.0),
    }
