"""The LTV room's command: `compile-btyd`."""

import argparse
import sys

from propensity_assets.shared import settings, tables


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


def register(sub) -> None:
    compile_btyd = sub.add_parser(
        "compile-btyd", help="compile the BTYD baseline's C code into pytensor's cache (once per machine, ~50 s)")
    compile_btyd.add_argument("--as-of", required=True, help="a date whose household_features the lake holds")
    compile_btyd.set_defaults(func=cmd_compile_btyd)
