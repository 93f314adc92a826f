"""A copied or moved data/ (lake, MLflow store, Dagster home) works from its new place and
never writes into the old one. The MLflow database records absolute artifact paths; the
store rewrites them when it finds itself moved (registry.relocate_store).

A small real state is built in `a/data`: a synthetic lake, a Dagster home with the
project's dagster.yaml, and one propensity model trained and registered in the local
MLflow store. It is copied to `b/data`, a second model is trained there, and `a/data`
must be byte-for-byte unchanged; then `a/` is deleted and both models load from `b/`.
"""

import shutil
import sqlite3
from pathlib import Path

import dagster as dg
import mlflow
import pytest

from propensity_assets.shared import registry
from propensity_assets.propensity.assets import lifecycle
from propensity_assets.shared.resources import LakeResource, MlflowResource
from propensity_assets_tests.cli_helpers import instance_at
from propensity_assets_tests.conftest import REPO
from propensity_assets_tests.propensity.test_lifecycle import CUTOFF, GOOD, build_lake

propensity_model = lifecycle.assets[0]
NAME = "propensity__grp_a"


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def train(data: Path, monkeypatch) -> str:
    """Train and register one grp_a model with everything under `data`; returns its version."""
    monkeypatch.setenv("PROPENSITY_DATA_DIR", str(data))
    resources = {
        "lake": LakeResource(uri=str(data / "lake")),
        "mlflow": MlflowResource(tracking_uri=f"sqlite:///{data}/mlflow/mlflow.db"),
    }
    with instance_at(data / "dagster_home") as instance:
        if "grp_a" not in instance.get_dynamic_partitions("product_group"):
            instance.add_dynamic_partitions("product_group", ["grp_a"])
        result = dg.materialize([propensity_model], partition_key=f"{CUTOFF}|grp_a", instance=instance,
                                resources=resources,
                                run_config={"ops": {"propensity_model": {"config": {**GOOD, "max_trials": 1}}}})
        assert result.success
        [mat] = result.asset_materializations_for_node("propensity_model")
        return str(mat.metadata["model_version"].value)


def artifact_paths(db: Path) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        # Experiment 0 ("Default", MLflow's own, never used here) names ./mlruns: not a path under data/.
        rows = conn.execute("select artifact_location from experiments where name != 'Default' "
                            "union all select artifact_uri from runs "
                            "union all select storage_location from model_versions").fetchall()
    return [r[0] for r in rows if r[0]]


@pytest.fixture
def restore_mlflow(monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    yield
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def test_a_copied_data_dir_trains_and_loads_from_its_new_place(tmp_path, monkeypatch, restore_mlflow):
    a, b = tmp_path / "a" / "data", tmp_path / "b" / "data"
    build_lake(str(a / "lake"))
    (a / "dagster_home").mkdir(parents=True)
    (a / "dagster_home" / "dagster.yaml").symlink_to(REPO / "dagster.yaml")
    assert train(a, monkeypatch) == "1"
    assert all(str(a) in p for p in artifact_paths(a / "mlflow" / "mlflow.db"))

    shutil.copytree(a, b, symlinks=True)
    before = snapshot(a)
    assert train(b, monkeypatch) == "2"  # the copy's registry continues where the original stopped
    assert snapshot(a) == before, "the copy wrote into the original"
    paths = artifact_paths(b / "mlflow" / "mlflow.db")
    assert paths and not [p for p in paths if str(a) in p]
    assert (b / "mlflow" / registry.STORE_MARKER).read_text().strip() == str(b / "mlflow")

    shutil.rmtree(tmp_path / "a")  # moved, not copied: nothing may still need the old place
    tracking = f"sqlite:///{b}/mlflow/mlflow.db"
    MlflowResource(tracking_uri=tracking).client()
    for version in ("1", "2"):
        model = mlflow.pyfunc.load_model(f"models:/{NAME}/{version}")
        assert model.metadata.run_id
    assert not (tmp_path / "a").exists()


def test_relocation_rewrites_only_paths_under_the_old_directory(tmp_path):
    old, new = tmp_path / "old" / "mlflow", tmp_path / "new" / "mlflow"
    old.mkdir(parents=True)
    db = old / "mlflow.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table experiments (experiment_id int, artifact_location text)")
        conn.executemany("insert into experiments values (?, ?)", [
            (1, f"{old.as_uri()}/artifacts/propensity"),
            (2, f"{old}/artifacts/ltv"),
            (3, f"{old}2/artifacts/elsewhere"),  # a sibling whose name merely starts the same
            (4, "s3://bucket/artifacts/x"),
        ])
    assert registry.relocate_store(db) is None  # first open: records where it is
    shutil.move(str(old), str(new))
    assert registry.relocate_store(new / "mlflow.db") == str(old)
    with sqlite3.connect(new / "mlflow.db") as conn:
        assert [r[0] for r in conn.execute("select artifact_location from experiments order by experiment_id")] == [
            f"{new.as_uri()}/artifacts/propensity", f"{new}/artifacts/ltv", f"{old}2/artifacts/elsewhere",
            "s3://bucket/artifacts/x",
        ]
    assert registry.relocate_store(new / "mlflow.db") is None  # once only
