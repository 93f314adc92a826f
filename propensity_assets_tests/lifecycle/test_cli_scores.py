"""Scoring from the command line, as a user backfills it headless (README):

    propensity-assets sync-groups
    dagster asset materialize -m propensity_assets.definitions --select propensity_scores \\
        --partition-range "$(propensity-assets partition-range D1 D3)"

against a temporary DAGSTER_HOME, lake and MLflow store. The lake holds synthetic
features (written with pyarrow; scoring reads them with Spark), and each group's champion is a
real model trained and registered by `train_and_register` on synthetic labels, then
promoted. For `grp_a` the champion is not the newest version, so the scores must come
from the alias, not from "latest".
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import dagster as dg

from propensity_assets_tests.cli_helpers import instance_at
import numpy as np
import pandas as pd
import pytest

from propensity_assets.shared import registry
from propensity_assets.features.declaration import GROUP, HOUSEHOLD
from propensity_assets.shared.lake import Lake
from propensity_assets.lifecycle.frames import snapshot_plan
from propensity_assets.lifecycle.training import train_and_register
from propensity_assets.propensity.stage import PROPENSITY
from propensity_assets.shared import tables
from propensity_assets.propensity.stage import PropensityTraining as TrainingConfig
from propensity_assets.shared.resources import MlflowResource

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GROUPS = ["grp_b", "grp_a"]  # catalogue order = partition order (not alphabetical)
GROUPS_YAML = """\
product_groups:
  grp_b:
    categories: [BAG SNACKS]
  grp_a:
    categories: [SOFT DRINKS]
"""
SCORE_DATES = ["2017-11-29", "2017-11-30", "2017-12-01"]
CUTOFF = date(2017, 11, 24)
# A tiny search: one trial, a few rounds.
TINY = TrainingConfig(
    history_weeks=2,
    num_leaves=[4],
    learning_rate=[0.2],
    min_child_samples=[5],
    feature_fraction=[1.0],
    lambda_l2=[0.0],
    max_trials=1,
    max_rounds=20,
    early_stopping_rounds=5,
)


def households(day: str) -> np.ndarray:
    """The population at `day`: one more household each day (it only grows, as every
    household seen before as_of stays in it), so partitions differ in size."""
    offset = (date.fromisoformat(day) - date(2017, 9, 1)).days
    return np.arange(1, 20 + offset + 1, dtype="int64")


def synthetic_features(days: list[str], seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    hh_rows, grp_rows = [], []
    for day in days:
        ids = households(day)
        hh = pd.DataFrame(rng.poisson(3, (len(ids), len(HOUSEHOLD.columns))).astype("float64"),
                          columns=HOUSEHOLD.columns)
        hh.insert(0, "household_id", ids)
        hh.insert(0, "as_of", day)
        hh_rows.append(hh)
        for group in GROUPS:
            grp = pd.DataFrame(rng.poisson(2, (len(ids), len(GROUP.columns))).astype("float64"),
                               columns=GROUP.columns)
            grp.insert(0, "household_id", ids)
            grp.insert(0, "product_group", group)
            grp.insert(0, "as_of", day)
            grp_rows.append(grp)
    return pd.concat(hh_rows, ignore_index=True), pd.concat(grp_rows, ignore_index=True)


def synthetic_labels(grp: pd.DataFrame, seed: int = 11) -> pd.DataFrame:
    """Buyers are the households that bought the group recently: learnable, not perfect."""
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-(grp["grp_days_30d"].to_numpy() - 2.0)))
    return grp[["as_of", "product_group", "household_id"]].assign(label=(rng.random(len(grp)) < p).astype("int32"))


def write_lake(lake: Lake, days: list[str], with_labels: bool) -> None:
    hh, grp = synthetic_features(days, seed=len(days))
    lake.write_pandas("household_features", hh, ["as_of"])
    lake.write_pandas("group_features", grp, ["as_of", "product_group"])
    if with_labels:
        lake.write_pandas(tables.PROPENSITY_LABELS, synthetic_labels(grp), ["as_of", "product_group"])


def register_champions(lake: Lake, mlflow_res: MlflowResource) -> dict[str, str]:
    """Train and register one model per group, as the weekly training does, and promote it.
    grp_a also gets a version 2 (the same model registered again) that stays unpromoted."""
    client = mlflow_res.client()
    champions = {}
    for group in GROUPS:
        out = train_and_register(PROPENSITY, lake, mlflow_res, group, CUTOFF, TINY, {"test": "cli_scores"})
        assert out.version == "1"
        name = registry.model_name("propensity", group)
        registry.promote(client, name, out.version, "test champion", by="test")
        champions[group] = out.version
    name = registry.model_name("propensity", "grp_a")
    v1 = client.get_model_version(name, "1")
    assert str(client.create_model_version(name, v1.source, run_id=v1.run_id).version) == "2"
    return champions


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_scores")
    home, lake_dir = root / "dagster_home", root / "lake"
    home.mkdir()
    lake_dir.mkdir()
    (home / "dagster.yaml").symlink_to(REPO / "dagster.yaml")
    groups_file = root / "product_groups.yaml"
    groups_file.write_text(GROUPS_YAML)
    tracking_uri = f"sqlite:///{root}/mlflow/mlflow.db"

    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PROPENSITY_DATA_DIR": str(root),
        "PROPENSITY_LAKE_URI": str(lake_dir),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PROPENSITY_PRODUCT_GROUPS": str(groups_file),
    }
    for name in ("MLFLOW_REGISTRY_URI", "PROPENSITY_TODAY"):
        env.pop(name, None)

    def run(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [str(BIN / args[0]), *args[1:]], env=env, capture_output=True, text=True, timeout=300, cwd=root
        )
        if proc.returncode != 0:
            pytest.fail(
                f"{' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}"
                f"\n--- stderr\n{proc.stderr[-8000:]}"
            )
        return proc

    def sync_and_range() -> tuple[str, str]:
        sync = run("propensity-assets", "sync-groups")
        partition_range = run("propensity-assets", "partition-range", SCORE_DATES[0], SCORE_DATES[-1])
        return sync.stdout, partition_range.stdout.strip()

    # The CLI creates the instance (slow: SQLite schemas) while the models train.
    with ThreadPoolExecutor(1) as pool:
        commands = pool.submit(sync_and_range)
        # The lake: training snapshots with labels, scoring dates with features only.
        lake = Lake(str(lake_dir))
        plan = snapshot_plan(CUTOFF, 30, TINY.history_weeks, date(2017, 1, 1))
        write_lake(lake, [str(d) for d in (*plan.train, plan.vetting)], with_labels=True)
        write_lake(lake, SCORE_DATES, with_labels=False)
        artifacts = (root / "mlflow" / "artifacts").as_uri()
        champions = register_champions(lake, MlflowResource(tracking_uri=tracking_uri, artifact_root=artifacts))
        sync, partition_range = commands.result()
    assert "product groups: 2 (grp_b, grp_a)" in sync
    assert partition_range == f"{SCORE_DATES[0]}|grp_b...{SCORE_DATES[-1]}|grp_a"
    return SimpleNamespace(
        root=root, home=home, lake=lake, run=run, champions=champions, partition_range=partition_range
    )


@pytest.fixture(scope="module")
def first_backfill(cli):
    run = backfill_scores(cli)
    return run, scores(cli.lake)




def backfill_scores(cli) -> dg.DagsterRun:
    """The README's command; returns the one run it made."""
    with instance_at(cli.home) as instance:
        before = {run.run_id for run in instance.get_runs()}
    cli.run(
        "dg", "launch", "-m", "propensity_assets.definitions",
        "--assets", "propensity_scores", "--partition-range", cli.partition_range,
    )
    with instance_at(cli.home) as instance:
        new = [run for run in instance.get_runs() if run.run_id not in before]
        assert len(new) == 1, f"expected exactly one new run, got {len(new)}"
        assert new[0].status == dg.DagsterRunStatus.SUCCESS
        materialized = {
            str(key)
            for key in instance.get_materialized_partitions(dg.AssetKey(tables.PROPENSITY_SCORES))
        }
    assert materialized == {f"{d}|{g}" for d in SCORE_DATES for g in GROUPS}
    return new[0]


