"""The daily/weekly schedules, the features → scoring run-status sensor, and the jobs they
target, evaluated against a real (test) Dagster instance holding the product groups.

"Today" is the tick date, or PROPENSITY_TODAY when set (CONTRACTS: the embedded data ends
on 2018-01-01). Ticks are evaluated both by calling the schedule (what it asks for) and
through `evaluate_tick` with the code location's repository (what Dagster resolves and
would launch).
"""

from datetime import datetime, timezone

import dagster as dg
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from propensity_assets import definitions
from propensity_assets.shared.partitions import (
    as_of_group_partitions,
    as_of_partitions,
    cutoff_group_partitions,
    product_group_partitions,
)
from propensity_assets.propensity.assets import labels_schedule as daily_labels_schedule
from propensity_assets.features.automation import daily_features_schedule
from propensity_assets.lifecycle.automation import daily_scoring_job, score_after_features, weekly_training_schedule

# Deliberately not alphabetical: "all groups" is the instance's order, first to last.
GROUPS = ["soft_drinks", "cheese", "eggs"]
RANGE = (ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG)


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("product_group", GROUPS)
        yield instance


@pytest.fixture(autouse=True)
def real_today(monkeypatch):
    monkeypatch.delenv("PROPENSITY_TODAY", raising=False)


def at(day: str, hour: int = 5) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=timezone.utc)


def tick(schedule: dg.ScheduleDefinition, instance, when: datetime):
    """What Dagster makes of a tick: the code location's schedule, resolved with its repository."""
    repo = definitions.defs.get_repository_def()
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when, repository_def=repo)
    return definitions.defs.get_schedule_def(schedule.name).evaluate_tick(context)


def expand(partitions_def, tags: dict, instance) -> list[str]:
    """The partition keys a run with these range tags covers (as `requested_keys` expands them)."""
    from dagster._core.definitions.partitions.context import partition_loading_context

    with partition_loading_context(dynamic_partitions_store=instance):
        keys = partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(*(tags[t] for t in RANGE)))
    return [str(key) for key in keys]


def all_groups(day: str) -> list[str]:
    return sorted(f"{day}|{group}" for group in GROUPS)


# -- daily features ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tick_day", "configured", "expected"),
    [
        ("2017-12-01", None, "2017-12-01"),  # the tick's date
        ("2017-06-15", None, "2017-06-15"),
        ("2025-03-03", None, "2018-01-01"),  # past the data: the last as_of partition
        ("2025-03-03", "2017-12-01", "2017-12-01"),  # PROPENSITY_TODAY wins over the tick
        ("2025-03-03", "2019-05-05", "2018-01-01"),  # ... and is clipped too
    ],
)
def test_daily_features_requests_the_latest_as_of(instance, monkeypatch, tick_day, configured, expected):
    if configured:
        monkeypatch.setenv("PROPENSITY_TODAY", configured)
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=at(tick_day))
    request = daily_features_schedule(context)
    assert request.partition_key == expected
    assert request.run_key == f"features:{expected}"
    assert daily_features_schedule.job_name == "daily_features_job"


def test_daily_features_tick_resolves_to_one_partition_run(instance, monkeypatch):
    monkeypatch.setenv("PROPENSITY_TODAY", "2017-12-01")
    [request] = tick(daily_features_schedule, instance, at("2025-03-03")).run_requests
    assert request.partition_key == "2017-12-01"
    assert request.tags["dagster/partition"] == "2017-12-01"
    assert request.tags["dagster/schedule_name"] == "daily_features_schedule"


# -- daily labels --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tick_day", "configured", "expected"),
    [
        ("2017-12-01", None, "2017-11-01"),
        ("2025-03-03", "2017-12-01", "2017-11-01"),
        ("2025-03-03", "2018-01-31", "2018-01-01"),
    ],
)
def test_daily_labels_request_today_minus_30_for_all_groups(instance, monkeypatch, tick_day, configured, expected):
    if configured:
        monkeypatch.setenv("PROPENSITY_TODAY", configured)
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=at(tick_day))
    request = daily_labels_schedule(context)
    assert request.run_key == f"propensity_labels:{expected}"
    assert request.partition_key is None
    assert {t: request.tags[t] for t in RANGE} == {
        ASSET_PARTITION_RANGE_START_TAG: f"{expected}|soft_drinks",
        ASSET_PARTITION_RANGE_END_TAG: f"{expected}|eggs",
    }
    assert sorted(expand(as_of_group_partitions, request.tags, instance)) == all_groups(expected)


