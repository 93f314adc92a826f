"""The incentives room's commands: `sync-studies`, `incentives STUDY`, `retail`."""

import argparse

from propensity_assets.shared import settings
from propensity_assets.shared.cli import open_instance


def cmd_sync_studies(args: argparse.Namespace) -> int:
    from propensity_assets.incentives.sensors import studies_sync, sync_studies

    path = args.file or str(settings.incentive_studies_file())
    return studies_sync.run_cli(open_instance, lambda instance: sync_studies(instance, path, prune=args.prune))


def cmd_incentives(args: argparse.Namespace) -> int:
    from propensity_assets.incentives.report import print_report

    return print_report(settings.lake_uri(), args.study)


def cmd_retail(args: argparse.Namespace) -> int:
    from propensity_assets.incentives.report import print_retail
    from propensity_assets.shared.partitions import product_group_partitions

    with open_instance() as instance:
        groups = instance.get_dynamic_partitions(product_group_partitions.name)
    return print_retail(settings.lake_uri(), groups)


def register(sub) -> None:
    studies = sub.add_parser("sync-studies", help="sync incentive_study partitions with the study catalogue")
    studies.add_argument("--file", default=None, help="default: data/incentive_studies.yaml")
    studies.add_argument("--prune", action="store_true", help="remove partitions of studies no longer in the catalogue")
    studies.set_defaults(func=cmd_sync_studies)
    inc = sub.add_parser("incentives", help="print an incentive study's ATE table and policy comparison")
    inc.add_argument("study", nargs="?", default="software_company")
    inc.set_defaults(func=cmd_incentives)
    ret = sub.add_parser("retail", help="print the retail campaign studies' verdict table")
    ret.set_defaults(func=cmd_retail)
