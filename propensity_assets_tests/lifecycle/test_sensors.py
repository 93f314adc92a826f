"""`champion_rescore_sensor` against a real MLflow registry (SQLite in a temp dir) and a
real (test) Dagster instance.

Two ways in: calling the sensor with `build_sensor_context` (what one tick asks for and
which cursor it leaves), and one tick loop of the sensor daemon itself over a code
location holding the sensor (what is launched). The sensor decides from the instance's
runs (which version last rescored each group and date), not from its cursor, so a lost
cursor never launches twice and a rollback after a lost cursor still rescores.
"""

import json
import logging
import os
import textwrap
import time

import dagster as dg
import mlflow
import pandas as pd
import pytest

from dagster._core.scheduler.instigation import TickStatus

from propensity_assets import definitions
from propensity_assets.shared import registry
from propensity_assets.shared.partitions import as_of_group_partitions
from propensity_assets.propensity.assets import lifecycle
from propensity_assets.shared.resources import MlflowResource

champion_rescore_sensor = next(s for s in lifecycle.sensors if s.name == "propensity_rescore_sensor")

GROUPS = ["grp_a", "grp_b", "grp_c"]  # grp_c has no model, so no champion
LATEST, DAY_BEFORE, TWO_BEFORE = "2017-12-01", "2017-11-30", "2017-11-29"
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens


class ConstantModel(mlflow.pyfunc.PythonModel):
    """Any registered model will do: the sensor reads only the registry's aliases."""

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return model_input.assign(score=0.5)


@pytest.fixture(scope="module")
def registry_store(tmp_path_factory):
    """propensity__grp_a v1, v2 and propensity__grp_b v1, registered once for the module."""
    root = tmp_path_factory.mktemp("rescore_mlflow")
    res = MlflowResource(tracking_uri=f"sqlite:///{root}/mlflow.db", artifact_root=(root / "artifacts").as_uri())
    experiment_id = res.experiment_id("propensity")
    for group in ("grp_a", "grp_b"):
        with mlflow.start_run(experiment_id=experiment_id):
            mlflow.pyfunc.log_model(
                name="model",
                python_model=ConstantModel(),
                registered_model_name=registry.model_name("propensity", group),
                pip_requirements=["mlflow"],
            )
    # grp_a v2: the same model registered again (the sensor compares versions only).
    client = res.client()
    v1 = client.get_model_version(registry.model_name("propensity", "grp_a"), "1")
    client.create_model_version(v1.name, v1.source, run_id=v1.run_id)
    return res


@pytest.fixture
def mlflow_res(registry_store):
    """Every test starts with v1 as champion of grp_a and grp_b."""
    client = registry_store.client()
    for group in ("grp_a", "grp_b"):
        registry.promote(client, registry.model_name("propensity", group), 1, "test baseline", by="test", force=True)
    return registry_store


@pytest.fixture
def instance(module_instance):
    """The module's instance with exactly GROUPS as product_group partitions. Calling the
    sensor launches nothing, so no runs accumulate here (the daemon test has its own)."""
    for key in module_instance.get_dynamic_partitions("product_group"):
        module_instance.delete_dynamic_partition("product_group", key)
    module_instance.add_dynamic_partitions("product_group", GROUPS)
    return module_instance


@pytest.fixture(autouse=True)
def demo_today(monkeypatch):
    monkeypatch.setenv("PROPENSITY_TODAY", LATEST)
    monkeypatch.setenv("PROPENSITY_RESCORE_LOOKBACK_DAYS", "2")


def promote(mlflow_res: MlflowResource, group: str, version: int) -> None:
    registry.promote(mlflow_res.client(), registry.model_name("propensity", group), version, "test", by="test", force=True)