def test_daily_labels_skip_when_today_minus_30_is_no_as_of_partition(instance, monkeypatch):
    """A run for a partition that does not exist can only fail; a fresh run key every day
    would launch one daily. (Features and training clip to their last partition instead.)"""
    for configured, missing in [(None, "2025-02-01"), ("2017-01-15", "2016-12-16")]:
        if configured:
            monkeypatch.setenv("PROPENSITY_TODAY", configured)
        result = tick(daily_labels_schedule, instance, at("2025-03-03"))
        assert not result.run_requests
        assert missing in result.skip_message and "not an as_of partition" in result.skip_message


def test_daily_labels_tick_resolves(instance, monkeypatch):
    monkeypatch.setenv("PROPENSITY_TODAY", "2017-12-01")
    [request] = tick(daily_labels_schedule, instance, at("2025-03-03")).run_requests
    assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == "2017-11-01|soft_drinks"
    assert request.tags["dagster/schedule_name"] == "daily_propensity_labels_schedule"


# -- weekly training -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("2017-12-01", "2017-12-01"),  # a Friday: its own cutoff
        ("2017-11-30", "2017-11-24"),  # the Friday before
        ("2017-12-07", "2017-12-01"),
        ("2019-01-01", "2017-12-22"),  # the last cutoff whose week lies inside the data
    ],
)
def test_weekly_training_requests_the_latest_friday_cutoff(instance, monkeypatch, configured, expected):
    monkeypatch.setenv("PROPENSITY_TODAY", configured)
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=at("2025-03-07", 6))
    request = weekly_training_schedule(context)
    assert request.run_key == f"training:{expected}"
    assert {t: request.tags[t] for t in RANGE} == {
        ASSET_PARTITION_RANGE_START_TAG: f"{expected}|soft_drinks",
        ASSET_PARTITION_RANGE_END_TAG: f"{expected}|eggs",
    }
    assert sorted(expand(cutoff_group_partitions, request.tags, instance)) == all_groups(expected)


def test_weekly_training_uses_the_tick_date_without_propensity_today(instance):
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=at("2017-11-30", 6))
    assert weekly_training_schedule(context).run_key == "training:2017-11-24"
    [request] = tick(weekly_training_schedule, instance, at("2017-12-01", 6)).run_requests
    assert request.run_key == "training:2017-12-01"
    assert request.tags["dagster/schedule_name"] == "weekly_training_schedule"


def test_schedules_refuse_without_product_groups(monkeypatch):
    """Range tags need the groups: a clear error pointing at `sync-groups`, not an empty run."""
    monkeypatch.setenv("PROPENSITY_TODAY", "2017-12-01")
    with dg.instance_for_test() as empty:
        context = dg.build_schedule_context(instance=empty, scheduled_execution_time=at("2017-12-01"))
        with pytest.raises(ValueError, match="sync-groups"):
            weekly_training_schedule(context)


# -- features → scoring --------------------------------------------------------------------


def features_success(instance, tags: dict) -> dg.RunStatusSensorContext:
    run = dg.DagsterRun(
        job_name="daily_features_job", run_id="features-run-1", tags=tags, status=dg.DagsterRunStatus.SUCCESS
    )
    event = dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_SUCCESS.value,
        job_name="daily_features_job",
        message='Finished execution of run for "daily_features_job".',
    )
    return dg.build_run_status_sensor_context(
        sensor_name=score_after_features.name, dagster_instance=instance, dagster_run=run, dagster_event=event
    )


