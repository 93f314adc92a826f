"""SQL over the lake: a DuckDB file with one view per lake table (CONTRACTS §5:
`data/lake.duckdb`, next to the lake root), and the Spark SQL that registers the same
tables in a cluster's catalogue.

A view reads only committed data. Writers stage outside every table (`<lake>/_staging/`)
and swap whole partition directories in (`shared/lake.py`), so the files under
`<table>/<key>=<value>/…` are always a committed version; the commit's `_committed_*`
markers and the lake's `_locks` and `_staging` directories match none of the globs below
(they name `key=*` directories and `*.parquet` files only). The views are read at query
time, so a partition committed later shows in them; a table that did not exist when the
file was written needs the file rewritten (after each profile run, or `sql-catalog`).
"""

from __future__ import annotations

import glob
import time
from dataclasses import dataclass
from pathlib import Path

from propensity_assets.shared.files import replace_atomically
from propensity_assets.shared.lake import Lake

# Date partition keys read as DATE; every other key (a group or study key such as `2024`)
# stays text, as the lake's other readers take it.
DATE_KEYS = ("as_of", "cutoff")


@dataclass(frozen=True)
class LakeTable:
    """One lake table as SQL sees it: its name, location and Hive partition columns."""

    name: str
    location: str  # the absolute path of <lake>/<table>
    partition_keys: tuple[str, ...]

    @property
    def files(self) -> str:
        """The glob of the table's committed data files."""
        return "/".join([self.location, *(f"{key}=*" for key in self.partition_keys), "*.parquet"])

    def duckdb_view(self) -> str:
        """`CREATE VIEW` over the table's files; a table whose studies hold different
        columns (CONTRACTS §9) reads as the union of them (`union_by_name`)."""
        options = ["union_by_name = true"]
        if self.partition_keys:
            types = ", ".join(f"'{key}': '{'DATE' if key in DATE_KEYS else 'VARCHAR'}'" for key in self.partition_keys)
            options += ["hive_partitioning = true", f"hive_types = {{{types}}}"]
        return (f'CREATE OR REPLACE VIEW "{self.name}" AS SELECT * FROM '
                f"read_parquet({_quote(self.files)}, {', '.join(options)})")

    def spark_sql(self) -> list[str]:
        """The statements that register the table in a Spark catalogue (an external table over
        the same files); `MSCK REPAIR TABLE` registers the partitions present, and again
        after new ones are written."""
        statements = [
            f"CREATE TABLE IF NOT EXISTS `{self.name}` USING parquet OPTIONS (mergeSchema 'true') "
            f"LOCATION {_quote(Path(self.location).as_uri())};"
        ]
        if self.partition_keys:
            statements.append(f"MSCK REPAIR TABLE `{self.name}`;")
        return statements


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def default_path(lake: Lake) -> Path:
    """`<lake root>.duckdb`: data/lake.duckdb for the default lake data/lake."""
    return Path(lake.root.rstrip("/") + ".duckdb")


def lake_tables(lake: Lake) -> list[LakeTable]:
    """Every table of the lake that holds data, by name."""
    out = []
    for name in lake.tables():
        table = LakeTable(name, lake.uri(name), tuple(lake.partition_keys(name)))
        if next(glob.iglob(table.files), None) is not None:  # a view over no file would not bind
            out.append(table)
    return out


def write_duckdb(lake: Lake, path: str | Path, attempts: int = 3) -> list[LakeTable]:
    """Write the DuckDB file at `path` (created or replaced atomically) with one view per
    table; returns the tables. A commit that swaps a partition while a view binds removes
    the files it listed, so binding is tried again (`attempts` times)."""
    import duckdb

    tables = lake_tables(lake)

    def write(tmp: str) -> None:
        with duckdb.connect(tmp) as connection:
            for table in tables:
                for attempt in range(attempts):
                    try:
                        connection.execute(table.duckdb_view())
                        break
                    except duckdb.IOException:
                        if attempt == attempts - 1:
                            raise
                        time.sleep(0.2)
            connection.execute("CHECKPOINT")

    replace_atomically(path, write)
    return tables


def spark_sql(tables: list[LakeTable]) -> str:
    """The Spark SQL script that registers `tables`."""
    return "\n".join(statement for table in tables for statement in table.spark_sql())
