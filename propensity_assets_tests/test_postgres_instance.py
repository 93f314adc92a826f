"""A Postgres instance, as docs/operations.md configures it, with a real PostgreSQL server.

The `postgres` fixture (conftest.py) starts the server; each test makes a DAGSTER_HOME
whose dagster.yaml is the project's with the documented `storage:` block, on a database of
its own, and drives the real CLI in subprocesses on test_cli's tiny dataset. What the
runs recorded is then read back twice: through a Dagster instance loaded from that home,
and with SQL straight from the Postgres tables, so a run that silently fell back to
SQLite storage fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from propensity_assets_tests.cli_helpers import instance_at
from propensity_assets_tests.postgres_server import documented_blocks, write_home
from propensity_assets_tests.test_cli import GROUPS, GROUPS_YAML, cli_env

BIN = Path(sys.executable).parent
MODULE = ["-m", "propensity_assets.definitions"]
DATES = ["2017-03-02", "2017-03-03", "2017-03-04", "2017-03-05", "2017-03-06"]


def run_cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(BIN / args[0]), *args[1:]], env=env, capture_output=True, text=True, timeout=600, cwd=env["DAGSTER_HOME"]
    )
    if check and done.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} exited {done.returncode}\n--- stdout\n{done.stdout[-4000:]}"
            f"\n--- stderr\n{done.stderr[-8000:]}"
        )
    return done


def storage_classes(instance: dg.DagsterInstance) -> list[str]:
    return [type(s).__name__ for s in (instance.run_storage, instance.event_log_storage, instance.schedule_storage)]


def test_documented_block_is_the_postgres_storage():
    fenced, heredoc = documented_blocks()
    assert fenced == heredoc, "docs/operations.md's ```yaml block and its shell heredoc differ"
    assert yaml.safe_load(fenced) == {
        "storage": {
            "postgres": {
                "postgres_db": {
                    "username": "dagster",
                    "password": {"env": "DAGSTER_PG_PASSWORD"},
                    "hostname": "localhost",
                    "db_name": "dagster",
                    "port": 5432,
                    "scheme": "postgresql+psycopg2",
                }
            }
        }
    }


def test_range_materialization_is_recorded_in_postgres(postgres, tmp_path):
    root = tmp_path
    groups_file = root / "product_groups.yaml"
    groups_file.write_text(GROUPS_YAML)
    instance_env = write_home(postgres, root / "dagster_home", "dagster_cli")
    env = cli_env(root, instance_env, groups_file)
    home = Path(env["DAGSTER_HOME"])

    run_cli(env, "propensity-assets", "sync-groups")
    run_cli(env, "dg", "launch", *MODULE, "--job", "ingest_job")
    run_cli(
        env, "dg", "launch", *MODULE, "--assets", "household_features",
        "--partition-range", f"{DATES[0]}...{DATES[-1]}",
    )

    with instance_at(home, DAGSTER_PG_PASSWORD=postgres.password) as instance:
        assert storage_classes(instance) == ["PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"]
        runs = {run.job_name: run for run in instance.get_runs()}
        assert sorted(runs) == ["__ASSET_JOB", "ingest_job"]
        run = runs["__ASSET_JOB"]
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert runs["ingest_job"].status == dg.DagsterRunStatus.SUCCESS
        assert run.asset_selection == {dg.AssetKey("household_features")}
        assert (run.tags["dagster/asset_partition_range_start"], run.tags["dagster/asset_partition_range_end"]) == (
            DATES[0],
            DATES[-1],
        )
        records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
        assert [r.event_log_entry.dagster_event.partition for r in records] == DATES
        assert instance.get_materialized_partitions(dg.AssetKey("household_features")) == set(DATES)

    # The same facts, straight from the database: the runs and events are rows in Postgres.
    assert sorted(postgres.query("dagster_cli", "SELECT run_id, status FROM runs")) == sorted(
        (r.run_id, "SUCCESS") for r in runs.values()
    )
    materialized = postgres.query(
        "dagster_cli",
        "SELECT partition FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION' "
        "AND asset_key = %s ORDER BY id",
        (run.run_id, dg.AssetKey("household_features").to_string()),
    )
    assert [partition for (partition,) in materialized] == DATES
    assert sorted(p.name for p in home.rglob("*.db")) == [], "a SQLite file appeared in the Postgres instance's home"
    # ... and the lake holds what the run reported.
    assert sorted(p.name for p in (root / "lake" / "household_features").glob("as_of=*")) == [f"as_of={d}" for d in DATES]


def test_synced_groups_persist_in_postgres(postgres, tmp_path):
    catalogue = tmp_path / "product_groups.yaml"
    catalogue.write_text(GROUPS_YAML)
    instance_env = write_home(postgres, tmp_path / "dagster_home", "dagster_groups")
    env = cli_env(tmp_path, instance_env, catalogue)
    home = Path(env["DAGSTER_HOME"])

    def stored() -> list[str]:
        rows = postgres.query(
            "dagster_groups",
            "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'product_group' ORDER BY id",
        )
        return [partition for (partition,) in rows]

    assert run_cli(env, "propensity-assets", "sync-groups").stdout.splitlines() == [
        "product groups: 3 (soft_drinks, snacks, party)",
        "added: soft_drinks, snacks, party; removed: none",
    ]
    assert stored() == GROUPS
    with instance_at(home, DAGSTER_PG_PASSWORD=postgres.password) as instance:
        assert storage_classes(instance)[1] == "PostgresEventLogStorage"
        assert instance.get_dynamic_partitions("product_group") == GROUPS

    catalogue.write_text(GROUPS_YAML.replace("  snacks:", "  crisps:"))
    assert run_cli(env, "propensity-assets", "sync-groups", "--prune").stdout.splitlines() == [
        "product groups: 3 (soft_drinks, party, crisps)",
        "added: crisps; removed: snacks",
    ]
    assert stored() == ["soft_drinks", "party", "crisps"]
    # A new process reads the partitions back from Postgres.
    assert run_cli(env, "propensity-assets", "partition-range", "--groups-only").stdout.strip() == "soft_drinks...crisps"
    with instance_at(home, DAGSTER_PG_PASSWORD=postgres.password) as instance:
        assert instance.get_dynamic_partitions("product_group") == ["soft_drinks", "party", "crisps"]
    assert sorted(p.name for p in home.rglob("*.db")) == []
