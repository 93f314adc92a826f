"""Registration a kill cannot half-finish, promotions that see each other, and scoring that
checks the lineage of what it loads, on real MLflow (SQLite in a temp dir) with tiny real
models trained by `train_and_register` on the hand-built lake of `test_spark_scoring`.

The kill test runs the registration in a subprocess whose `registration.crash_point`
SIGKILLs it right after "Created version N", before any tag: the version exists, READY,
and must never be vetted, promoted or scored.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from types import SimpleNamespace

import dagster as dg
import mlflow
import pyarrow.dataset as ds
import pytest

from propensity_assets.lifecycle import promotion, registration, scoring
from propensity_assets.lifecycle.config import VettingConfig, rule_for
from propensity_assets.lifecycle.training import train_and_register
from propensity_assets.ltv.stage import LTV
from propensity_assets.propensity.stage import PROPENSITY
from propensity_assets.shared import registry
from propensity_assets.shared.resources import MlflowResource
from propensity_assets_tests.lifecycle.test_spark_scoring import CUTOFF, GROUP, SCORE_DATES, TINY, _build_lake

NAME = PROPENSITY.model_name(GROUP)
LTV_NAME = LTV.model_name(GROUP)
KILLED_RUN = "dagster-run-that-was-killed"

KILL_AT_CREATED = textwrap.dedent("""
    import os, signal, sys
    from datetime import date
    from propensity_assets.lifecycle import registration
    from propensity_assets.lifecycle.training import train_and_register
    from propensity_assets.propensity.stage import PROPENSITY
    from propensity_assets.shared.lake import Lake
    from propensity_assets.shared.resources import MlflowResource
    from propensity_assets_tests.lifecycle.test_spark_scoring import CUTOFF, GROUP, TINY

    def die(step):
        if step == "created":
            print("killed after the version was created", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    registration.crash_point = die
    lake, tracking_uri, artifacts, dagster_run = sys.argv[1:5]
    train_and_register(PROPENSITY, Lake(lake), MlflowResource(tracking_uri=tracking_uri, artifact_root=artifacts),
                       GROUP, CUTOFF, TINY["propensity"], {"dagster_run_id": dagster_run})
""")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("registration")
    lake = _build_lake(str(tmp / "lake"))
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "PROPENSITY_LTV_HORIZON_DAYS")}
    os.environ["PROPENSITY_LTV_HORIZON_DAYS"] = "90"
    res = MlflowResource(tracking_uri=f"sqlite:///{tmp}/mlflow.db", artifact_root=(tmp / "artifacts").as_uri())
    try:
        with dg.instance_for_test() as instance:
            yield SimpleNamespace(tmp=tmp, lake=lake, mlflow=res, client=res.client(), instance=instance)
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def kill_while_registering(world) -> str:
    """Register a real version in a subprocess killed right after it was created; its number."""
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AT_CREATED, world.lake.root, world.mlflow.tracking_uri,
         world.mlflow.artifact_root, KILLED_RUN],
        capture_output=True, text=True, timeout=600, env={**os.environ},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert "killed after the version was created" in proc.stdout
    newest = max(world.client.search_model_versions(registry.name_filter(NAME)), key=lambda v: int(v.version))
    return str(newest.version)


def test_a_version_killed_before_complete_is_never_vetted_promoted_or_scored(world):
    client, rule = world.client, rule_for(PROPENSITY, VettingConfig(auto_promote=False))
    cutoff = str(CUTOFF)

    first = kill_while_registering(world)
    mv = client.get_model_version(NAME, first)
    assert first == "1" and mv.status == "READY" and registry.COMPLETE not in mv.tags and "vetting_as_of" not in mv.tags
    with pytest.raises(promotion.VettingError) as info:
        promotion.vet(PROPENSITY, world.lake, world.mlflow, GROUP, cutoff, rule)
    assert str(info.value) == (
        f"no complete version of {NAME} was trained at cutoff {cutoff}: version(s) 1 are incomplete (their "
        f"registration stopped before the `complete` tag, e.g. a killed run); materialize its model for {cutoff} again"
    )
    [orphan] = client.search_runs([world.mlflow.experiment_id("propensity")], f"tags.dagster_run_id = '{KILLED_RUN}'")
    assert orphan.info.status == "RUNNING"  # the killed process could not end it

    # The next training of the model ends the killed Dagster run's MLflow run (the instance
    # does not know that run: it is not running) and registers a complete version.
    done = train_and_register(PROPENSITY, world.lake, world.mlflow, GROUP, CUTOFF, TINY["propensity"],
                              {"dagster_run_id": "next-run"}, run_alive=registration.dagster_run_alive(world.instance))
    assert done.version == "2" and registry.is_complete(client.get_model_version(NAME, "2"))
    ended = client.get_run(orphan.info.run_id)
    assert ended.info.status == "FAILED"
    assert ended.data.tags["ended_as_orphan"] == f"Dagster run {KILLED_RUN} is no longer running"
    assert client.get_run(done.run_id).info.status == "FINISHED"

    third = kill_while_registering(world)
    assert third == "3"
    vetted = promotion.vet(PROPENSITY, world.lake, world.mlflow, GROUP, cutoff, rule)
    assert (vetted.candidate_version, vetted.passed_over, vetted.champion_now) == ("2", ["3"], "2")
    assert "vetting.decision" not in client.get_model_version(NAME, "3").tags

    for version in ("1", "3"):
        with pytest.raises(registry.PromotionRefused) as info:
            registry.promote(client, NAME, version, "try the killed one")
        assert str(info.value) == (
            f"not promoted: {NAME} version {version} is incomplete: its registration stopped before all its tags and "
            "artifacts were written (no `complete` tag, e.g. a killed training run); train it again; "
            "--force promotes it anyway"
        )
    assert str(registry.version_by_alias(client, NAME, registry.CHAMPION).version) == "2"

    # Forced to champion anyway, it is still not scored; version 2 scores again once restored.
    registry.promote(client, NAME, "3", "forced", force=True)
    try:
        plan = scoring.plan_scoring(PROPENSITY, world.lake, world.mlflow, [(SCORE_DATES[0], GROUP)])
        assert plan.champions == []
        assert plan.skipped == {f"{SCORE_DATES[0]}|{GROUP}": (
            f"champion refused: {NAME} version 3 is incomplete: its registration stopped before all its tags and "
            "artifacts were written (no `complete` tag, e.g. a killed training run); train it again"
        )}
    finally:
        registry.promote(client, NAME, "2", "restore", force=True)
    plan = scoring.plan_scoring(PROPENSITY, world.lake, world.mlflow, [(SCORE_DATES[0], GROUP)])
    assert [(c.name, c.version, c.dates) for c in plan.champions] == [(NAME, "2", [SCORE_DATES[0]])]
    assert plan.skipped == {}


def test_an_unvetted_version_is_refused_without_force(world):
    trained = train_and_register(LTV, world.lake, world.mlflow, GROUP, CUTOFF, TINY["ltv"], {"test": "unvetted"})
    with pytest.raises(registry.PromotionRefused) as info:
        registry.promote(world.client, LTV_NAME, trained.version, "manual", require_vetted=True)
    assert str(info.value) == (
        f"not promoted: {LTV_NAME} version {trained.version} has not been vetted (no vetting.decision tag): "
        f"materialize its champion partition (cutoff {CUTOFF}) first; --force promotes it anyway"
    )
    assert registry.version_by_alias(world.client, LTV_NAME, registry.CHAMPION) is None
    mv = registry.promote(world.client, LTV_NAME, trained.version, "manual", require_vetted=True, force=True)
    assert mv.tags["promotion.reason"] == "manual"


def copy_version(world, source: str, version: str, name: str, drop=(), **changed) -> str:
    """Register version `version` of `source` again as a new, complete version of `name`,
    with its tags less `drop` and with `changed`."""
    mv = world.client.get_model_version(source, version)
    tags = {k: v for k, v in mv.tags.items() if k not in drop and not k.startswith(("vetting.", "promotion."))}
    if not any(m.name == name for m in world.client.search_registered_models(registry.name_filter(name))):
        world.client.create_registered_model(name)
    return str(world.client.create_model_version(name, mv.source, run_id=mv.run_id, tags={**tags, **changed}).version)


def _two_group_plan(world, group: str):
    """Plan the scoring of `group` and GROUP, with features for `group` (GROUP's, under its key)."""
    grp = world.lake.read_pandas("group_features", filters=(ds.field("as_of") == SCORE_DATES[1]) & (ds.field("product_group") == GROUP))
    world.lake.write_pandas("group_features", grp.assign(product_group=group), ["as_of", "product_group"])
    plan = scoring.plan_scoring(PROPENSITY, world.lake, world.mlflow, [(SCORE_DATES[1], group), (SCORE_DATES[1], GROUP)])
    assert [c.group for c in plan.champions] == [GROUP]  # the other group is still scored
    return plan.skipped


@pytest.mark.parametrize("relabelled", [False, True], ids=["copied_tags", "relabelled_tags"])
def test_a_copy_of_another_groups_model_does_not_score_this_group(world, relabelled):
    version = copy_version(world, NAME, "2", "propensity__beef", **({"product_group": "beef"} if relabelled else {}))
    registry.promote(world.client, "propensity__beef", version, "a copy of grp_a's model", force=True)
    differs = "model_config product_group is 'grp_a'" if relabelled else "tag product_group is 'grp_a'"
    assert _two_group_plan(world, "beef") == {f"{SCORE_DATES[1]}|beef": (
        f"champion refused: propensity__beef version {version} is not a propensity model of product group beef: "
        f"{differs}, expected 'beef'"
    )}


def test_a_champion_without_its_training_window_is_not_scored(world):
    version = copy_version(world, NAME, "2", NAME, drop=("train_as_of_max",))
    registry.promote(world.client, NAME, version, "no window", force=True)
    try:
        plan = scoring.plan_scoring(PROPENSITY, world.lake, world.mlflow, [(SCORE_DATES[1], GROUP)])
    finally:
        registry.promote(world.client, NAME, "2", "restore", force=True)
    assert plan.champions == []
    assert plan.skipped == {f"{SCORE_DATES[1]}|{GROUP}": (
        f"champion refused: {NAME} version {version} lacks the lineage tags train_as_of_max that the lifecycle "
        "writes at registration; retrain it, or promote a version the lifecycle registered"
    )}


def test_an_ltv_model_as_propensity_champion_is_refused(world):
    if registry.version_by_alias(world.client, LTV_NAME, registry.CHAMPION) is None:
        train_and_register(LTV, world.lake, world.mlflow, GROUP, CUTOFF, TINY["ltv"], {"test": "ltv"})
    ltv_version = max(int(v.version) for v in world.client.search_model_versions(registry.name_filter(LTV_NAME)))
    version = copy_version(world, LTV_NAME, str(ltv_version), "propensity__grp_c")
    registry.promote(world.client, "propensity__grp_c", version, "an LTV model", force=True)
    assert _two_group_plan(world, "grp_c") == {f"{SCORE_DATES[1]}|grp_c": (
        f"champion refused: propensity__grp_c version {version} is not a propensity model of product group grp_c: "
        "tag stage is 'ltv', expected 'propensity'; tag product_group is 'grp_a', expected 'grp_c'"
    )}


def test_two_concurrent_promotions_one_wins_the_other_names_it(world, monkeypatch):
    """Both read the same champion (none); the second waits on the first's lock, then sees
    the champion the first set and refuses, naming it."""
    name = "propensity__grp_d"
    first, second = (copy_version(world, NAME, "2", name, product_group="grp_d") for _ in range(2))
    first_locked, second_read = threading.Event(), threading.Event()

    def hook(step, model, version):
        if model != name:
            return
        if step == "locked" and version == first:
            first_locked.set()
            assert second_read.wait(60)
        if step == "read" and version == second:
            second_read.set()

    monkeypatch.setattr(registry, "promote_point", hook)
    outcomes = {}

    def promote(version):
        try:
            outcomes[version] = registry.promote(world.client, name, version, f"promote {version}", by="test")
        except registry.PromotionRefused as exc:
            outcomes[version] = str(exc)

    threads = [threading.Thread(target=promote, args=(first,))]
    threads[0].start()
    assert first_locked.wait(60)
    threads.append(threading.Thread(target=promote, args=(second,)))
    threads[1].start()
    for t in threads:
        t.join(120)
    assert str(outcomes[first].version) == first
    assert outcomes[second] == (
        f"{name}: not promoted to version {second}: version {first} became champion while this promotion waited "
        f"(by test: promote {first}); run it again to replace version {first}"
    )
    assert str(registry.version_by_alias(world.client, name, registry.CHAMPION).version) == first
    assert "promotion.by" not in world.client.get_model_version(name, second).tags
