"""End to end through the command line, as a user runs the pipeline headless:

    propensity-assets sync-groups
    dagster job execute -m propensity_assets.definitions -j ingest_job
    dagster asset materialize ... --partition / --partition-range "$(propensity-assets partition-range ...)"

Every command runs in a subprocess against a temporary DAGSTER_HOME, a tiny source
directory and a temporary lake. Each `dagster asset materialize` starts a Spark JVM,
so the module shares one set-up, keeps those calls few (six) and runs independent
ones side by side.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
from dagster._core.storage.tags import REPOSITORY_LABEL_TAG

from propensity_assets_tests.cli_helpers import BIN, MODULE, REPO, instance_at
import duckdb
import pandas as pd
import pytest


PRODUCTS = """\
product_id,product_category,department
1,SOFT DRINKS,GROCERY
2,BAG SNACKS,GROCERY
3,BEERS/ALES,GROCERY
4,CHEESE,GROCERY
"""

# Households start on different days, so the population grows over the range.
TRANSACTIONS = """\
household_id,basket_id,product_id,quantity,sales_value,transaction_timestamp
1,101,1,2,3.00,2017-03-01 10:00:00
1,101,4,1,5.00,2017-03-01 10:00:00
2,201,2,1,2.50,2017-03-02 11:00:00
1,102,3,6,9.00,2017-03-03 18:30:00
3,301,4,1,4.00,2017-03-04 09:15:00
2,202,1,1,1.50,2017-03-04 12:00:00
4,401,2,2,5.00,2017-03-06 16:00:00
"""

# `party` overlaps both other groups (SOFT DRINKS, BAG SNACKS).
GROUPS_YAML = """\
product_groups:
  soft_drinks:
    description: Soft drinks
    categories: [SOFT DRINKS]
  snacks:
    description: Bag snacks
    categories: [BAG SNACKS]
  party:
    description: Party
    categories: [SOFT DRINKS, BAG SNACKS, BEERS/ALES]