def scores(lake: Lake) -> pd.DataFrame:
    frame = lake.read_pandas(tables.PROPENSITY_SCORES)
    return frame.sort_values(["as_of", "product_group", "household_id"]).reset_index(drop=True)


def test_backfill_scores_every_household_with_the_champion(cli, first_backfill):
    run, frame = first_backfill
    assert run.tags["dagster/asset_partition_range_start"] == f"{SCORE_DATES[0]}|grp_b"

    parts = {(d, g) for d in cli.lake.partitions(tables.PROPENSITY_SCORES, "as_of") for g in GROUPS
             if cli.lake.exists(tables.PROPENSITY_SCORES, {"as_of": d, "product_group": g})}
    assert parts == {(d, g) for d in SCORE_DATES for g in GROUPS}
    assert cli.lake.partitions(tables.PROPENSITY_SCORES, "as_of") == SCORE_DATES

    for (as_of, group), rows in frame.groupby(["as_of", "product_group"]):
        assert sorted(rows["household_id"]) == list(households(as_of)), (as_of, group)
        assert rows["household_id"].is_unique
        assert rows["score"].between(0, 1).all(), (as_of, group)  # no NaN either
        assert set(rows["model_name"]) == {f"propensity__{group}"}
        assert set(rows["model_version"]) == {cli.champions[group]}
    assert len(frame) == sum(len(households(d)) for d in SCORE_DATES) * len(GROUPS)
    # A real model: scores vary with the features.
    assert frame["score"].nunique() > 3


def test_backfill_again_rewrites_the_same_scores(cli, first_backfill):
    _, first = first_backfill
    backfill_scores(cli)
    second = scores(cli.lake)
    pd.testing.assert_frame_equal(first, second)
    assert cli.lake.partitions(tables.PROPENSITY_SCORES, "as_of") == SCORE_DATES
    # Each partition was swapped in whole: one file each, and nothing left staged.
    table = cli.root / "lake" / tables.PROPENSITY_SCORES
    files = sorted(str(p.relative_to(table).parent) for p in table.rglob("*.parquet"))
    assert files == [f"as_of={d}/product_group={g}" for d in SCORE_DATES for g in sorted(GROUPS)]
    assert not any((cli.root / "lake" / "_staging").glob("*"))