def evaluate(instance, mlflow_res: MlflowResource, cursor: str | None = None):
    """One tick, as a SensorResult (a SkipReason is returned as such)."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"mlflow": mlflow_res})
    return champion_rescore_sensor(context)


def keys(result) -> list[tuple[str, str]]:
    return [(r.partition_key, r.run_key) for r in result.run_requests]


def expected(group: str, n: int = 1, dates=(LATEST, DAY_BEFORE, TWO_BEFORE)) -> list[tuple[str, str]]:
    """(partition, run key) of the n-th rescore of each (group, date)."""
    return [(f"{d}|{group}", f"rescore:propensity:{group}:{d}:{n}") for d in dates]


# -- one tick at a time --------------------------------------------------------------------


def test_first_tick_rescores_every_group_with_a_champion(instance, mlflow_res):
    result = evaluate(instance, mlflow_res)
    assert keys(result) == expected("grp_a") + expected("grp_b")
    for request in result.run_requests:
        group = request.partition_key.split("|")[1]
        assert request.tags == {
            "propensity/rescore": f"{group}|{request.partition_key.split('|')[0]}",
            "propensity/champion_version": "1",
            "propensity/trigger": "promotion",
        }
    assert json.loads(result.cursor) == {"grp_a": "1", "grp_b": "1"}


def test_without_launched_runs_the_requests_repeat_exactly(instance, mlflow_res):
    """Nothing was launched (a bare tick), so the same requests come again, cursor or not."""
    first = evaluate(instance, mlflow_res)
    assert keys(evaluate(instance, mlflow_res, cursor=first.cursor)) == keys(first)
    assert keys(evaluate(instance, mlflow_res)) == keys(first)


def test_lookback_and_latest_as_of(instance, mlflow_res, monkeypatch):
    monkeypatch.delenv("PROPENSITY_RESCORE_LOOKBACK_DAYS")  # default 0: the latest as_of only
    assert keys(evaluate(instance, mlflow_res)) == expected("grp_a", 1, [LATEST]) + expected("grp_b", 1, [LATEST])
    monkeypatch.setenv("PROPENSITY_TODAY", "2019-06-01")  # past the data: the last as_of partition
    last = ["2018-01-01"]
    assert keys(evaluate(instance, mlflow_res)) == expected("grp_a", 1, last) + expected("grp_b", 1, last)


def test_only_the_instances_groups_are_watched(instance, mlflow_res):
    instance.delete_dynamic_partition("product_group", "grp_b")  # removed from the catalogue
    result = evaluate(instance, mlflow_res)
    assert {r.partition_key.split("|")[1] for r in result.run_requests} == {"grp_a"}
    assert json.loads(result.cursor) == {"grp_a": "1"}


def test_unreachable_registry_skips_the_tick_quickly(instance, monkeypatch):
    fail_fast = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
    for name in fail_fast:
        monkeypatch.delenv(name, raising=False)
    started = time.monotonic()
    result = evaluate(instance, MlflowResource(tracking_uri=UNREACHABLE), cursor='{"grp_a": "1"}')
    elapsed = time.monotonic() - started
    assert isinstance(result, dg.SkipReason)
    assert UNREACHABLE in result.skip_message and "unreachable" in result.skip_message
    assert elapsed < 15, f"an unreachable registry took {elapsed:.1f}s to skip"
    # The fail-fast settings hold for the tick only: runs launched from the same code
    # server (training uploads to MLflow) inherit the process environment.
    assert not {name for name in fail_fast if name in os.environ}


# -- through the sensor daemon -------------------------------------------------------------


@pytest.fixture
def daemon(tmp_path, mlflow_res):
    """A code location holding the sensor, a test instance whose runs queue (nothing runs),
    and `tick()`: one iteration of the sensor daemon, due now whatever the minimum interval."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.scheduler.instigation import InstigatorType, SensorInstigatorData
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
    from dagster._daemon.sensor import execute_sensor_iteration

    code = tmp_path / "rescore_location.py"
    code.write_text(
        textwrap.dedent(
            f"""
            import dagster as dg
            from propensity_assets.propensity.assets import lifecycle
            from propensity_assets.shared.resources import LakeResource, MlflowResource, SparkResource

            defs = dg.Definitions(
                assets=lifecycle.assets,
                jobs=lifecycle.jobs,
                sensors=[s for s in lifecycle.sensors if s.name == "propensity_rescore_sensor"],
                resources={{
                    "lake": LakeResource(uri={str(tmp_path / "lake")!r}),
                    "mlflow": MlflowResource(tracking_uri={mlflow_res.tracking_uri!r}),
                    "spark": SparkResource(spark_config={{"spark.master": "local[1]"}}),
                }},
            )
            """
        )
    )
    target = InProcessWorkspaceLoadTarget(
        InProcessCodeLocationOrigin(
            LoadableTargetOrigin(python_file=str(code), attribute="defs", working_directory=str(tmp_path)),
            location_name="rescore_test",
        )
    )
    queued = {"run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"}}
    with dg.instance_for_test(overrides=queued) as instance:
        instance.add_dynamic_partitions("product_group", GROUPS)
        with create_test_daemon_workspace_context(target, instance) as workspace:

            def state():
                [sensor_state] = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
                return sensor_state

            def tick(reset_cursor: bool = False):
                if instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
                    # Make the sensor due now (it last ticked within its 60 s interval).
                    current = state()
                    data = current.instigator_data
                    instance.update_instigator_state(
                        current.with_data(
                            SensorInstigatorData(
                                min_interval=data.min_interval,
                                cursor=None if reset_cursor else data.cursor,
                                last_sensor_start_timestamp=data.last_sensor_start_timestamp,
                                sensor_type=data.sensor_type,
                            )
                        )
                    )
                list(execute_sensor_iteration(workspace, logging.getLogger("rescore_test"), None, None))
                latest = instance.get_ticks(state().instigator_origin_id, state().selector_id, limit=1)[0]
                assert latest.error is None, latest.error
                return latest

            yield instance, tick


