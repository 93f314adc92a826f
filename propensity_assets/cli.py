"""`propensity-assets`: project commands that Dagster's own CLI lacks.

- `sync-groups`: add/remove `product_group` partitions to match the catalogue on the
  persistent instance (the `dagster` CLI cannot add dynamic partitions).
- `partition-range START [END] [--group G]`: print the `--partition-range` argument
  that covers those dates for one group or for all groups, in the instance's order;
  `partition-range --groups-only` prints the range over all groups (for assets
  partitioned by group alone).
- `summary --as-of D`: what the lake holds for one as_of.
- `sync-studies`: the same for the `incentive_study` partitions and data/incentive_studies.yaml.
- `incentives STUDY`: the study's ATE table, refutations and policy comparison from the lake.
- `retail`: the verdict table of the product groups' retail campaign studies.
- `compile-btyd --as-of D`: fit the BTYD baseline once on the lake's household features
  at D, so that pytensor compiles its C code (~50 s, once per machine) before a training
  needs it; `make demo` runs it beside the label backfill.
- `promote GROUP VERSION`: move `champion` of `propensity__GROUP` to VERSION.
- `scale-data --factor N --out DIR [--seed S]`: write a synthetic dataset of N times the
  embedded households in the canonical schema, for `PROPENSITY_SOURCE_DIR` (ingest/scale.py).
"""

import argparse
import os
import sys
from pathlib import Path

from propensity_assets.shared import settings
from propensity_assets.shared import tables


def ensure_dagster_home() -> Path:
    """Point DAGSTER_HOME at data/dagster_home unless set, with the project's dagster.yaml in it."""
    home = settings.dagster_home()
    os.environ["DAGSTER_HOME"] = str(home)  # for Dagster, in this process and the runs it launches
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
    from propensity_assets.groups.assets import groups_sync, sync_product_groups
    from propensity_assets.shared.lake import Lake

    lake = Lake(settings.lake_uri())
    # Before the first ingest there is no products table: categories are checked then.
    products = lake.read_pandas(tables.PRODUCTS) if lake.exists(tables.PRODUCTS) else None
    return groups_sync.run_cli(_instance, lambda instance: sync_product_groups(instance, args.file, products, prune=args.prune))


def cmd_sync_studies(args: argparse.Namespace) -> int:
    from propensity_assets.incentives.sensors import studies_sync, sync_studies

    path = args.file or str(settings.incentive_studies_file())
    return studies_sync.run_cli(_instance, lambda instance: sync_studies(instance, path, prune=args.prune))


def cmd_incentives(args: argparse.Namespace) -> int:
    from propensity_assets.incentives.report import print_report

    return print_report(settings.lake_uri(), args.study)


def cmd_retail(args: argparse.Namespace) -> int:
    from propensity_assets.incentives.report import print_retail
    from propensity_assets.shared.partitions import product_group_partitions

    with _instance() as instance:
        groups = instance.get_dynamic_partitions(product_group_partitions.name)
    return print_retail(settings.lake_uri(), groups)


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

    with _instance() as instance:
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


