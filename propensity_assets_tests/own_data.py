"""A user's own data from another decade: transactions only, dated 1997-01-01 .. 1998-06-30,
shaped like the CDNOW panel the issue's user brought (customers who first buy in the first
quarter of 1997, then buy again at their own rate until they lapse).

    python -m propensity_assets_tests.own_data --out DIR [--households N] [--seed S]

writes DIR/transactions.csv, nothing else, for `PROPENSITY_SOURCE_DIR=DIR make demo`.
"""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

FIRST_DAY = date(1997, 1, 1)
LAST_DAY = date(1998, 6, 30)
COLUMNS = ["household_id", "basket_id", "product_id", "quantity", "sales_value", "transaction_timestamp"]


def generate(households: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per item bought; every household's first purchase is in Q1 1997, at least one
    of them on FIRST_DAY and on LAST_DAY, so the span is exactly FIRST_DAY .. LAST_DAY."""
    rng = np.random.default_rng(seed)
    span = (LAST_DAY - FIRST_DAY).days
    rows, basket = [], 1
    for h in range(1, households + 1):
        mean_gap = rng.uniform(4, 60)  # days between purchases
        lapse = rng.uniform(0.0003, 0.004)  # daily chance of never coming back
        spend = rng.gamma(3.0, 8.0)  # the household's typical item price
        day = 0 if h == 1 else int(rng.integers(0, 90))
        while day <= span:
            stamp = f"{FIRST_DAY + timedelta(days=day)} {int(rng.integers(8, 22)):02d}:{int(rng.integers(0, 60)):02d}:00"
            for _ in range(int(rng.integers(1, 4))):
                rows.append((h, basket, int(rng.integers(1, 500)), float(rng.integers(1, 3)),
                             round(float(rng.gamma(2.0, spend / 2)), 2), stamp))
            basket += 1
            gap = max(1, int(rng.exponential(mean_gap)))
            if rng.random() < 1 - (1 - lapse) ** gap:
                break
            day += gap
    rows.append((households, basket, 1, 1.0, 9.99, f"{LAST_DAY} 12:00:00"))
    return pd.DataFrame(rows, columns=COLUMNS)


def write(out: Path, households: int = 2000, seed: int = 0) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    generate(households, seed).to_csv(out / "transactions.csv", index=False)
    return out / "transactions.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--households", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    path = write(args.out, args.households, args.seed)
    frame = pd.read_csv(path)
    print(f"wrote {path}: {len(frame):,} rows, {frame['household_id'].nunique():,} households, "
          f"{frame['transaction_timestamp'].min()} .. {frame['transaction_timestamp'].max()}")


if __name__ == "__main__":
    main()