def run_keys(instance) -> set[str]:
    return {run.tags["dagster/run_key"] for run in instance.get_runs()}


def test_daemon_launches_each_rescore_once(daemon, mlflow_res):
    instance, tick = daemon
    first = tick()
    assert first.status == TickStatus.SUCCESS
    assert run_keys(instance) == {key for _, key in expected("grp_a") + expected("grp_b")}
    runs = instance.get_runs()
    assert {run.status for run in runs} == {dg.DagsterRunStatus.QUEUED}
    for run in runs:
        group, as_of = run.tags["dagster/run_key"].split(":")[2:4]
        assert run.tags["dagster/partition"] == f"{as_of}|{group}"
        assert run.tags["dagster/partition/product_group"] == group
        assert run.tags["propensity/champion_version"] == "1"
        assert run.tags["dagster/sensor_name"] == "propensity_rescore_sensor"

    # The next tick: every champion has its rescore run; nothing asked, nothing launched.
    assert tick().status == TickStatus.SKIPPED
    assert len(instance.get_runs()) == 6

    # State lost (cursor reset): the runs say v1 rescored, so nothing is asked again.
    lost = tick(reset_cursor=True)
    assert lost.status == TickStatus.SKIPPED and list(lost.run_keys) == []
    assert len(instance.get_runs()) == 6

    # A promotion: grp_a at v2, three new runs (the second rescore of each date), nothing for grp_b.
    promote(mlflow_res, "grp_a", 2)
    moved = tick(reset_cursor=True)  # a tick that launched but lost its cursor is the same
    assert moved.status == TickStatus.SUCCESS
    assert set(moved.run_keys) == {key for _, key in expected("grp_a", 2)}
    assert len(instance.get_runs()) == 9
    assert tick(reset_cursor=True).status == TickStatus.SKIPPED  # launched once, cursor or not

    # Rolled back to v1 after a lost cursor: the lake holds v2's scores now, so v1 scores again.
    promote(mlflow_res, "grp_a", 1)
    rolled_back = tick(reset_cursor=True)
    assert rolled_back.status == TickStatus.SUCCESS
    assert set(rolled_back.run_keys) == {key for _, key in expected("grp_a", 3)}
    assert {r.tags["propensity/champion_version"] for r in instance.get_runs(limit=3)} == {"1"}
    assert len(instance.get_runs()) == 12
    assert tick().status == TickStatus.SKIPPED  # and once only

    # ... and again, after another round trip.
    promote(mlflow_res, "grp_a", 2)
    assert set(tick().run_keys) == {key for _, key in expected("grp_a", 4)}
    promote(mlflow_res, "grp_a", 1)
    assert set(tick().run_keys) == {key for _, key in expected("grp_a", 5)}
    assert len(instance.get_runs()) == 18
    assert tick(reset_cursor=True).status == TickStatus.SKIPPED
    assert len(instance.get_runs()) == 18


# -- the code location ---------------------------------------------------------------------


def test_definitions_hold_the_sensor_targeting_scores():
    sensor = definitions.defs.get_sensor_def("propensity_rescore_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 60
    assert "mlflow" in sensor.required_resource_keys
    # Its target, as the code location resolves it: scores alone, partitioned as_of × group.
    job = definitions.defs.get_repository_def().get_job(sensor.job_name)
    assert job.asset_layer.executable_asset_keys == {dg.AssetKey("propensity_scores")}
    assert job.partitions_def == as_of_group_partitions
    # The resource it gets is the code location's MLflow resource.
    assert isinstance(definitions.defs.resources["mlflow"], MlflowResource)
