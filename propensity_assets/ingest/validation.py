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
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from propensity_assets.ingest.sources import SCHEMA, RawTable, SourceError


@dataclass(frozen=True)
class ValidationRules:
    min_timestamp: str = "2000-01-01"
    max_timestamp: str | None = None  # None: one day after now

    def timestamp_bounds(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        upper = (
            pd.Timestamp(self.max_timestamp)
            if self.max_timestamp
            else pd.Timestamp.now().normalize() + pd.Timedelta(days=1)
        )
        return pd.Timestamp(self.min_timestamp), upper


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


def _parse(series: pd.Series, kind: str) -> pd.Series:
    if kind == "string":
        return series.astype("string")
    if kind == "timestamp":
        if pd.api.types.is_datetime64_any_dtype(series):
            # Naive timestamps are the contract; a zone-aware column keeps its wall time.
            return series.dt.tz_localize(None) if series.dt.tz is not None else series
        return pd.to_datetime(series, errors="coerce", format="mixed")
    numbers = pd.to_numeric(series, errors="coerce")
    if kind == "int":
        whole = numbers.where(np.isfinite(numbers) & (numbers == np.round(numbers)))
        return whole.astype("Int64")
    return numbers.astype("float64")


def coerce(raw: RawTable) -> tuple[pd.DataFrame, pd.Series]:
    """Cast the canonical columns to their types; return (typed frame, first problem per row).

    Raises SourceError for a missing required column or a column none of whose
    values parse as its type (the file, not the rows, is wrong).
    """
    required, optional = SCHEMA[raw.name]
    frame = raw.frame
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
        if kind in ("int", "number") and pd.api.types.is_bool_dtype(original):
            # True/False would be stored as 1/0 without a word
            raise SourceError(
                f"{raw.origin}: column {col!r} of table {raw.name!r} has the wrong type: "
                f"expected {kind}, got booleans such as {bool(original.iloc[0])}"
            )
        parsed = _parse(original, kind)
        present = original.notna()
        if kind == "number":
            # inf parses as a number, and one would make every sum over it infinite
            infinite = present & parsed.notna() & ~np.isfinite(parsed)
            problem = problem.fillna(pd.Series(np.where(infinite, f"non_finite:{col}", None), index=frame.index))
        if kind != "string":
            unparseable = present & parsed.isna()
            if present.any() and unparseable.sum() == present.sum():
                sample = original[unparseable].iloc[0]
                raise SourceError(
                    f"{raw.origin}: column {col!r} of table {raw.name!r} has the wrong type: "
                    f"expected {kind}, got {original.dtype} values such as {sample!r}"
                )
            problem = problem.fillna(pd.Series(np.where(unparseable, f"unparseable:{col}", None), index=frame.index))
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
    if raw.name == "transactions":
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
