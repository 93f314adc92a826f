"""`propensity-assets launch` refuses what is not a job, asset or partition of the project,
naming it, before any run is created."""

import dagster as dg
import pytest

from propensity_assets.shared.launch import LaunchError, launch, parse_config


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("product_group", ["beef", "eggs"])
        yield instance


@pytest.mark.parametrize("job, kwargs, message", [
    ("nope", {}, "no job 'nope' in propensity_assets.definitions: the jobs are audiences_job, daily_features_job, daily_scoring_job, "
                 "decay_job, incentives_job, ingest_job, ltv_labels_job, ltv_scoring_job, ltv_training_job, profile_job, "
                 "propensity_labels_job, propensity_scoring_job, propensity_training_job, retail_incentives_job, "
                 "weekly_training_job"),
    ("profile_job", {"assets": ["ltv_scores"]},
     "job profile_job has no asset ltv_scores: its assets are customer_profile, ltv_cohorts, sql_catalog"),
    ("profile_job", {}, "job profile_job is partitioned: give --partition or --partition-range"),
    ("ingest_job", {"partition": "2017-12-01"}, "job ingest_job is not partitioned: drop --partition/--partition-range"),
    ("ltv_training_job", {"partition_range": "2017-12-01|beef"}, "--partition-range '2017-12-01|beef': expected FIRST...LAST"),
    ("ltv_training_job", {"partition_range": "2017-12-01|beef...2017-12-01|pork"},
     "'2017-12-01|pork' is not a partition of job ltv_training_job on this instance (run `propensity-assets "
     "sync-groups` / `sync-studies` for new groups or studies)"),
    ("ltv_training_job", {"partition": "2017-12-01|beef", "partition_range": "a...b"},
     "give --partition or --partition-range, not both"),
])
def test_launch_refuses_what_the_project_lacks_and_creates_no_run(instance, job, kwargs, message):
    with pytest.raises(LaunchError) as raised:
        launch(instance, job, **kwargs)
    assert str(raised.value) == message
    assert instance.get_runs() == []


@pytest.mark.parametrize("text, message", [
    ("{", "--config-json is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ("[1]", "--config-json must be a JSON object (the run config)"),
])
def test_config_json_must_be_a_json_object(text, message):
    with pytest.raises(LaunchError) as raised:
        parse_config(text)
    assert str(raised.value) == message


def test_config_json_is_the_run_config():
    assert parse_config('{"ops": {"ltv_model": {"config": {"from_champion": true}}}}') == {
        "ops": {"ltv_model": {"config": {"from_champion": True}}}}
    assert parse_config(None) == {}
