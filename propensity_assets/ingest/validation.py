"""Two-tier validation of raw tables (pure pandas, no Dagster).

- A *malformed file* (missing column, a column of the wrong type) raises SourceError
  naming the file and column: nothing of it is written.
- *Invalid rows* are quarantined with a reason: nulls where a value is required,
  values that don't parse as their type, negative sales_value, timestamps outside a
  plausible range, exact duplicate rows.
- *Suspicious rows* are kept and counted: non-positive quantity with positive
  sales_value, and product ids unknown to `products`. They are real spend.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from propensity_assets.ingest.sources import SCHEMA, RawTable, SourceError
from propensity_assets.shared import tables


# The accepted timestamps: anything from 1900 on, so that a real history of any decade is
# kept; what the bounds still catch is a placeholder date (0001-01-01) or a date in the future.
DEFAULT_MIN_TIMESTAMP = "1900-01-01"


@dataclass(frozen=True)
class ValidationRules:
    min_timestamp: str = DEFAULT_MIN_TIMESTAMP
    max_timestamp: str | None = None  # None: one day after now

    def timestamp_bounds(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        upper = (
            pd.Timestamp(self.max_timestamp)
            if self.max_timestamp
            else pd.Timestamp.now().normalize() + pd.Timedelta(days=1)
        )
        return pd.Timestamp(self.min_timestamp), upper

    def bounds_note(self, table: str, counts: dict[str, int]) -> str:
        """What a run refused for timestamps out of range says: the bounds and where to change
        them; empty when no row was out of range."""
        if not any(reason.startswith("timestamp_out_of_range:") for reason in counts):
            return ""
        low, high = self.timestamp_bounds()
        upper = self.max_timestamp or f"{high.date()} (tomorrow)"
        return (f" Timestamps must lie within min_timestamp={low.date()} .. max_timestamp={upper}; to accept other "
                f"dates, set them in the run config of asset {table!r} (launchpad, or --config-json "
                f"'{{\"ops\": {{\"{table}\": {{\"config\": {{\"min_timestamp\": \"YYYY-MM-DD\"}}}}}}}}').")


@dataclass
class ValidationResult:
    table: str
    valid: pd.DataFrame
    quarantine: pd.DataFrame  # source_table, reason, record (the raw row as JSON)
    rows_in: int
    invalid_counts: dict[str, int] = field(default_factory=dict)
    suspicious_counts: dict[str, int] = field(default_factory=dict)

    @property
    def duplicate_share(self) -> float:
        return self.invalid_counts.get("duplicate_row", 0) / self.rows_in if self.rows_in else 0.0

    @property
    def invalid_share(self) -> float:
        """Share of rows whose data is lost: quarantined for a reason other than being a copy."""
        lost = len(self.quarantine) - self.invalid_counts.get("duplicate_row", 0)
        return lost / self.rows_in if self.rows_in else 0.0


# Whole numbers of float64 are exact only up to 2**53: larger ids stored as floats have
# already been rounded onto each other, and no reader can tell.
_EXACT_FLOAT_INT = 2**53
_INT64 = (-(2**63), 2**63 - 1)
_INT_TEXT = re.compile(r"[+-]?\d+(?:\.0*)?")
# Timestamps as text must be ISO 8601: "03/04/2017" is the 3rd of April or the 4th of March
# depending on who wrote it, and guessing per row silently swaps day and month.
TIMESTAMP_FORMAT = "ISO 8601 (YYYY-MM-DD, optionally followed by HH:MM[:SS])"
# Columns whose text is a name that catalogues match on: numbers there are a different coding.
NAME_COLUMNS = {"product_category", "campaign_type"}


# The tables with one row per key.
KEYS = {tables.PRODUCTS: "product_id", tables.HOUSEHOLDS: "household_id", tables.CAMPAIGN_DESCRIPTIONS: "campaign_id"}


class _Refused(Exception):
    """A column-level problem; `coerce` turns it into a SourceError naming file and table."""


def _parse_ints(series: pd.Series, col: str) -> pd.Series:
    """Whole numbers as Int64, exactly: never through float64, which rounds ids above 2**53
    (pandas reads a text column with one blank cell as float)."""
    if pd.api.types.is_bool_dtype(series):
        raise _Refused(f"has the wrong type: expected whole numbers (ids), got booleans ({series.dtype})")
    if pd.api.types.is_integer_dtype(series):
        if pd.api.types.is_unsigned_integer_dtype(series) and len(series) and series.max() > _INT64[1]:
            raise _Refused(f"holds {series.max()}, beyond the 64-bit integer range; expected ids up to {_INT64[1]}")
        return series.astype("Int64")
    if pd.api.types.is_float_dtype(series):
        finite = series.where(np.isfinite(series))
        if (finite.abs() > _EXACT_FLOAT_INT).any():
            sample = finite[finite.abs() > _EXACT_FLOAT_INT].iloc[0]
            raise _Refused(
                f"has the wrong type: it is stored as floating point ({series.dtype}) with values such as {sample:.0f}: above 2**53 "
                "such ids are rounded onto each other; expected an integer column"
            )
        return finite.where(finite == np.round(finite)).astype("Int64")
    text = series.astype("string").str.strip().reset_index(drop=True)
    whole = text.str.fullmatch(_INT_TEXT.pattern).fillna(False)
    digits = text.where(whole).str.replace(r"\.0*$", "", regex=True)
    # Up to 15 digits a float64 is exact: the fast path; longer ones are converted one by one.
    short = digits.notna() & (digits.str.lstrip("+-").str.len() <= 15)
    out = pd.Series(pd.NA, index=text.index, dtype="Int64")
    out[short] = pd.to_numeric(digits[short]).astype("int64")
    for i, value in digits[digits.notna() & ~short].items():
        number = int(value)
        if not _INT64[0] <= number <= _INT64[1]:
            raise _Refused(f"holds {value}, beyond the 64-bit integer range; expected ids up to {_INT64[1]}")
        out[i] = number
    return out.array


def _parse(series: pd.Series, kind: str, col: str) -> pd.Series:
    if kind == "string":
        if col in NAME_COLUMNS and (
            pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
        ) and series.notna().any():
            raise _Refused(f"has the wrong type: expected text (names such as 'SOFT DRINKS'), got {series.dtype} values such as "
                           f"{series.dropna().iloc[0].item()!r}; a numeric code is not a name the catalogues can match")
        return series.astype("string")
    if kind == "timestamp":
        if pd.api.types.is_datetime64_any_dtype(series):
            # Naive timestamps are the contract; a zone-aware column keeps its wall time.
            return series.dt.tz_localize(None) if series.dt.tz is not None else series
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            raise _Refused(f"has the wrong type: expected timestamps, {TIMESTAMP_FORMAT}, got {series.dtype} values")
        return pd.to_datetime(series.astype("string").str.strip(), errors="coerce", format="ISO8601")
    if kind == "int":
        return pd.Series(_parse_ints(series, col), index=series.index)
    if pd.api.types.is_bool_dtype(series):
        raise _Refused(f"has the wrong type: expected numbers, got booleans ({series.dtype}): True/False is not an amount")
    return pd.to_numeric(series, errors="coerce").astype("float64")


def _expected(kind: str) -> str:
    return {"timestamp": f"timestamp, {TIMESTAMP_FORMAT}", "int": "int (whole numbers)"}.get(kind, kind)


def coerce(raw: RawTable) -> tuple[pd.DataFrame, pd.Series]:
    """Cast the canonical columns to their types; return (typed frame, first problem per row).

    Raises SourceError for a missing or repeated required column, or a column that cannot
    hold its type: none of its values parse, ids beyond 64 bits or rounded as floats,
    booleans for numbers, numbers for category names (the file, not the rows, is wrong).
    """
    required, optional = SCHEMA[raw.name]
    frame = raw.frame
    repeated = sorted(set(frame.columns[frame.columns.duplicated()]))
    if repeated:
        raise SourceError(
            f"{raw.origin}: table {raw.name!r} has column(s) {repeated} more than once; expected each column once"
        )
    missing = [col for col in required if col not in frame.columns]
    if missing:
        raise SourceError(
            f"{raw.origin}: table {raw.name!r} is missing required column(s) {missing}; "
            f"found {list(frame.columns)}"
        )
    typed = frame.copy()
    problem = pd.Series(pd.NA, index=frame.index, dtype="object")
    for col, kind in {**required, **optional}.items():
        if col not in frame.columns:
            continue
        original = frame[col]
        try:
            parsed = _parse(original, kind, col)
        except _Refused as exc:
            raise SourceError(f"{raw.origin}: column {col!r} of table {raw.name!r} {exc}") from None
        present = original.notna()
        if kind != "string":
            unparseable = present & parsed.isna()
            if present.any() and unparseable.sum() == present.sum():
                sample = original[unparseable].iloc[0]
                raise SourceError(
                    f"{raw.origin}: column {col!r} of table {raw.name!r} has the wrong type: "
                    f"expected {_expected(kind)}, got {original.dtype} values such as {sample!r}"
                )
            problem = problem.fillna(pd.Series(np.where(unparseable, f"unparseable:{col}", None), index=frame.index))
            if kind == "number":
                # inf is no amount: one would make every sum and mean over it infinite.
                infinite = parsed.notna() & ~np.isfinite(parsed)
                problem = problem.fillna(pd.Series(np.where(infinite, f"non_finite:{col}", None), index=frame.index))
                parsed = parsed.where(~infinite)
            if col in required:
                problem = problem.fillna(pd.Series(np.where(~present, f"null:{col}", None), index=frame.index))
        typed[col] = parsed
    return typed, problem


def validate(
    raw: RawTable,
    rules: ValidationRules = ValidationRules(),
    known_products: pd.Series | None = None,
) -> ValidationResult:
    """Split a raw table into valid rows and quarantined rows, and count suspicious rows."""
    typed, problem = coerce(raw)
    required, optional = SCHEMA[raw.name]
    low, high = rules.timestamp_bounds()
    for col, kind in {**required, **optional}.items():
        if kind == "timestamp" and col in typed.columns:
            outside = typed[col].notna() & ((typed[col] < low) | (typed[col] > high))
            problem = problem.fillna(
                pd.Series(np.where(outside, f"timestamp_out_of_range:{col}", None), index=typed.index)
            )
    if "sales_value" in typed.columns:
        problem = problem.fillna(
            pd.Series(np.where(typed["sales_value"] < 0, "negative_sales_value", None), index=typed.index)
        )
    duplicated = raw.frame.duplicated(keep="first")
    problem = problem.fillna(pd.Series(np.where(duplicated, "duplicate_row", None), index=typed.index))
    key = KEYS.get(raw.name)
    if key is not None:
        # One key, two different rows (a product in two categories): either could be wrong,
        # and keeping one would move the product's spend between groups. Both are quarantined.
        distinct = ~duplicated & typed[key].notna()
        conflicting = distinct & typed[key].where(distinct).duplicated(keep=False) & typed[key].notna()
        problem = problem.fillna(pd.Series(np.where(conflicting, f"conflicting_key:{key}", None), index=typed.index))

    bad = problem.notna()
    quarantined = raw.frame.loc[bad]
    quarantine = pd.DataFrame(
        {
            "source_table": raw.name,
            "reason": problem[bad].astype(str).to_numpy(),
            # Missing values as JSON null: `NaN` is not JSON, and strict readers (DuckDB, Spark) refuse it.
            "record": [
                json.dumps(rec, default=str)
                for rec in quarantined.astype(object).where(quarantined.notna(), None).to_dict("records")
            ],
        }
    )
    valid = typed.loc[~bad].reset_index(drop=True)

    suspicious: dict[str, int] = {}
    if raw.name == tables.TRANSACTIONS:
        suspicious["nonpositive_quantity_with_sales"] = int(
            ((valid["quantity"] <= 0) & (valid["sales_value"] > 0)).sum()
        )
        if known_products is not None:
            suspicious["unknown_product_id"] = int((~valid["product_id"].isin(known_products)).sum())
    return ValidationResult(
        table=raw.name,
        valid=valid,
        quarantine=quarantine,
        rows_in=len(raw.frame),
        invalid_counts=dict(Counter(problem[bad].astype(str))),
        suspicious_counts=suspicious,
    )


def empty_table(name: str) -> pd.DataFrame:
    """A zero-row frame with the canonical columns, for an optional table the source lacks."""
    required, optional = SCHEMA[name]
    dtypes = {"int": "Int64", "number": "float64", "timestamp": "datetime64[us]", "string": "string"}
    return pd.DataFrame({col: pd.Series(dtype=dtypes[kind]) for col, kind in required.items()})
