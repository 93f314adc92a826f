"""The product-groups room's command: `sync-groups`."""

import argparse

from propensity_assets.shared import settings, tables
from propensity_assets.shared.cli import open_instance


def cmd_sync_groups(args: argparse.Namespace) -> int:
    from propensity_assets.groups.assets import groups_sync, sync_product_groups
    from propensity_assets.shared.lake import Lake

    lake = Lake(settings.lake_uri())
    # Before the first ingest there is no products table: categories are checked then.
    products = lake.read_pandas(tables.PRODUCTS) if lake.exists(tables.PRODUCTS) else None
    return groups_sync.run_cli(open_instance, lambda instance: sync_product_groups(instance, args.file, products, prune=args.prune))


def register(sub) -> None:
    sync = sub.add_parser("sync-groups", help="sync product_group partitions with the catalogue")
    sync.add_argument("--file", default=str(settings.product_groups_file()))
    sync.add_argument("--prune", action="store_true", help="remove partitions of groups no longer in the catalogue")
    sync.set_defaults(func=cmd_sync_groups)