"""
GROUPS = ["soft_drinks", "snacks", "party"]  # catalogue order = partition order
DATES = ["2017-03-02", "2017-03-03", "2017-03-04", "2017-03-05", "2017-03-06"]

# Light Spark for a few rows: one core, no UI, no adaptive re-planning, and a JIT that
# compiles fast rather than well (a cold JVM spends most of a tiny job compiling).
SPARK_CONF = ",".join(
    [
        "spark.sql.shuffle.partitions=2",
        "spark.ui.enabled=false",
        "spark.sql.adaptive.enabled=false",
        "spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    ]
)


def cli_env(root: Path, instance_env: dict[str, str], groups_file: Path) -> dict[str, str]:
    """The environment of a CLI run on the tiny dataset, written to `root`/source, with its
    lake at `root`/lake; `instance_env` points at the Dagster instance."""
    source, lake = root / "source", root / "lake"
    for path in (source, lake):
        path.mkdir(exist_ok=True)
    (source / "products.csv").write_text(PRODUCTS)
    (source / "transactions.csv").write_text(TRANSACTIONS)
    return {
        **os.environ,
        **instance_env,
        "PROPENSITY_DATA_DIR": str(root),
        "PROPENSITY_SOURCE_DIR": str(source),
        "PROPENSITY_LAKE_URI": str(lake),
        "PROPENSITY_PRODUCT_GROUPS": str(groups_file),
        "SPARK_MASTER": "local[1]",
        "SPARK_DRIVER_MEMORY": "1g",
        "PROPENSITY_SPARK_CONF": SPARK_CONF,
        "PYSPARK_PYTHON": sys.executable,
    }


def population(as_of: str) -> set[int]:
    """Households with a transaction whose day is before as_of (CONTRACTS §4)."""
    tx = pd.read_csv(io.StringIO(TRANSACTIONS), parse_dates=["transaction_timestamp"])
    return set(tx.loc[tx["transaction_timestamp"].dt.normalize() < pd.Timestamp(as_of), "household_id"])


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """A source dir, catalogue, lake and DAGSTER_HOME; groups synced and raw tables ingested."""
    root = tmp_path_factory.mktemp("cli")
    source, home, lake = root / "source", root / "dagster_home", root / "lake"
    for path in (source, home, lake):
        path.mkdir()
    groups_file = root / "product_groups.yaml"
    groups_file.write_text(GROUPS_YAML)
    (home / "dagster.yaml").symlink_to(REPO / "dagster.yaml")
    env = cli_env(root, {"DAGSTER_HOME": str(home)}, groups_file)

    def run(*args: str, check: bool = True, **overrides: str) -> subprocess.CompletedProcess:
        return run_all([args], check=check, **overrides)[0]

    def run_all(commands, check: bool = True, **overrides: str) -> list[subprocess.CompletedProcess]:
        """Run the commands side by side (each dagster run starts its own JVM)."""
        logs = [(tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")) for _ in commands]
        procs = [
            subprocess.Popen(
                [str(BIN / args[0]), *args[1:]], env={**env, **overrides}, stdout=out, stderr=err, text=True, cwd=root
            )
            for args, (out, err) in zip(commands, logs)
        ]
        results = []
        for args, proc, (out, err) in zip(commands, procs, logs):
            proc.wait(timeout=600)
            out.seek(0), err.seek(0)
            done = subprocess.CompletedProcess(list(args), proc.returncode, out.read(), err.read())
            out.close(), err.close()
            # Today's CLI (`dg launch`, `propensity-assets launch`): nothing superseded.
            assert "SupersessionWarning" not in done.stderr, done.stderr[-2000:]
            if check and done.returncode != 0:
                pytest.fail(
                    f"{' '.join(args)} exited {done.returncode}\n--- stdout\n{done.stdout[-4000:]}"
                    f"\n--- stderr\n{done.stderr[-8000:]}"
                )
            results.append(done)
        return results

    sync = run("propensity-assets", "sync-groups")
    run("propensity-assets", "launch", "--job", "ingest_job")
    return SimpleNamespace(
        root=root, home=home, lake=lake, groups_file=groups_file, run=run, run_all=run_all, sync=sync
    )




def run_ids(home: Path) -> set[str]:
    with instance_at(home) as instance:
        return {run.run_id for run in instance.get_runs()}


# The named job each feature asset runs in, as `make demo` runs it.
JOB_OF = {"household_features": "daily_features_job", "group_features": "daily_scoring_job"}
CODE_LOCATION = {REPOSITORY_LABEL_TAG: "__repository__@propensity_assets"}


def materialize(cli, asset: str, *partition_args: str):
    """`propensity-assets launch` of one asset in its job; returns the one run it made."""
    return materialize_together(cli, {asset: partition_args})[asset]


def materialize_together(cli, requests: dict[str, tuple[str, ...]]) -> dict:
    """`propensity-assets launch` of each asset at the same time: one new run each, a run of
    the asset's job in the project's code location (what the UI's Jobs pages list)."""
    before = run_ids(cli.home)
    cli.run_all(
        [("propensity-assets", "launch", "--job", JOB_OF[asset], "--assets", asset, *args)
         for asset, args in requests.items()]
    )
    with instance_at(cli.home) as instance:
        new = [run for run in instance.get_runs() if run.run_id not in before]
        listed = {run.run_id for job in set(JOB_OF.values())
                  for run in instance.get_runs(dg.RunsFilter(job_name=job, tags=CODE_LOCATION))}
    assert len(new) == len(requests), f"expected {len(requests)} new run(s), got {len(new)}"
    runs = {}
    for run in new:
        [asset_key] = run.asset_selection
        runs[asset_key.to_user_string()] = run
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.job_name == JOB_OF[asset_key.to_user_string()]
        assert run.run_id in listed
    assert runs.keys() == requests.keys()
    return runs


def read_table(lake: Path, table: str) -> pd.DataFrame:
    """The table as DuckDB reads it straight from the lake (Hive partitions)."""
    depth = {"household_features": 1, "group_features": 2}[table]
    glob = str(lake / table / "/".join(["*"] * depth) / "*.parquet")
    frame = duckdb.sql(
        f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true, hive_types_autocast = false)"
    ).df()
    frame["as_of"] = frame["as_of"].astype(str)
    return frame


