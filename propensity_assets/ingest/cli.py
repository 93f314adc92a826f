"""The ingest room's command: `scale-data`."""

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
