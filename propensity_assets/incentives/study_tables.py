"""A study's partition (`study=<key>`) of the CONTRACTS §9 lake tables: read and write.

Every study, from the catalogue or a product group's retail study (`retail_<group>`),
is one partition of each table; a table's partitions may hold different columns, so a
partition is read with its own files' schema.
"""

from __future__ import annotations

import pandas as pd

from propensity_assets.incentives.catalog import RETAIL_PREFIX
from propensity_assets.shared.lake import Lake


def retail_key(group: str) -> str:
    """The study key of a product group's retail campaign study."""
    return f"{RETAIL_PREFIX}{group}"


def _spec(study: str) -> dict:
    return {"study": study}


def write(lake: Lake, table: str, df: pd.DataFrame, study: str) -> int:
    """Replace the study's partition of `table` with `df` (no rows: the partition is removed); the rows."""
    lake.write_pandas(table, df.assign(study=study), ["study"], [_spec(study)])
    return len(df)


def exists(lake: Lake, table: str, study: str) -> bool:
    return lake.exists(table, _spec(study))


def read_or_none(lake: Lake, table: str, study: str) -> pd.DataFrame | None:
    """The study's partition of `table`, or None when nothing has written it."""
    if not exists(lake, table, study):
        return None
    return lake.read_partition(table, _spec(study))


def read(lake: Lake, table: str, study: str) -> pd.DataFrame:
    """The study's partition of `table`; a missing one says which asset to materialize."""
    frame = read_or_none(lake, table, study)
    if frame is None:
        raise FileNotFoundError(f"lake table {table!r} has no partition study={study}: materialize {table} for {study} first")
    return frame