def partition_files(lake: Path, table: str) -> dict[str, list[str]]:
    """Partition dir → its Parquet file names: a rewritten partition gets new names."""
    return {
        str(part.parent.relative_to(lake / table)): sorted(p.name for p in part.parent.glob("*.parquet"))
        for part in sorted((lake / table).glob("**/*.parquet"))
    }


def pairs_of(files: dict[str, list[str]]) -> set[tuple[str, str]]:
    """(as_of, product_group) of each partition dir of group_features."""
    pairs = set()
    for part in files:
        as_of, group = (piece.split("=", 1)[1] for piece in part.split("/"))
        pairs.add((as_of, group))
    return pairs


def check_group_partitions(frame: pd.DataFrame, pairs) -> None:
    """Each (as_of, group) holds exactly the population at as_of, one row per household."""
    for as_of, group in pairs:
        rows = frame[(frame["as_of"] == as_of) & (frame["product_group"] == group)]
        assert len(rows) == len(population(as_of)), (as_of, group)
        assert set(rows["household_id"]) == population(as_of), (as_of, group)


def normalised(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in ("as_of", "product_group", "household_id") if c in frame.columns]
    return frame.sort_values(keys).reset_index(drop=True)[sorted(frame.columns)]


# -- sync-groups -------------------------------------------------------------------------


def test_sync_groups_reports_partitions(cli):
    assert cli.sync.stdout.splitlines() == [
        "product groups: 3 (soft_drinks, snacks, party)",
        "added: soft_drinks, snacks, party; removed: none",
    ]
    with instance_at(cli.home) as instance:
        assert instance.get_dynamic_partitions("product_group") == GROUPS


def test_sync_groups_is_idempotent_follows_edits_and_links_dagster_yaml(cli, tmp_path):
    home = tmp_path / "fresh_home"  # no dagster.yaml yet: the CLI links the project's
    catalogue = tmp_path / "groups.yaml"
    catalogue.write_text(GROUPS_YAML)

    def sync(*extra: str, check: bool = True):
        args = ("sync-groups", "--file", str(catalogue), *extra)
        return cli.run("propensity-assets", *args, DAGSTER_HOME=str(home), check=check)

    sync()
    assert (home / "dagster.yaml").resolve() == (REPO / "dagster.yaml").resolve()
    assert sync().stdout.splitlines()[1] == "added: none; removed: none"
    catalogue.write_text(GROUPS_YAML.replace("  snacks:", "  crisps:"))
    refused = sync(check=False)  # snacks would be removed: only with --prune
    assert refused.returncode == 2 and "product_group partition(s) snacks are not in the catalogue" in refused.stderr
    assert sync("--prune").stdout.splitlines() == [
        "product groups: 3 (soft_drinks, party, crisps)",
        "added: crisps; removed: snacks",
    ]


def test_sync_groups_rejects_invalid_catalogue_naming_the_group(cli, tmp_path):
    bad = tmp_path / "bad_groups.yaml"
    bad.write_text(GROUPS_YAML + "  beer_only:\n    description: Beer, but no selector\n")
    proc = cli.run("propensity-assets", "sync-groups", "--file", str(bad), check=False)
    assert proc.returncode == 2
    assert "beer_only" in proc.stderr and str(bad) in proc.stderr
    assert proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr
    with instance_at(cli.home) as instance:  # nothing changed
        assert instance.get_dynamic_partitions("product_group") == GROUPS


# -- materializing -----------------------------------------------------------------------


