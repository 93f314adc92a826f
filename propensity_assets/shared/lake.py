"""The lake: Parquet datasets at `<root>/<table>/`, Hive-partitioned (CONTRACTS §5).

Every write goes aside first, into `<root>/_staging/<id>/`, and is then swapped
into place partition by partition. Readers (Spark, pyarrow, DuckDB, pandas,
Polars) skip `_staging` and `_committed_*` markers because of the leading underscore.

The commit is crash-safe:

1. it takes the table's lock (flock, released by the kernel if the holder dies), so
   two writers of a table never interleave;
2. it finishes any interrupted commit of the table (roll forward, see below) and
   deletes un-journaled staging older than the grace period (killed writers');
3. it writes `<staging>/_journal.json` (write-aside + fsync + rename) listing every
   partition, only after all new data is staged: from then on the commit can always
   be completed;
4. it swaps each partition with one atomic directory exchange (Linux renameat2
   RENAME_EXCHANGE), so a reader sees the complete old or complete new partition;
   a `_committed_<id>` marker in the new partition tells recovery it is done;
5. it marks the journal committed and deletes the staging dir (with the old data).

A reader that lists a partition just as it is swapped has listed the replaced version:
its files are gone when opened, or, if the commit deleted them before the listing was
read, the listing is empty (a committed partition directory always holds data). Either
way the reader lists again; a path never holds another version's bytes.

A kill anywhere leaves every partition old or new; the next commit of that table,
or `Lake.recover()`, completes the interrupted commit. On a POSIX filesystem without
RENAME_EXCHANGE (NFS, other OSes) a partition swap is two renames and a reader can
see it missing between them; crashes there are still completed by recovery.

The root must be a local or mounted POSIX path (`settings.lake_root`): object stores
have neither flock nor atomic renames of directories (a "rename" there copies and
deletes object by object), so the protocol above could not hold; such a root is
refused before anything is written.

This module holds the lake's layout, its reads and its write entry points; the commit
protocol itself is `lake_commit`, the Spark executors' staging writer `lake_staging`.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from propensity_assets.shared import lake_commit, settings

PartitionSpec = Mapping[str, str]  # e.g. {"as_of": "2017-12-01", "product_group": "eggs"}


# Partition values come from configuration (group and study keys) and partition keys: they
# must name a directory inside their table, never a path elsewhere.
_PARTITION_VALUE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:+-]*")


def partition_dir(spec: PartitionSpec) -> str:
    for key, value in spec.items():
        if not _PARTITION_VALUE.fullmatch(str(value)):
            raise ValueError(
                f"lake partition {key}={str(value)!r}: expected letters, digits, '_', '.', ':', '+' or '-', "
                "not starting with '.' or '-' (a partition value never names a path outside its table)"
            )
    return "/".join(f"{key}={value}" for key, value in spec.items())


def data_file(staging: str, part: int = 0) -> str:
    """A data file name unique to one write (and, for a Spark write, to one task): a path
    never names two versions' bytes, so a reader that listed a partition just before a
    swap gets FileNotFoundError (and lists again), never the footer of one version with
    the pages of another."""
    return f"part-{part:05d}-{staging.rstrip('/').rsplit('/', 1)[-1]}.parquet"


@dataclass(frozen=True)
class Lake:
    root: str  # a local path or file: URI; stored as an absolute path
    # Un-journaled staging older than this belongs to a killed writer and is deleted.
    # None: the deployment's setting (`settings.lake_staging_grace_s`).
    staging_grace_s: float | None = None
    # How long a commit waits for another writer's lock on the same table.
    # None: the deployment's setting (`settings.lake_lock_timeout_s`).
    lock_timeout_s: float | None = None

    def __post_init__(self) -> None:
        # Refuse an object store or HDFS before anything is read or written.
        object.__setattr__(self, "root", settings.lake_root(self.root, "lake root"))
        if self.staging_grace_s is None:
            object.__setattr__(self, "staging_grace_s", settings.lake_staging_grace_s())
        if self.lock_timeout_s is None:
            object.__setattr__(self, "lock_timeout_s", settings.lake_lock_timeout_s())

    @property
    def _fs_and_root(self) -> tuple[pafs.FileSystem, str]:
        return pafs.LocalFileSystem(), self.root.rstrip("/") or "/"

    def uri(self, table: str) -> str:
        """The table's URI as Spark should read or write it."""
        return f"{self.root.rstrip('/')}/{table}"

    def missing(self, table: str) -> str:
        """The error for a table that is not there. Every lake table is written by the
        asset of the same name."""
        return f"Lake table {table!r} does not exist at {self.uri(table)}: materialize the asset {table!r} first"

    def staging_uri(self) -> str:
        # Time-ordered ids: recovery finishes interrupted commits oldest first.
        return f"{self.root.rstrip('/')}/_staging/{time.time_ns():020d}-{uuid.uuid4().hex}"

    def exists(self, table: str, spec: PartitionSpec | None = None) -> bool:
        fs, root = self._fs_and_root
        path = f"{root}/{table}" + (f"/{partition_dir(spec)}" if spec else "")
        return fs.get_file_info(path).type == pafs.FileType.Directory

    def partitions(self, table: str, key: str) -> list[str]:
        """Values of the first-level partition column `key` present in `table`."""
        fs, root = self._fs_and_root
        selector = pafs.FileSelector(f"{root}/{table}", allow_not_found=True)
        prefix = f"{key}="
        return sorted(
            info.base_name[len(prefix) :]
            for info in fs.get_file_info(selector)
            if info.type == pafs.FileType.Directory and info.base_name.startswith(prefix)
        )

    # -- writing ---------------------------------------------------------------------------

    def commit(self, table: str, staging_uri: str, specs: Iterable[PartitionSpec]) -> int:
        """Swap staged partitions into `table`, crash-safely.

        A spec with nothing staged deletes that partition: the new version of it is
        empty. An empty spec means the whole (unpartitioned) table. Returns how many
        partitions now hold data.

        Protocol (see the module docstring): take the table's lock, finish any
        interrupted commit of the table, write the journal, swap each partition with
        one atomic exchange, mark the journal committed, then drop the old versions.
        """
        _, root = self._fs_and_root
        rels = [partition_dir(spec) for spec in specs]
        written = lake_commit.commit(root, table, staging_uri, rels, self.lock_timeout_s)
        # After the commit, so a grace period shorter than this write's own staging
        # time can never delete the staging being committed.
        self.clean_stale_staging()
        return written

    def recover(self) -> dict[str, list[str]]:
        """Finish every interrupted commit and delete stale staging; report what was done.

        Safe at any time: each table's recovery runs under that table's commit lock.
        Returns {"recovered": [staging ids], "cleaned": [staging ids]}.
        """
        _, root = self._fs_and_root
        recovered = lake_commit.recover(root, self.lock_timeout_s)
        return {"recovered": recovered, "cleaned": self.clean_stale_staging()}

    def clean_stale_staging(self) -> list[str]:
        """Delete un-journaled staging older than the grace period (killed writers')."""
        _, root = self._fs_and_root
        return lake_commit.clean_stale_staging(root, self.staging_grace_s)

    def discard(self, staging_uri: str) -> None:
        fs, _ = self._fs_and_root
        if fs.get_file_info(staging_uri).type != pafs.FileType.Directory:
            return
        if lake_commit.journaled(staging_uri):
            # The commit got past its journal: finish it rather than lose a half swap.
            self.recover()
        else:
            fs.delete_dir(staging_uri)

    def write_pandas(
        self,
        table: str,
        df: pd.DataFrame,
        partition_cols: Sequence[str] = (),
        specs: Iterable[PartitionSpec] | None = None,
    ) -> int:
        """Write a pandas frame aside, then swap it in.

        Unpartitioned tables are replaced whole. For a partitioned table, `specs` names
        the partitions this write owns (default: those present in `df`); each is
        replaced, including ones `df` has no rows for.
        """
        staging = self.staging_uri()
        fs, _ = self._fs_and_root
        path = staging
        arrow = pa.Table.from_pandas(df, preserve_index=False)
        # Spark 4 refuses nanosecond timestamps (PARQUET_TYPE_ILLEGAL): write microseconds.
        arrow = arrow.cast(
            pa.schema(
                [
                    pa.field(f.name, pa.timestamp("us", f.type.tz), f.nullable)
                    if pa.types.is_timestamp(f.type)
                    else f
                    for f in arrow.schema
                ]
            )
        )
        try:
            if not partition_cols:
                fs.create_dir(f"{path}/data", recursive=True)
                pq.write_table(arrow, f"{path}/data/{data_file(staging)}", filesystem=fs)
                return self.commit(table, staging, [{}])
            if specs is None:
                keys = df[list(partition_cols)].drop_duplicates().astype(str)
                specs = [dict(zip(partition_cols, row)) for row in keys.itertuples(index=False)]
            arrow_parts = arrow.drop_columns(list(partition_cols))
            for spec in specs:
                mask = pd.Series(True, index=df.index)
                for col, value in spec.items():
                    mask &= df[col].astype(str) == value
                if not mask.any():
                    continue
                part_dir = f"{path}/{partition_dir(spec)}"
                fs.create_dir(part_dir, recursive=True)
                pq.write_table(
                    arrow_parts.filter(pa.array(mask.to_numpy())),
                    f"{part_dir}/{data_file(staging)}",
                    filesystem=fs,
                )
            return self.commit(table, staging, specs)
        except BaseException:
            self.discard(staging)
            raise

    # -- reading ---------------------------------------------------------------------------

    def read_pandas(self, table: str, filters=None, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Read a table (with its Hive partition columns as strings) into pandas."""
        return self.read_arrow(table, filters, columns).to_pandas()

    def read_arrow(self, table: str, filters=None, columns: Sequence[str] | None = None) -> pa.Table:
        """Read a table (with its Hive partition columns as strings) into Arrow."""
        return self.dataset(table).to_table(filter=filters, columns=list(columns) if columns else None)

    def read_partition(self, table: str, spec: PartitionSpec, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """One partition, read with its own files' schema and without the partition columns.

        For tables whose partitions hold different columns, such as the CONTRACTS §9 study
        tables (a retail study has columns a generated one has not): `dataset` takes its
        schema from one file, so it would drop the other partitions' own columns.
        """
        fs, root = self._fs_and_root
        path = f"{root}/{table}/{partition_dir(spec)}"
        if fs.get_file_info(path).type != pafs.FileType.Directory:
            raise FileNotFoundError(f"Lake table {table!r} has no partition {partition_dir(spec)} at {self.uri(table)}")
        data = ds.dataset(path, filesystem=fs, format="parquet", ignore_prefixes=["_", "."])
        return data.to_table(columns=list(columns) if columns else None).to_pandas()

    def unreadable_files(self, table: str, spec: PartitionSpec) -> list[str]:
        """`<file> (<why>)` for each file of a partition that is not a readable Parquet file (a
        truncated or corrupt file, a stray `notes.txt`), reading only the footers. Names starting
        with `_` or `.` are skipped, as readers skip them."""
        fs, root = self._fs_and_root
        problems = []
        for info in fs.get_file_info(pafs.FileSelector(f"{root}/{table}/{partition_dir(spec)}", allow_not_found=True)):
            if info.type != pafs.FileType.File or info.base_name.startswith(("_", ".")):
                continue
            try:
                with fs.open_input_file(info.path) as handle:
                    pq.ParquetFile(handle).metadata
            except (pa.ArrowException, OSError) as exc:
                problems.append(f"{info.base_name} ({type(exc).__name__}: {exc})")
        return problems

    def partition_files(self, table: str, filters=None) -> Iterator[tuple[tuple[str, ...], ds.Fragment]]:
        """Each data file of `table` (under `filters`) with its partition values, outermost
        first: per-partition figures (row counts from the Parquet footers, a column's
        statistics) without holding the table in memory."""
        dataset = self.dataset(table)
        keys = dataset.partitioning.schema.names if dataset.partitioning else []
        for fragment in dataset.get_fragments(filter=filters):
            values = ds.get_partition_keys(fragment.partition_expression)
            yield tuple(values[k] for k in keys), fragment

    def dataset(self, table: str) -> ds.Dataset:
        """The table as an Arrow dataset, its Hive partition columns typed as strings."""
        fs, root = self._fs_and_root
        path = f"{root}/{table}"
        if fs.get_file_info(path).type != pafs.FileType.Directory:
            raise FileNotFoundError(self.missing(table))
        # Partition values are strings: type inference would turn a group key such as
        # `2024` (a valid [a-z0-9_]+ key) into an int, and string filters would then fail.
        keys = self._partition_keys(fs, path)
        return ds.dataset(
            path,
            filesystem=fs,
            format="parquet",
            partitioning=ds.partitioning(pa.schema([(key, pa.string()) for key in keys]), flavor="hive")
            if keys
            else None,
            ignore_prefixes=["_", "."],
        )

    def partition_keys(self, table: str) -> list[str]:
        """The table's Hive partition columns, outermost first ([] when unpartitioned)."""
        fs, root = self._fs_and_root
        return self._partition_keys(fs, f"{root}/{table}")

    def tables(self) -> list[str]:
        """The tables the lake holds: its directories, less `_staging`, `_locks` and hidden ones."""
        fs, root = self._fs_and_root
        return sorted(
            info.base_name
            for info in fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
            if info.type == pafs.FileType.Directory and not info.base_name.startswith(("_", "."))
        )

    @staticmethod
    def _partition_keys(fs: pafs.FileSystem, path: str) -> list[str]:
        """The Hive partition columns of the dataset at `path`, outermost first."""
        keys: list[str] = []
        while True:
            infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
            sub = next(
                (
                    info
                    for info in sorted(infos, key=lambda info: info.base_name)
                    if info.type == pafs.FileType.Directory
                    and "=" in info.base_name
                    and not info.base_name.startswith(("_", "."))
                ),
                None,
            )
            if sub is None:
                return keys
            keys.append(sub.base_name.split("=", 1)[0])
            path = sub.path

    def partitions_in(self, table: str) -> bool:
        fs, root = self._fs_and_root
        selector = pafs.FileSelector(f"{root}/{table}", allow_not_found=True)
        return any("=" in info.base_name for info in fs.get_file_info(selector))
