"""`propensity-assets promote` as a user runs it: a real subprocess against a temp DAGSTER_HOME
and a real MLflow registry on SQLite. It refuses an unvetted or incomplete version, naming
why, and promotes it with --force; two promotions of one model at once are serialized, and
the second sees the first and says so.

The versions are registered directly with the tags the lifecycle writes: promotion reads
only tags and aliases, so no model needs training here.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from propensity_assets.shared import registry
from propensity_assets_tests.cli_helpers import BIN, REPO

NAME = "propensity__soft_drinks"
LINEAGE = {"stage": "propensity", "product_group": "soft_drinks", "cutoff": "2017-11-24",
           "train_as_of_max": "2017-10-27", "vetting_as_of": "2017-10-27"}


@pytest.fixture(scope="module")
def registry_dir(tmp_path_factory):
    """Versions 1 (vetted, champion), 2 (complete, unvetted), 3 (incomplete: no `complete`
    tag), 4 and 5 (vetted), in a SQLite registry."""
    root = tmp_path_factory.mktemp("cli_promote")
    (root / "home").mkdir()
    (root / "home" / "dagster.yaml").symlink_to(REPO / "dagster.yaml")
    client = MlflowClient(tracking_uri=f"sqlite:///{root}/mlflow.db", registry_uri=f"sqlite:///{root}/mlflow.db")
    client.create_registered_model(NAME)
    complete, vetted = {registry.COMPLETE: "true"}, {"vetting.decision": "champion"}
    for tags in ({**LINEAGE, **complete, **vetted}, {**LINEAGE, **complete}, {"cutoff": LINEAGE["cutoff"]},
                 {**LINEAGE, **complete, **vetted}, {**LINEAGE, **complete, **vetted}):
        client.create_model_version(NAME, source=(root / "model").as_uri(), tags=tags)
    client.set_registered_model_alias(NAME, registry.CHAMPION, "1")
    yield root
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def client_of(root: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{root}/mlflow.db", registry_uri=f"sqlite:///{root}/mlflow.db")


def env_of(root: Path) -> dict:
    return {**os.environ, "DAGSTER_HOME": str(root / "home"), "PROPENSITY_DATA_DIR": str(root),
            "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db", "PYTHONPATH": str(REPO)}


def promote(root: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "propensity-assets"), "promote", "soft_drinks", *args], cwd=root,
                            env=env_of(root), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=180)
    assert "Traceback" not in err, err
    return proc.returncode, out, err


def champion(root: Path) -> str:
    return str(registry.version_by_alias(client_of(root), NAME, registry.CHAMPION).version)


def test_promote_refuses_an_unvetted_or_incomplete_version_and_force_promotes_it(registry_dir):
    root = registry_dir
    assert finished(promote(root, "2")) == (2, "", (
        f"error: not promoted: {NAME} version 2 has not been vetted (no vetting.decision tag): materialize its "
        f"champion partition (cutoff {LINEAGE['cutoff']}) first; --force promotes it anyway\n"))
    assert finished(promote(root, "3")) == (2, "", (
        f"error: not promoted: {NAME} version 3 is incomplete: its registration stopped before all its tags and "
        "artifacts were written (no `complete` tag, e.g. a killed training run); train it again; --force promotes "
        "it anyway\n"))
    assert champion(root) == "1"  # neither refusal moved it or tagged anything
    assert "promotion.by" not in client_of(root).get_model_version(NAME, "2").tags

    assert finished(promote(root, "3", "--force", "--reason", "restore the killed run's model")) == (
        0, f"{NAME}: champion -> version 3\n", "")
    tags = client_of(root).get_model_version(NAME, "3").tags
    assert (champion(root), tags["promotion.by"], tags["promotion.reason"], tags["promotion.replaced_version"]) == (
        "3", "manual", "restore the killed run's model", "1")
    assert finished(promote(root, "1")) == (0, f"{NAME}: champion -> version 1\n", "")  # vetted: no --force needed


def has_open(pid: int, path: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) == str(path) for fd in fds.iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_two_concurrent_promotes_are_serialized_and_the_second_names_the_first(registry_dir):
    """Both processes read the same champion, then wait on the model's promotion lock, which
    the test holds until both have opened it; released, one promotes and the other sees it."""
    root = registry_dir
    assert champion(root) == "1"
    lock = root / "locks" / f"{NAME}.promote.lock"
    lock.parent.mkdir(exist_ok=True)
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        procs = {"4": promote(root, "4"), "5": promote(root, "5")}
        deadline = time.monotonic() + 120
        while not all(has_open(p.pid, lock) for p in procs.values()):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs.values()), \
                [p.communicate() for p in procs.values() if p.poll() is not None]
            time.sleep(0.05)
        fcntl.flock(held, fcntl.LOCK_UN)
    results = {version: finished(proc) for version, proc in procs.items()}
    [winner] = [v for v, (code, _, _) in results.items() if code == 0]
    [loser] = [v for v in results if v != winner]
    assert results[winner] == (0, f"{NAME}: champion -> version {winner}\n", "")
    assert results[loser] == (2, "", (
        f"error: {NAME}: not promoted to version {loser}: version {winner} became champion while this promotion "
        f"waited (by manual: manual promotion); run it again to replace version {winner}\n"))
    assert champion(root) == winner
    assert client_of(root).get_model_version(NAME, winner).tags["promotion.replaced_version"] == "1"
    assert "promotion.by" not in client_of(root).get_model_version(NAME, loser).tags
