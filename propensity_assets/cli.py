"""`propensity-assets`: project commands that Dagster's own CLI lacks.

- `sync-groups`: add/remove `product_group` partitions to match the catalogue on the
  persistent instance (the `dagster` CLI cannot add dynamic partitions).
- `partition-range START [END] [--group G]`: print the `--partition-range` argument
  that covers those dates for one group or for all groups, in the instance's order.
- `summary --as-of D`: what the lake holds for one as_of.
"""

import argparse
import os
import sys
from pathlib import Path

from propensity_assets import settings


def ensure_dagster_home() -> Path:
    """Point DAGSTER_HOME at data/dagster_home unless set, with the project's dagster.yaml in it."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(settings.data_dir() / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() and not config.is_symlink():
        config.symlink_to(settings.PROJECT_ROOT / "dagster.yaml")
    return home


def _instance():
    import dagster as dg

    ensure_dagster_home()
    return dg.DagsterInstance.get()


def cmd_sync_groups(args: argparse.Namespace) -> int:
    from propensity_assets.groups.assets import sync_product_groups
    from propensity_assets.groups.catalog import CatalogError

    try:
        with _instance() as instance:
            added, removed = sync_product_groups(instance, args.file)
            current = instance.get_dynamic_partitions("product_group")
    except CatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"product groups: {len(current)} ({', '.join(current)})")
    print(f"added: {', '.join(added) or 'none'}; removed: {', '.join(removed) or 'none'}")
    return 0


def cmd_partition_range(args: argparse.Namespace) -> int:
    with _instance() as instance:
        groups = instance.get_dynamic_partitions("product_group")
    if not groups:
        print("error: no product_group partitions; run `propensity-assets sync-groups` first", file=sys.stderr)
        return 2
    if args.group and args.group not in groups:
        print(f"error: product group {args.group!r} is not a partition; known: {', '.join(groups)}", file=sys.stderr)
        return 2
    first, last = (args.group, args.group) if args.group else (groups[0], groups[-1])
    print(f"{args.start}|{first}...{args.end or args.start}|{last}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    """What the lake holds for one as_of: the numbers a user checks after `make demo`."""
    import pyarrow.dataset as ds

    from propensity_assets.lake import Lake

    lake = Lake(settings.lake_uri())
    filt = ds.field("as_of") == args.as_of
    try:
        hh = lake.read_pandas("household_features", filters=filt, columns=["household_id"])
        grp = lake.read_pandas("group_features", filters=filt, columns=["product_group", "household_id"])
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"lake: {lake.root}")
    print(f"household_features as_of {args.as_of}: {len(hh):,} households")
    print(f"group_features as_of {args.as_of}:")
    for group, rows in grp.groupby("product_group").size().items():
        print(f"  {group:<22} {rows:>7,} rows")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="propensity-assets", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sync = sub.add_parser("sync-groups", help="sync product_group partitions with the catalogue")
    sync.add_argument("--file", default=str(settings.product_groups_file()))
    sync.set_defaults(func=cmd_sync_groups)
    rng = sub.add_parser("partition-range", help="print a --partition-range for dates × group(s)")
    rng.add_argument("start", help="first as_of, YYYY-MM-DD")
    rng.add_argument("end", nargs="?", help="last as_of (inclusive); default: start")
    rng.add_argument("--group", help="one product group; default: all groups")
    rng.set_defaults(func=cmd_partition_range)
    summary = sub.add_parser("summary", help="print what the lake holds for one as_of")
    summary.add_argument("--as-of", required=True)
    summary.set_defaults(func=cmd_summary)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