def cmd_summary(args: argparse.Namespace) -> int:
    """What the lake holds for one as_of: the numbers a user checks after `make demo`."""
    import pyarrow.dataset as ds

    from propensity_assets.shared.lake import Lake

    lake = Lake(settings.lake_uri())
    filt = ds.field("as_of") == args.as_of
    try:
        hh = lake.read_pandas(tables.HOUSEHOLD_FEATURES, filters=filt, columns=["household_id"])
        grp = lake.read_pandas(tables.GROUP_FEATURES, filters=filt, columns=["product_group", "household_id"])
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"lake: {lake.root}")
    print(f"household_features as_of {args.as_of}: {len(hh):,} households")
    print(f"group_features as_of {args.as_of}:")
    for group, rows in grp.groupby("product_group").size().items():
        print(f"  {group:<22} {rows:>7,} rows")
    for title, report in holdout_reports(lake, args.as_of):
        print(title)
        print(report.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if lake.exists(tables.CUSTOMER_PROFILE, {"as_of": args.as_of}):
        profile = lake.read_pandas(tables.CUSTOMER_PROFILE, filters=filt)
        columns = [c for c in profile.columns if "__" in c and "_decile__" not in c]
        print(f"customer_profile as_of {args.as_of}: {len(profile):,} households x {len(columns)} columns "
              f"({', '.join(sorted({c.split('__')[0] for c in columns}))})")
    return 0


def cmd_compile_btyd(args: argparse.Namespace) -> int:
    """pytensor compiles the BTYD baseline's C code on the first fit on a machine (~50 s) and
    caches it (pytensor's compiledir); every later fit of any group or snapshot reuses it.
    This fits once on the household features at as_of, the whole-basket group's RFM data,
    so that the compilation can run beside other work instead of inside a training."""
    import time

    import pytensor

    from propensity_assets.shared.lake import Lake
    from propensity_assets.ltv.btyd import BtydBaseline, whole_basket

    lake = Lake(settings.lake_uri())
    try:
        household = lake.read_partition(tables.HOUSEHOLD_FEATURES, {"as_of": args.as_of})
    except FileNotFoundError as exc:
        print(f"error: {exc}: materialize household_features for {args.as_of} first", file=sys.stderr)
        return 2
    start = time.perf_counter()
    baseline = BtydBaseline().fit(whole_basket(household))
    print(f"BTYD baseline fitted on household_features as_of {args.as_of} ({baseline.customers:,} households) in "
          f"{time.perf_counter() - start:.1f} s, compilation included; pytensor's cache: {pytensor.config.compiledir}")
    return 0


# What `summary` prints per stage: the metrics, and the headline figures below the table.
REPORTS = {
    "propensity": (["roc_auc", "average_precision", "brier", "lift_top_decile"], "(labels {as_of} + 30 days)"),
    "ltv": (["rmse", "normalized_gini", "mae", "spearman", "top_decile_capture", "calibration"], "(labels {as_of} + H days)"),
}


def holdout_reports(lake, as_of: str):
    """(title, table) per modelling stage with scores and labels at `as_of`."""
    from propensity_assets.lifecycle.evaluation import holdout_report
    from propensity_assets.ltv.stage import LTV
    from propensity_assets.propensity.stage import PROPENSITY

    for stage in (PROPENSITY, LTV):
        metrics, window = REPORTS[stage.name]
        report = holdout_report(stage, lake, as_of, metrics)
        if report.empty:
            continue
        means = ", ".join(f"mean {m} {report[m].mean():.4f}" for m in metrics[:2])
        yield (
            f"{stage.name} champions on the holdout as_of {as_of} {window.format(as_of=as_of)} vs the naive baselines; {means}",
            report,
        )


def cmd_promote(args: argparse.Namespace) -> int:
    """Move `champion` of propensity__<group> to a version (manual promotion)."""
    from mlflow.exceptions import MlflowException

    from propensity_assets.shared import registry
    from propensity_assets.shared.resources import MlflowResource

    client = MlflowResource().client()
    name = registry.model_name(args.stage, args.group)
    try:
        mv = registry.promote(client, name, args.version, args.reason, by="manual")
    except MlflowException as exc:
        print(f"error: cannot promote {name} version {args.version}: {exc.message}", file=sys.stderr)
        return 2
    print(f"{name}: champion -> version {mv.version}")
    return 0


def cmd_scale_data(args: argparse.Namespace) -> int:
    """Write the N× synthetic dataset (see propensity_assets/ingest/scale.py)."""
    import time

    from propensity_assets.ingest.scale import generate

    started = time.perf_counter()
    report = generate(args.factor, args.out, seed=args.seed, households=args.households)
    print(f"wrote {report.factor}x the data (seed {report.seed}) to {report.out} in {time.perf_counter() - started:.1f} s: "
          f"{report.households:,} households, days {report.first_day} .. {report.last_day}")
    for table, rows in report.rows.items():
        print(f"  {table:<22} {rows:>12,} rows")
    print(f"use it with: export PROPENSITY_SOURCE_DIR={Path(report.out).resolve()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="propensity-assets", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sync = sub.add_parser("sync-groups", help="sync product_group partitions with the catalogue")
    sync.add_argument("--file", default=str(settings.product_groups_file()))
    sync.add_argument("--prune", action="store_true", help="remove partitions of groups no longer in the catalogue")
    sync.set_defaults(func=cmd_sync_groups)
    studies = sub.add_parser("sync-studies", help="sync incentive_study partitions with the study catalogue")
    studies.add_argument("--file", default=None, help="default: data/incentive_studies.yaml")
    studies.add_argument("--prune", action="store_true", help="remove partitions of studies no longer in the catalogue")
    studies.set_defaults(func=cmd_sync_studies)
    inc = sub.add_parser("incentives", help="print an incentive study's ATE table and policy comparison")
    inc.add_argument("study", nargs="?", default="software_company")
    inc.set_defaults(func=cmd_incentives)
    ret = sub.add_parser("retail", help="print the retail campaign studies' verdict table")
    ret.set_defaults(func=cmd_retail)
    rng = sub.add_parser("partition-range", help="print a --partition-range for dates × group(s)")
    rng.add_argument("start", nargs="?", help="first as_of, YYYY-MM-DD")
    rng.add_argument("end", nargs="?", help="last as_of (inclusive); default: start")
    rng.add_argument("--group", help="one product group; default: all groups")
    rng.add_argument("--groups-only", action="store_true",
                     help="print FIRST...LAST over the product groups alone (for assets partitioned by group)")
    rng.set_defaults(func=cmd_partition_range)
    summary = sub.add_parser("summary", help="print what the lake holds for one as_of")
    summary.add_argument("--as-of", required=True)
    summary.set_defaults(func=cmd_summary)
    compile_btyd = sub.add_parser(
        "compile-btyd", help="compile the BTYD baseline's C code into pytensor's cache (once per machine, ~50 s)")
    compile_btyd.add_argument("--as-of", required=True, help="a date whose household_features the lake holds")
    compile_btyd.set_defaults(func=cmd_compile_btyd)
    promote = sub.add_parser("promote", help="move the champion alias of a group's model to a version")
    promote.add_argument("group")
    promote.add_argument("version")
    promote.add_argument("--stage", default="propensity", choices=["propensity", "ltv", "incentive"])
    promote.add_argument("--reason", default="manual promotion")
    promote.set_defaults(func=cmd_promote)
    scale = sub.add_parser(
        "scale-data",
        help="write a synthetic dataset of N x the embedded households (canonical schema) for PROPENSITY_SOURCE_DIR",
        description="Copy 0 is the embedded data unchanged; copies 1..N-1 hold every household once more, with new "
        "household and basket ids and each household's dates shifted by its own offset, wrapped into the data's range.",
    )
    scale.add_argument("--factor", type=int, required=True, help="N >= 1; 1 writes the embedded data unchanged")
    scale.add_argument("--out", required=True, help="a new or empty directory")
    scale.add_argument("--seed", type=int, default=0, help="the same seed writes the same files (default 0)")
    scale.add_argument("--households", type=int, default=None,
                       help="scale only the first H households (by id) of the data: a small dataset for tests")
    scale.set_defaults(func=cmd_scale_data)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # Every error a user can act on names what is wrong; the traceback is for bugs.
        if settings.debug():
            raise
        known = _known_errors()
        prefix = "" if isinstance(exc, known) else f"{type(exc).__name__}: "
        print(f"error: {prefix}{exc}", file=sys.stderr)
        if not isinstance(exc, known):
            print("(set PROPENSITY_DEBUG=1 to see the traceback)", file=sys.stderr)
        return 2 if isinstance(exc, known) else 1


def _known_errors() -> tuple[type[Exception], ...]:
    """The project's own errors: their message is the whole story."""
    from propensity_assets.groups.catalog import CatalogError
    from propensity_assets.incentives.catalog import StudyCatalogError
    from propensity_assets.ingest.scale import ScaleError
    from propensity_assets.ingest.sources import SourceError
    from propensity_assets.shared.registry import RegistryUnreachable

    return (settings.SettingsError, CatalogError, StudyCatalogError, SourceError, ScaleError, RegistryUnreachable)


if __name__ == "__main__":
    sys.exit(main())
