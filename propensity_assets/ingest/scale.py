"""A synthetic dataset N times the embedded one, in the canonical schema (CONTRACTS §1),
for scaling benchmarks: `propensity-assets scale-data --factor N --out DIR`.

What the N× dataset is:

- **Copy 0 is the embedded data, unchanged** (same rows, ids and dates). So `--factor 1`
  writes exactly the embedded data, and a benchmark's 10×/1× ratio compares the same
  code path (a source directory) on the real data and on ten times as much.
- **Copies 1 … N−1 are stratified resamples**: each holds every embedded household once,
  with a new id (`k × stride + id`, stride the power of ten above the largest id, so
  household 1234 of copy 3 is 31234 when ids stay below 10,000). The mix of heavy and
  light shoppers, demographics and campaign targeting is then exactly the original's, and
  N× has exactly N× the households and N× the transactions: cost can be compared with 1×
  without sampling noise.
- **Each synthetic household is shifted in time by one offset** (whole days, time of day
  kept), drawn per household and copy; the N−1 copies of one household get distinct
  offsets, so no two copies of a household have a basket on the same day: none is a copy
  of another. The offset applies to all of the household's dates: its transactions and
  its coupon redemptions.
- **Shifted dates wrap around** the embedded transactions' day range [first, last]:
  day' = first + (day − first + offset) mod span. Wrapping rather than clipping keeps every
  transaction (clipping drops, on average, a third of a shifted household's year, so N×
  would hold fewer than N× the transactions and understate the cost), and no date leaves
  the range (features refuse as_of dates the data does not reach, and labels need the
  range's end). What it costs: a household's year is rotated, so a synthetic household's
  last weeks continue at the range's start, the weekday pattern of a household moves with
  its offset, and the data's seasonality (December) is spread across the year in the
  copies. Campaign windows (`campaign_descriptions`) are not shifted, so a synthetic
  household's redemptions fall at its own shifted dates, not inside its campaign's window:
  incentive effects measured on the copies are diluted.
- **Basket ids are new and unique**: copy k's baskets are numbered after the largest
  embedded basket id, `max + (k − 1) × baskets + rank + 1`.
- `products`, `coupons` and `campaign_descriptions` are written as they are. Columns outside
  the contract are dropped (the embedded transactions' `week`, which a shift would make
  wrong); the households' demographics are kept; timestamps are written in microseconds.

Output: `<out>/<table>.parquet` for the seven tables, the files `PROPENSITY_SOURCE_DIR`
reads. `transactions` is written one copy (one row group) at a time with pyarrow, so
memory stays at about two copies of the embedded transactions whatever N is. The same
seed gives the same files; copy k does not depend on N (10× is the first ten copies of 30×).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from propensity_assets.ingest.sources import SCHEMA, read_source
from propensity_assets.shared.tables import (
    CAMPAIGN_DESCRIPTIONS,
    CAMPAIGNS,
    COUPON_REDEMPTIONS,
    COUPONS,
    HOUSEHOLDS,
    PRODUCTS,
    TRANSACTIONS,
)

DAY_US = 86_400_000_000
# Tables with a household_id, and their household date columns (shifted with the household).
HOUSEHOLD_TABLES = {
    TRANSACTIONS: ["transaction_timestamp"],
    HOUSEHOLDS: [],
    CAMPAIGNS: [],
    COUPON_REDEMPTIONS: ["redemption_date"],
}
AS_IS = (PRODUCTS, COUPONS, CAMPAIGN_DESCRIPTIONS)
TABLES = tuple(SCHEMA)


class ScaleError(ValueError):
    """Bad arguments to the generator: the message says which and what is expected."""


@dataclass(frozen=True)
class Shifts:
    """The households of the embedded data and the day offset of each synthetic copy."""

    households: np.ndarray  # sorted original household ids
    stride: int  # copy k's household id is k * stride + original id
    first_day_us: int  # the first day of the transactions' range (microseconds since epoch)
    span_days: int  # days from the first to the last day of the range, both included
    offsets: np.ndarray = field(repr=False)  # (households, N - 1) days in 1 .. span - 1

    def household_index(self, ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.households, ids)

    def new_ids(self, ids: np.ndarray, copy: int) -> np.ndarray:
        return ids.astype(np.int64) + copy * self.stride

    def shift(self, timestamps: pa.Array, index: np.ndarray, copy: int) -> pa.Array:
        """`timestamps` (microseconds) of the households at `index` moved by copy `copy`'s
        offsets and wrapped into the range; time of day kept, nulls kept."""
        rel = _micros(timestamps) - self.first_day_us
        day, time_of_day = np.floor_divide(rel, DAY_US), np.mod(rel, DAY_US)
        moved = self.first_day_us + np.mod(day + self.offsets[index, copy - 1], self.span_days) * DAY_US + time_of_day
        return pa.array(moved, type=pa.timestamp("us"), mask=np.asarray(timestamps.is_null()))


def _micros(timestamps: pa.Array) -> np.ndarray:
    """Microseconds since the epoch as int64 (nulls as 0: callers keep the mask)."""
    return timestamps.cast(pa.timestamp("us")).cast(pa.int64()).fill_null(0).to_numpy()


def plan_shifts(tables: dict[str, pa.Table], factor: int, seed: int) -> Shifts:
    """Every household id the tables know, and N − 1 distinct offsets per household."""
    ids = np.unique(np.concatenate([
        tables[t].column("household_id").drop_null().to_numpy().astype(np.int64)
        for t in HOUSEHOLD_TABLES if t in tables
    ]))
    if len(ids) and ids.min() < 0:
        raise ScaleError(f"household ids must be non-negative to be renumbered; found {ids.min()}")
    stride = 10 ** len(str(int(ids.max()))) if len(ids) else 1
    ts = _micros(tables[TRANSACTIONS].column("transaction_timestamp").combine_chunks().drop_null())
    first_day = int(ts.min() // DAY_US * DAY_US)
    span = int((ts.max() // DAY_US * DAY_US - first_day) // DAY_US) + 1
    if factor - 1 > span - 1:
        raise ScaleError(
            f"--factor {factor} is too large: the data spans {span} days, and the {factor - 1} synthetic copies of a "
            f"household each need their own day offset (1 .. {span - 1}); expected --factor <= {span}"
        )
    # One random permutation of the offsets 1 .. span-1 per household; copy k takes column k-1,
    # so a copy's offsets do not depend on N and the copies of a household never share one.
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random((len(ids), span - 1)), axis=1, kind="stable")[:, : factor - 1] + 1
    return Shifts(ids, stride, first_day, span, order.astype(np.int64))


def _embedded(table: str) -> pa.Table:
    return pa.Table.from_pandas(read_source(table, None).frame, preserve_index=False)


def synthetic_copy(table: str, data: pa.Table, shifts: Shifts, copy: int, basket_rank: np.ndarray | None,
                   n_baskets: int, max_basket: int, index: np.ndarray) -> pa.Table:
    """Copy `copy` (≥ 1) of a household table: new household ids, shifted dates, new basket ids."""
    out = data.set_column(
        data.schema.get_field_index("household_id"), data.schema.field("household_id"),
        pa.array(shifts.new_ids(data.column("household_id").to_numpy(), copy), type=data.schema.field("household_id").type),
    )
    for col in HOUSEHOLD_TABLES[table]:
        i = out.schema.get_field_index(col)
        out = out.set_column(i, out.schema.field(col), shifts.shift(data.column(col).combine_chunks(), index, copy))
    if basket_rank is not None:
        i = out.schema.get_field_index("basket_id")
        baskets = max_basket + (copy - 1) * n_baskets + basket_rank + 1
        out = out.set_column(i, out.schema.field("basket_id"), pa.array(baskets, type=out.schema.field("basket_id").type))
    return out


def _normalized(table: pa.Table) -> pa.Table:
    """Timestamps as microseconds (what Spark and ingest read), schema metadata dropped."""
    fields = []
    for f in table.schema:
        fields.append(pa.field(f.name, pa.timestamp("us")) if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type)
                      else f.with_metadata(None))
    return table.cast(pa.schema(fields)).replace_schema_metadata(None)


def _canonical(name: str, table: pa.Table) -> pa.Table:
    """Only the contract's columns, in the source's order. The embedded transactions also
    carry `week`, the week number of the date, which a shift would make wrong and nothing
    reads; `households` keeps its demographics (CONTRACTS §1: "optional demographics")."""
    if name == HOUSEHOLDS:
        return table
    required, optional = SCHEMA[name]
    return table.select([c for c in table.column_names if c in required or c in optional])


def original_tables(households: int | None = None) -> dict[str, pa.Table]:
    """The tables copy 0 is made of: the embedded data's, or only its first `households`
    households (by id, among those with transactions) and their rows."""
    tables = {name: _canonical(name, _normalized(_embedded(name))) for name in TABLES}
    if households is not None:
        if households < 1:
            raise ScaleError(f"--households {households}: expected a whole number >= 1")
        keep = pa.array(np.unique(tables[TRANSACTIONS].column("household_id").to_numpy())[:households])
        for name in HOUSEHOLD_TABLES:
            tables[name] = tables[name].filter(pc.is_in(tables[name].column("household_id"), value_set=keep))
    return tables


def check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ScaleError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise ScaleError(f"--out {out}: directory is not empty; give a new or empty directory "
                         "(nothing is overwritten)")


@dataclass
class ScaleReport:
    factor: int
    seed: int
    out: Path
    rows: dict[str, int]
    households: int
    first_day: str
    last_day: str


def generate(factor: int, out: str | Path, seed: int = 0, households: int | None = None) -> ScaleReport:
    """Write the N× dataset to `out` (see the module docstring). `households` keeps only the
    first that many households (by id) of the embedded data before scaling: a quick, small
    dataset for tests."""
    if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
        raise ScaleError(f"--factor {factor!r}: expected a whole number >= 1 (1 writes the data unchanged)")
    out = Path(out)
    check_out_dir(out)
    tables = original_tables(households)
    shifts = plan_shifts(tables, factor, seed)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    for name in AS_IS:
        pq.write_table(tables[name], out / f"{name}.parquet")
        rows[name] = tables[name].num_rows
    for name in HOUSEHOLD_TABLES:
        data = tables[name]
        index = shifts.household_index(data.column("household_id").to_numpy().astype(np.int64))
        basket_rank = max_basket = None
        n_baskets = 0
        if name == TRANSACTIONS:
            ids = data.column("basket_id").to_numpy().astype(np.int64)
            unique = np.unique(ids)
            basket_rank, n_baskets, max_basket = np.searchsorted(unique, ids), len(unique), int(unique.max())
        # A temporary name until the last row group is written: a killed run leaves no
        # half-written table that a source directory would read as complete.
        partial = out / f".{name}.parquet.partial"
        with pq.ParquetWriter(partial, data.schema) as writer:
            writer.write_table(data)
            for copy in range(1, factor):
                writer.write_table(synthetic_copy(name, data, shifts, copy, basket_rank, n_baskets, max_basket, index))
        partial.rename(out / f"{name}.parquet")
        rows[name] = data.num_rows * factor
    first = pd.Timestamp(shifts.first_day_us, unit="us")
    return ScaleReport(factor, seed, out, rows, len(shifts.households) * factor, str(first.date()),
                       str((first + pd.Timedelta(days=shifts.span_days - 1)).date()))
