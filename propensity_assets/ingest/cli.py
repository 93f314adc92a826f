"""The ingest room's commands: `scale-data`, `demo-dates`."""

import argparse
from pathlib import Path


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


def cmd_demo_dates(args: argparse.Namespace) -> int:
    """Print the demo's dates, derived from the lake's ingested transactions, as Make variable
    assignments (`make demo` passes them to its steps when PROPENSITY_SOURCE_DIR is set)."""
    import sys

    import pyarrow.compute as pc

    from propensity_assets.ingest.demo_dates import DemoDatesError, demo_dates
    from propensity_assets.shared import settings, tables
    from propensity_assets.shared.lake import Lake

    lake = Lake(settings.lake_uri())
    if not lake.exists(tables.TRANSACTIONS):
        raise DemoDatesError(f"{lake.uri(tables.TRANSACTIONS)}: no ingested transactions; run the ingest_job first")
    stamps = lake.read_arrow(tables.TRANSACTIONS, columns=["transaction_timestamp"])["transaction_timestamp"]
    span = pc.min_max(stamps).as_py()
    if span["min"] is None:
        raise DemoDatesError(f"{lake.uri(tables.TRANSACTIONS)}: the ingested transactions table has no rows")
    first, last = span["min"].date(), span["max"].date()
    dates = demo_dates(first, last, settings.ltv_horizon_days())
    print(" ".join(f"{name}={value}" for name, value in dates.items()))
    print(f"demo dates from the transactions of {first} .. {last}: " + ", ".join(f"{k} {v}" for k, v in dates.items()),
          file=sys.stderr)
    return 0


def register(sub) -> None:
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
    dates = sub.add_parser(
        "demo-dates",
        help="print the demo's dates (holdouts, cutoffs, history) derived from the ingested transactions",
        description="Reads the lake's transactions (PROPENSITY_LAKE_URI) and prints Make variable assignments: "
        "HISTORY_FROM, AS_OF, LTV_HOLDOUT, LTV_CUTOFF, DECAY_CUTOFF, PROPENSITY_TODAY and the partitions' "
        "PROPENSITY_AS_OF_START, PROPENSITY_AS_OF_END, PROPENSITY_TRAINING_START; on the embedded data they are "
        "the Makefile's own dates. `make demo` uses them when PROPENSITY_SOURCE_DIR is set.",
    )
    dates.set_defaults(func=cmd_demo_dates)
