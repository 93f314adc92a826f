"""What every room's commands share: the persistent Dagster instance they act on, and how
a command registers with `propensity-assets` (each room's `cli.py` has a `register`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from propensity_assets.shared import settings


def ensure_dagster_home() -> Path:
    """Point DAGSTER_HOME at data/dagster_home unless set, with the project's dagster.yaml in it."""
    home = settings.dagster_home()
    os.environ["DAGSTER_HOME"] = str(home)  # for Dagster, in this process and the runs it launches
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() and not config.is_symlink():
        config.symlink_to(settings.PROJECT_ROOT / "dagster.yaml")
    return home


def open_instance():
    """The persistent instance (DAGSTER_HOME), as a context manager."""
    import dagster as dg

    ensure_dagster_home()
    return dg.DagsterInstance.get()


def _check_dates(start: str, end: str | None) -> str | None:
    """An error message for dates that are not as_of partitions in order, else None."""
    from datetime import date

    from propensity_assets.shared.partitions import as_of_partitions

    for name, value in (("START", start), ("END", end)):
        if value is None:
            continue
        try:
            date.fromisoformat(value)
        except ValueError:
            return f"{name} {value!r} is not a date: expected YYYY-MM-DD"
    keys = as_of_partitions.get_partition_keys()
    for name, value in (("START", start), ("END", end)):
        if value is not None and value not in keys:
            return f"{name} {value} is not an as_of partition: the as_of partitions run from {keys[0]} to {keys[-1]}"
    if end is not None and end < start:
        return f"END {end} is before START {start}: give the range as START END"
    return None


def cmd_partition_range(args: argparse.Namespace) -> int:
    from propensity_assets.shared.partitions import group_range_tags, product_group_partitions

    with open_instance() as instance:
        if args.groups_only:
            groups = instance.get_dynamic_partitions(product_group_partitions.name)
            if not groups:
                print("error: no product_group partitions: run `propensity-assets sync-groups` first", file=sys.stderr)
                return 2
            print(f"{groups[0]}...{groups[-1]}")
            return 0
        if args.start is None:
            print("error: give START (YYYY-MM-DD) or --groups-only", file=sys.stderr)
            return 2
        problem = _check_dates(args.start, args.end)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        try:
            tags = group_range_tags(instance, args.start, args.end, args.group)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print("...".join(tags.values()))
    return 0


def cmd_launch(args: argparse.Namespace) -> int:
    from dagster import DagsterRunStatus

    from propensity_assets.shared.launch import LaunchError, launch, parse_config

    with open_instance() as instance:
        try:
            run = launch(instance, args.job, assets=[a for a in (args.assets or "").split(",") if a],
                         partition=args.partition, partition_range=args.partition_range,
                         run_config=parse_config(args.config_json))
        except LaunchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(f"run {run.run_id} of {run.job_name}: {run.status.value}", file=sys.stderr)
    return 0 if run.status == DagsterRunStatus.SUCCESS else 1


def register(sub) -> None:
    launch = sub.add_parser("launch", help="run a named job (a partition or a single-run range), listed on the UI's Jobs pages")
    launch.add_argument("--job", required=True, help="the job, e.g. ltv_training_job")
    launch.add_argument("--assets", help="comma-separated assets of the job to run (default: all of them)")
    launch.add_argument("--partition", help="one partition key")
    launch.add_argument("--partition-range", help="FIRST...LAST, run as one run (see `partition-range`)")
    launch.add_argument("--config-json", help="the run config, as JSON")
    launch.set_defaults(func=cmd_launch)
    rng = sub.add_parser("partition-range", help="print a --partition-range for dates × group(s)")
    rng.add_argument("start", nargs="?", help="first as_of, YYYY-MM-DD")
    rng.add_argument("end", nargs="?", help="last as_of (inclusive); default: start")
    rng.add_argument("--group", help="one product group; default: all groups")
    rng.add_argument("--groups-only", action="store_true",
                     help="print FIRST...LAST over the product groups alone (for assets partitioned by group)")
    rng.set_defaults(func=cmd_partition_range)
