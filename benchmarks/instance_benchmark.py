"""Benchmark the year backfill on a SQLite instance and on a Postgres instance.

Usage (from the repository root, in the project's virtualenv):

    .venv/bin/python benchmarks/instance_benchmark.py                  # 3 repetitions, medians
    .venv/bin/python benchmarks/instance_benchmark.py --repeat 1       # one quick pass
    .venv/bin/python benchmarks/instance_benchmark.py --assets household_features --repeat 5
    .venv/bin/python benchmarks/instance_benchmark.py --workdir /tmp/bench   # keep and reuse the ingest

The year backfill is what `make demo` runs: `household_features` for the as_of dates
2017-01-01 … 2017-12-01, then `group_features` for the same dates × every product group,
each as one single-run backfill (`dagster asset materialize --partition-range`, a fresh
process and Spark JVM), with DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=true as the
Makefile sets it. The same runs go to two instances, each new for every repetition:

    sqlite     the project's dagster.yaml (SQLite files under DAGSTER_HOME)
    postgres   the project's dagster.yaml with the Postgres `storage:` block of docs/operations.md, on a
               new database of a real PostgreSQL server this script starts (the system's
               binaries, default durability: fsync on), as the tests do

The instances alternate which goes first in each repetition. Reported per instance and
asset (medians): the wall seconds of the `dagster` command; the partition materializations
the run recorded (read back from the instance); the seconds between the first and the last
of them (after Spark has written the lake, the run records one event per partition, so
this span is the instance's bookkeeping); and that span per materialization in ms.

The raw tables are ingested once into a temporary lake, as features_benchmark.py does
(whose helpers this reuses); nothing under data/ is written.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import features_benchmark as fb

sys.path.insert(0, str(fb.REPO))
from propensity_assets_tests.cli_helpers import instance_at  # noqa: E402
from propensity_assets_tests.postgres_server import postgres_server, write_home  # noqa: E402

YEAR = ("2017-01-01", "2017-12-01")  # the demo's feature history
ASSETS = ("household_features", "group_features")
INSTANCES = ("sqlite", "postgres")


@dataclass
class Result:
    instance: str
    asset: str
    seconds: float
    materializations: int
    recording_seconds: float

    @property
    def ms_per_materialization(self) -> float:
        return 1000 * self.recording_seconds / max(self.materializations - 1, 1)


def sqlite_home(work: Path, name: str) -> dict[str, str]:
    home = work / "homes" / name
    home.mkdir(parents=True)
    (home / "dagster.yaml").symlink_to(fb.REPO / "dagster.yaml")
    return {"DAGSTER_HOME": str(home)}


def opened(instance_env: dict[str, str]):
    """The instance of that DAGSTER_HOME, with the variables its dagster.yaml reads."""
    extra = {name: value for name, value in instance_env.items() if name != "DAGSTER_HOME"}
    return instance_at(Path(instance_env["DAGSTER_HOME"]), **extra)


def recorded(instance_env: dict[str, str]) -> dict[str, tuple[str, int, float]]:
    """Per asset of the instance's runs: (status, materializations, seconds from first to last)."""
    import dagster as dg

    facts = {}
    with opened(instance_env) as instance:
        for run in instance.get_runs():
            [asset] = run.asset_selection
            records = instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
            ).records
            times = [r.event_log_entry.timestamp for r in records]
            span = max(times) - min(times) if times else 0.0
            facts[asset.to_user_string()] = (run.status.value, len(records), span)
    return facts


def backfill(work: Path, env: dict[str, str], kind: str, instance_env: dict[str, str], assets, rep: int):
    env = {**env, **instance_env}
    fb.run_checked([str(fb.BIN / "propensity-assets"), "sync-groups"], env, f"sync-groups ({kind})")
    with opened(instance_env) as instance:
        keys = instance.get_dynamic_partitions("product_group")
    start, end = YEAR
    ranges = {"household_features": f"{start}...{end}", "group_features": f"{start}|{keys[0]}...{end}|{keys[-1]}"}
    seconds = {}
    for asset in assets:
        measured = fb.materialize(work, env, asset, ranges[asset], f"{kind}_{asset}_{rep}")
        seconds[asset] = measured.seconds
    facts = recorded(instance_env)
    results = []
    for asset in assets:
        status, count, span = facts[asset]
        if status != "SUCCESS":
            sys.exit(f"{asset} on the {kind} instance ended {status}")
        results.append(Result(kind, asset, seconds[asset], count, span))
    return results


def print_table(results: list[Result], repeat: int) -> None:
    title = f"median of {repeat} repetition(s)" if repeat > 1 else "1 repetition"
    print(f"\nYear backfill {YEAR[0]} … {YEAR[1]} on the embedded data — {title}")
    header = (
        f"{'instance':<9} {'asset':<19} {'materializations':>16} {'wall s':>8} "
        f"{'recording s':>12} {'ms/materialization':>19}"
    )
    print(header)
    print("-" * len(header))
    keys = sorted({(r.instance, r.asset) for r in results}, key=lambda k: (INSTANCES.index(k[0]), ASSETS.index(k[1])))
    for kind, asset in keys:
        runs = [r for r in results if (r.instance, r.asset) == (kind, asset)]
        print(
            f"{kind:<9} {asset:<19} {int(statistics.median(r.materializations for r in runs)):>16,} "
            f"{statistics.median(r.seconds for r in runs):>8.1f} "
            f"{statistics.median(r.recording_seconds for r in runs):>12.1f} "
            f"{statistics.median(r.ms_per_materialization for r in runs):>19.1f}"
        )
        if len(runs) > 1:
            print(f"{'':<4}runs: " + ", ".join(f"{r.seconds:.1f} s / {r.ms_per_materialization:.1f} ms" for r in runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per instance (median reported)")
    parser.add_argument("--assets", choices=ASSETS, action="append", help="only this asset (default: both)")
    parser.add_argument("--workdir", type=Path, help="work directory, kept (default: a new temp dir, deleted)")
    args = parser.parse_args(argv)
    assets = [a for a in ASSETS if a in (args.assets or ASSETS)]

    work = (args.workdir or Path(tempfile.mkdtemp(prefix="instance_benchmark_"))).resolve()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work / "homes", ignore_errors=True)
    env = fb.base_env(work)
    env.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
    print(f"work dir: {work}; SPARK_MASTER={env.get('SPARK_MASTER', 'local[*]')}, cpus={os.cpu_count()}")
    results: list[Result] = []
    try:
        fb.ingest(work, env)
        with postgres_server(durable=True) as server:
            print(f"postgres: {server.host}:{server.port} ({server.directory})")
            for rep in range(1, args.repeat + 1):
                order = INSTANCES if rep % 2 else INSTANCES[::-1]
                for kind in order:
                    if kind == "sqlite":
                        instance_env = sqlite_home(work, f"sqlite_{rep}")
                    else:
                        instance_env = write_home(server, work / "homes" / f"postgres_{rep}", f"bench_{rep}")
                    for result in backfill(work, env, kind, instance_env, assets, rep):
                        results.append(result)
                        print(
                            f"[{rep}/{args.repeat}] {kind} {result.asset}: {result.seconds:.1f} s, "
                            f"{result.materializations:,} materializations recorded in "
                            f"{result.recording_seconds:.1f} s ({result.ms_per_materialization:.1f} ms each); "
                            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus",
                            flush=True,
                        )
        print_table(results, args.repeat)
    finally:
        if args.workdir:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