def test_one_partition_of_each_feature_asset(cli):
    before = pairs_of(partition_files(cli.lake, "group_features"))
    # Two runs at once on one instance and lake (dagster.yaml allows two concurrent runs).
    runs = materialize_together(
        cli,
        {"household_features": ("--partition", "2017-03-05"), "group_features": ("--partition", "2017-03-05|party")},
    )
    assert runs["household_features"].tags["dagster/partition"] == "2017-03-05"
    assert runs["group_features"].tags["dagster/partition"] == "2017-03-05|party"

    households = read_table(cli.lake, "household_features")
    assert set(households["as_of"]) == {"2017-03-05"}
    assert sorted(households["household_id"]) == sorted(population("2017-03-05")) == [1, 2, 3]
    one = households.set_index("household_id").loc[1]
    assert (one["hh_spend_30d"], one["hh_baskets_30d"], one["hh_days_since_last"]) == (17.0, 2, 2)

    assert pairs_of(partition_files(cli.lake, "group_features")) == before | {("2017-03-05", "party")}
    groups = read_table(cli.lake, "group_features")
    check_group_partitions(groups, [("2017-03-05", "party")])
    party = groups[(groups["as_of"] == "2017-03-05") & (groups["product_group"] == "party")]
    party = party.set_index("household_id")
    # Household 1: soft drinks 3.00 + beer 9.00 of 17.00; household 3 only bought cheese.
    assert party.loc[1, "grp_spend_30d"] == 12.0
    assert party.loc[1, "grp_spend_share_30d"] == pytest.approx(12.0 / 17.0)
    assert party.loc[3, "grp_spend_30d"] == 0.0 and pd.isna(party.loc[3, "grp_days_since_last"])


def _range(cli, group: str | None = None) -> str:
    args = ["partition-range", DATES[0], DATES[-1]] + (["--group", group] if group else [])
    return cli.run("propensity-assets", *args).stdout.strip()


def test_date_range_for_one_group_is_one_run(cli):
    partition_range = _range(cli, "snacks")
    assert partition_range == "2017-03-02|snacks...2017-03-06|snacks"
    before = partition_files(cli.lake, "group_features")

    # Alongside, the same dates of household_features, as the headless flow does.
    runs = materialize_together(
        cli,
        {
            "group_features": ("--partition-range", partition_range),
            "household_features": ("--partition-range", f"{DATES[0]}...{DATES[-1]}"),
        },
    )
    run = runs["group_features"]
    assert run.tags["dagster/asset_partition_range_start"] == "2017-03-02|snacks"
    assert run.tags["dagster/asset_partition_range_end"] == "2017-03-06|snacks"
    households = read_table(cli.lake, "household_features")
    assert set(households["as_of"]) == set(DATES)
    for as_of in DATES:
        assert set(households.loc[households["as_of"] == as_of, "household_id"]) == population(as_of), as_of
    assert not households.duplicated(["as_of", "household_id"]).any()

    frame = read_table(cli.lake, "group_features")
    written = set(zip(frame["as_of"], frame["product_group"]))
    expected = {(d, "snacks") for d in DATES}
    assert expected <= written
    # Only that group: other groups' partitions are untouched.
    assert written - expected == {(as_of, g) for as_of, g in pairs_of(before) if g != "snacks"}
    after = partition_files(cli.lake, "group_features")
    for part, files in before.items():
        if "product_group=snacks" not in part:
            assert after[part] == files, part
    check_group_partitions(frame, sorted(expected))
    snacks = frame[frame["product_group"] == "snacks"].set_index(["as_of", "household_id"])
    assert snacks.loc[("2017-03-06", 2), "grp_days_since_last"] == 4
    assert snacks.loc[("2017-03-06", 1), "grp_spend_90d"] == 0.0


def test_date_range_for_all_groups_is_one_run(cli):
    partition_range = _range(cli)
    assert partition_range == "2017-03-02|soft_drinks...2017-03-06|party"
    earlier = read_table(cli.lake, "group_features") if (cli.lake / "group_features").is_dir() else None

    run = materialize(cli, "group_features", "--partition-range", partition_range)
    assert run.tags["dagster/asset_partition_range_start"] == "2017-03-02|soft_drinks"
    assert run.tags["dagster/asset_partition_range_end"] == "2017-03-06|party"

    frame = read_table(cli.lake, "group_features")
    rectangle = {(d, g) for d in DATES for g in GROUPS}
    assert set(zip(frame["as_of"], frame["product_group"])) == rectangle
    check_group_partitions(frame, sorted(rectangle))
    assert not frame.duplicated(["as_of", "product_group", "household_id"]).any()
    # Overlapping groups: a soft drink counts in both soft_drinks and party.
    at = frame.set_index(["as_of", "product_group", "household_id"])
    assert at.loc[("2017-03-06", "soft_drinks", 2), "grp_spend_30d"] == 1.5
    assert at.loc[("2017-03-06", "party", 2), "grp_spend_30d"] == 4.0

    with instance_at(cli.home) as instance:
        materialized = instance.get_materialized_partitions(dg.AssetKey("group_features"))
    assert {f"{d}|{g}" for d, g in rectangle} <= set(materialized)

    if earlier is not None and len(earlier):
        # Partitions written by earlier runs come out the same when the range recomputes them.
        keys = ["as_of", "product_group", "household_id"]
        again = frame.merge(earlier[keys], on=keys)
        assert len(again) == len(earlier)
        pd.testing.assert_frame_equal(normalised(again), normalised(earlier))