def test_score_after_features_scores_that_as_of_for_all_groups(instance):
    request = score_after_features(features_success(instance, {"dagster/partition": "2017-12-01"}))
    assert isinstance(request, dg.RunRequest)
    assert request.run_key == "scores:2017-12-01:features-run-1"
    assert {t: request.tags[t] for t in RANGE} == {
        ASSET_PARTITION_RANGE_START_TAG: "2017-12-01|soft_drinks",
        ASSET_PARTITION_RANGE_END_TAG: "2017-12-01|eggs",
    }
    assert sorted(expand(as_of_group_partitions, request.tags, instance)) == all_groups("2017-12-01")
    # It watches the features job and launches the scoring job.
    sensor = definitions.defs.get_sensor_def("score_after_features")
    assert sensor.job_name == daily_scoring_job.name
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_score_after_features_skips_a_run_without_one_as_of(instance):
    range_tags = {ASSET_PARTITION_RANGE_START_TAG: "2017-11-01", ASSET_PARTITION_RANGE_END_TAG: "2017-11-03"}
    result = score_after_features(features_success(instance, range_tags))
    assert isinstance(result, dg.SkipReason)
    assert "no single as_of" in result.skip_message


# -- jobs ----------------------------------------------------------------------------------


def test_jobs_resolve_with_their_partitions():
    defs = definitions.defs
    expected = {
        "daily_features_job": (as_of_partitions, {"household_features"}),
        "profile_job": (as_of_partitions, {"customer_profile", "ltv_cohorts", "sql_catalog"}),
        "audiences_job": (as_of_group_partitions, {"audiences"}),
        "daily_scoring_job": (as_of_group_partitions, {"group_features", "propensity_scores", "ltv_scores"}),
        "decay_job": (product_group_partitions, {"propensity_decay", "ltv_decay"}),
        "propensity_labels_job": (as_of_group_partitions, {"propensity_labels"}),
        "weekly_training_job": (
            cutoff_group_partitions, {"propensity_model", "propensity_champion", "ltv_model", "ltv_champion"}
        ),
        "ltv_labels_job": (as_of_group_partitions, {"ltv_labels"}),
        "ltv_training_job": (cutoff_group_partitions, {"ltv_model", "ltv_champion"}),
        "propensity_training_job": (cutoff_group_partitions, {"propensity_model", "propensity_champion"}),
        "propensity_scoring_job": (as_of_group_partitions, {"propensity_scores"}),
    }
    for name, (partitions_def, assets) in expected.items():
        job = defs.resolve_job_def(name)
        assert job.partitions_def == partitions_def, name
        assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == assets, name
    assert defs.resolve_job_def("ingest_job").partitions_def is None
    schedules = defs.get_repository_def().schedule_defs
    targets = {s.name: s.job_name for s in schedules}
    assert targets == {
        "daily_features_schedule": "daily_features_job",
        "daily_propensity_labels_schedule": "propensity_labels_job",
        "daily_ltv_labels_schedule": "ltv_labels_job",
        "weekly_training_schedule": "weekly_training_job",
    }
    # Every schedule's cron is in the documented daily/weekly cycle.
    crons = {s.name: s.cron_schedule for s in schedules}
    assert crons == {
        "daily_features_schedule": "0 5 * * *",
        "daily_propensity_labels_schedule": "30 5 * * *",
        "daily_ltv_labels_schedule": "40 5 * * *",
        "weekly_training_schedule": "0 6 * * 5",
    }


def test_ltv_labels_request_today_minus_the_horizon(instance, monkeypatch):
    from propensity_assets.ltv.assets import labels_schedule as ltv_labels_schedule

    monkeypatch.setenv("PROPENSITY_TODAY", "2017-12-30")
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=at("2025-03-03"))
    request = ltv_labels_schedule(context)
    assert request.run_key == "ltv_labels:2017-10-01"  # 2017-12-30 − 90 days
    monkeypatch.setenv("PROPENSITY_LTV_HORIZON_DAYS", "30")
    assert ltv_labels_schedule(context).run_key == "ltv_labels:2017-11-30"
