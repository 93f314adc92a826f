"""`propensity-assets`: project commands that Dagster's own CLI lacks.

- `sync-groups`: add/remove `product_group` partitions to match the catalogue on the
  persistent instance (the `dagster` CLI cannot add dynamic partitions).
- `partition-range START [END] [--group G]`: print the `--partition-range` argument
  that covers those dates for one group or for all groups, in the instance's order.
- `summary --as-of D`: what the lake holds for one as_of.
- `sync-studies`: the same for the `incentive_study` partitions and data/incentive_studies.yaml.
- `incentives STUDY`: the study's ATE table, refutations and policy comparison from the lake.
- `promote GROUP VERSION`: move `champion` of `propensity__GROUP` to VERSION.
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


def cmd_sync_studies(args: argparse.Namespace) -> int:
    from propensity_assets.incentives.catalog import StudyCatalogError
    from propensity_assets.incentives.sensors import sync_studies

    try:
        with _instance() as instance:
            if args.file is None:
                from propensity_assets.incentives.resources import incentive_studies_file

                args.file = incentive_studies_file()
            added, removed = sync_studies(instance, args.file)
            current = instance.get_dynamic_partitions("incentive_study")
    except StudyCatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"incentive studies: {len(current)} ({', '.join(current)})")
    print(f"added: {', '.join(added) or 'none'}; removed: {', '.join(removed) or 'none'}")
    return 0


def cmd_incentives(args: argparse.Namespace) -> int:
    from propensity_assets.incentives.report import print_report

    return print_report(settings.lake_uri(), args.study)


def cmd_partition_range(args: argparse.Namespace) -> int:
    from propensity_assets.partitions import group_range_tags

    with _instance() as instance:
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
    if lake.exists("propensity_scores", {"as_of": args.as_of}) and lake.exists("propensity_labels", {"as_of": args.as_of}):
        from propensity_assets.propensity.evaluation import holdout_report

        report = holdout_report(lake, args.as_of)
        cols = ["group", "model_version", "roc_auc", "average_precision", "recency_auc", "baskets90_ap", "beats_baselines"]
        print(f"propensity on the holdout as_of {args.as_of} (labels {args.as_of} + 30 days):")
        print(report[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print(f"mean ROC AUC {report['roc_auc'].mean():.4f}, mean average precision {report['average_precision'].mean():.4f}")
    if lake.exists("customer_profile", {"as_of": args.as_of}):
        profile = lake.read_pandas("customer_profile", filters=filt)
        print(f"customer_profile as_of {args.as_of}: {len(profile):,} households x "
              f"{sum(c.startswith('propensity__') for c in profile.columns)} groups")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    """Move `champion` of propensity__<group> to a version (manual promotion)."""
    from mlflow.exceptions import MlflowException

    from propensity_assets import registry
    from propensity_assets.resources import MlflowResource

    client = MlflowResource().client()
    name = registry.model_name(args.stage, args.group)
    try:
        mv = registry.promote(client, name, args.version, args.reason, by="manual")
    except MlflowException as exc:
        print(f"error: cannot promote {name} version {args.version}: {exc.message}", file=sys.stderr)
        return 2
    print(f"{name}: champion -> version {mv.version}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="propensity-assets", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sync = sub.add_parser("sync-groups", help="sync product_group partitions with the catalogue")
    sync.add_argument("--file", default=str(settings.product_groups_file()))
    sync.set_defaults(func=cmd_sync_groups)
    studies = sub.add_parser("sync-studies", help="sync incentive_study partitions with the study catalogue")
    studies.add_argument("--file", default=None, help="default: data/incentive_studies.yaml")
    studies.set_defaults(func=cmd_sync_studies)
    inc = sub.add_parser("incentives", help="print an incentive study's ATE table and policy comparison")
    inc.add_argument("study", nargs="?", default="software_company")
    inc.set_defaults(func=cmd_incentives)
    rng = sub.add_parser("partition-range", help="print a --partition-range for dates × group(s)")
    rng.add_argument("start", help="first as_of, YYYY-MM-DD")
    rng.add_argument("end", nargs="?", help="last as_of (inclusive); default: start")
    rng.add_argument("--group", help="one product group; default: all groups")
    rng.set_defaults(func=cmd_partition_range)
    summary = sub.add_parser("summary", help="print what the lake holds for one as_of")
    summary.add_argument("--as-of", required=True)
    summary.set_defaults(func=cmd_summary)
    promote = sub.add_parser("promote", help="move the champion alias of a group's model to a version")
    promote.add_argument("group")
    promote.add_argument("version")
    promote.add_argument("--stage", default="propensity", choices=["propensity", "ltv", "incentive"])
    promote.add_argument("--reason", default="manual promotion")
    promote.set_defaults(func=cmd_promote)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