def test_rerunning_a_range_is_idempotent(cli):
    partition_range = "2017-03-02|snacks...2017-03-06|snacks"
    if not all((cli.lake / "group_features" / f"as_of={d}" / "product_group=snacks").is_dir() for d in DATES):
        materialize(cli, "group_features", "--partition-range", partition_range)
    before_frame = read_table(cli.lake, "group_features")
    before_files = partition_files(cli.lake, "group_features")

    materialize(cli, "group_features", "--partition-range", partition_range)

    after_frame = read_table(cli.lake, "group_features")
    after_files = partition_files(cli.lake, "group_features")
    pd.testing.assert_frame_equal(normalised(after_frame), normalised(before_frame))
    assert not after_frame.duplicated(["as_of", "product_group", "household_id"]).any()
    assert after_files.keys() == before_files.keys()
    for part in before_files:
        if "product_group=snacks" in part:
            assert after_files[part] != before_files[part], f"{part} was not rewritten"
        else:
            assert after_files[part] == before_files[part], f"{part} was touched"
    assert not any((cli.lake / "_staging").glob("*")), "staging left behind"


def test_two_concurrent_runs_of_the_same_partitions_serialize_their_commits(cli):
    """Two real runs of the same group_features range at once, on one instance and lake:
    both succeed, their commits take turns under the table's lock (never interleaved),
    and the lake holds one complete copy of each partition, as one run would leave it."""
    partition_range = "2017-03-02|snacks...2017-03-06|snacks"
    materialize(cli, "group_features", "--partition-range", partition_range)
    alone = read_table(cli.lake, "group_features")
    before = run_ids(cli.home)

    cli.run_all([("dg", "launch", *MODULE, "--assets", "group_features",
                  "--partition-range", partition_range)] * 2)

    with instance_at(cli.home) as instance:
        new = [run for run in instance.get_runs() if run.run_id not in before]
    assert [run.status for run in new] == [dg.DagsterRunStatus.SUCCESS] * 2
    after = read_table(cli.lake, "group_features")
    pd.testing.assert_frame_equal(normalised(after), normalised(alone))
    assert not after.duplicated(["as_of", "product_group", "household_id"]).any()
    for part, files in partition_files(cli.lake, "group_features").items():
        assert len(files) == 1, f"{part} holds {files}: two writers' files mixed"
    assert not any((cli.lake / "_staging").glob("*")), "staging left behind"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["2017-11-30", "2017-11-01"], "error: END 2017-11-01 is before START 2017-11-30: give the range as START END"),
        (["2017-13-45"], "error: START '2017-13-45' is not a date: expected YYYY-MM-DD"),
        (["2016-12-31"], "error: START 2016-12-31 is not an as_of partition: the as_of partitions run from 2017-01-01 to 2018-01-01"),
        (["2017-03-02", "--group", "nope"], "error: product group 'nope' is not a partition; known: soft_drinks, snacks, party"),
        ([], "error: give START (YYYY-MM-DD) or --groups-only"),
    ],
)
def test_partition_range_refuses_bad_dates_and_groups(cli, args, message):
    done = cli.run("propensity-assets", "partition-range", *args, check=False)
    assert (done.returncode, done.stdout, done.stderr.strip()) == (2, "", message)


def test_partition_range_over_groups_only(cli):
    assert cli.run("propensity-assets", "partition-range", "--groups-only").stdout.strip() == "soft_drinks...party"
