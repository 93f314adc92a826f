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
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import re
import signal
import socket
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from propensity_assets.shared.settings import lake_root

log = logging.getLogger(__name__)

JOURNAL = "_journal.json"
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


@dataclass(frozen=True)
class Lake:
    root: str  # a local path or file: URI; stored as an absolute path
    # Un-journaled staging older than this belongs to a killed writer and is deleted.
    staging_grace_s: float = float(os.environ.get("PROPENSITY_LAKE_STAGING_GRACE_S", 24 * 3600))
    # How long a commit waits for another writer's lock on the same table.
    lock_timeout_s: float = float(os.environ.get("PROPENSITY_LAKE_LOCK_TIMEOUT_S", 600))

    def __post_init__(self) -> None:
        # Refuse an object store or HDFS before anything is read or written.
        object.__setattr__(self, "root", lake_root(self.root, "lake root"))

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
        fs, root = self._fs_and_root
        staging = staging_uri
        specs = list(specs)
        with _TableLock(fs, f"{root}/_locks", table, self.lock_timeout_s):
            self._recover_table(fs, root, table)
            entries = []
            for spec in specs:
                rel = partition_dir(spec)
                source = f"{staging}/{rel}" if rel else f"{staging}/data"
                has_new = fs.get_file_info(source).type == pafs.FileType.Directory
                if has_new:
                    # The marker tells recovery whether this partition's swap happened.
                    _write_bytes(fs, f"{source}/{_marker(staging)}", b"")
                entries.append({"rel": rel, "new": has_new})
            fs.create_dir(staging, recursive=True)
            _write_json(fs, f"{staging}/{JOURNAL}", {"table": table, "state": "prepared", "partitions": entries})
            _fault("journal")
            self._apply(fs, root, table, staging, entries)
            _write_json(fs, f"{staging}/{JOURNAL}", {"table": table, "state": "committed", "partitions": entries})
            _fault("committed")
            fs.delete_dir(staging)
        # After the commit, so a grace period shorter than this write's own staging
        # time can never delete the staging being committed.
        self.clean_stale_staging()
        return sum(entry["new"] for entry in entries)

    def _apply(self, fs: pafs.FileSystem, root: str, table: str, staging: str, entries: list[dict]) -> None:
        """Roll a prepared commit forward; idempotent, so recovery calls it again."""
        marker = _marker(staging)
        for entry in entries:
            rel = entry["rel"]
            source = f"{staging}/{rel}" if rel else f"{staging}/data"
            target = f"{root}/{table}" + (f"/{rel}" if rel else "")
            old = f"{staging}/_replaced/{rel or 'data'}"
            target_is_dir = fs.get_file_info(target).type == pafs.FileType.Directory
            if target_is_dir and fs.get_file_info(f"{target}/{marker}").type == pafs.FileType.File:
                continue  # swapped before the interruption
            if not entry["new"]:
                if target_is_dir:
                    fs.create_dir(old.rsplit("/", 1)[0], recursive=True)
                    fs.move(target, old)
                continue
            fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            if target_is_dir:
                _swap_dirs(fs, source, target, old)
            else:
                fs.move(source, target)
            _fault("swap")

    def recover(self) -> dict[str, list[str]]:
        """Finish every interrupted commit and delete stale staging; report what was done.

        Safe at any time: each table's recovery runs under that table's commit lock.
        Returns {"recovered": [staging ids], "cleaned": [staging ids]}.
        """
        fs, root = self._fs_and_root
        recovered = []
        for info in self._staging_dirs(fs, root):
            journal = _read_json(fs, f"{info.path}/{JOURNAL}")
            if journal is not None:
                with _TableLock(fs, f"{root}/_locks", journal["table"], self.lock_timeout_s):
                    recovered += self._recover_table(fs, root, journal["table"])
        return {"recovered": recovered, "cleaned": self.clean_stale_staging()}

    def _recover_table(self, fs: pafs.FileSystem, root: str, table: str) -> list[str]:
        """Roll forward every journaled commit of `table` (caller holds its lock).

        A journal is written only once every new partition is fully staged, so an
        interrupted commit can always be completed; nothing is ever rolled back to a
        state newer readers did not see. Staging without a journal never became
        visible and is left to the grace-period cleanup (its writer may still be alive).
        """
        done = []
        for info in self._staging_dirs(fs, root):
            journal = _read_json(fs, f"{info.path}/{JOURNAL}")
            if journal is None or journal.get("table") != table:
                continue
            if journal["state"] != "committed":
                self._apply(fs, root, table, info.path, journal["partitions"])
            fs.delete_dir(info.path)
            log.warning("lake: finished interrupted commit %s of table %r", info.base_name, table)
            done.append(info.base_name)
        return done

    def clean_stale_staging(self) -> list[str]:
        """Delete un-journaled staging older than the grace period (killed writers')."""
        fs, root = self._fs_and_root
        cutoff = time.time() - self.staging_grace_s
        cleaned = []
        for info in self._staging_dirs(fs, root):
            if fs.get_file_info(f"{info.path}/{JOURNAL}").type == pafs.FileType.File:
                continue  # an interrupted commit: recovery's job, never plain deletion
            if info.mtime is not None and info.mtime.timestamp() < cutoff:
                fs.delete_dir(info.path)
                cleaned.append(info.base_name)
        if cleaned:
            log.warning("lake: deleted %d stale staging dir(s) under %s/_staging: %s", len(cleaned), self.root, cleaned)
        return cleaned

    @staticmethod
    def _staging_dirs(fs: pafs.FileSystem, root: str) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(f"{root}/_staging", allow_not_found=True)
        return sorted(
            (info for info in fs.get_file_info(selector) if info.type == pafs.FileType.Directory),
            key=lambda info: info.base_name,
        )

    def discard(self, staging_uri: str) -> None:
        fs, _ = self._fs_and_root
        path = staging_uri
        if fs.get_file_info(path).type != pafs.FileType.Directory:
            return
        if fs.get_file_info(f"{path}/{JOURNAL}").type == pafs.FileType.File:
            # The commit got past its journal: finish it rather than lose a half swap.
            self.recover()
        else:
            fs.delete_dir(path)

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
                pq.write_table(arrow, f"{path}/data/{_data_file(staging)}", filesystem=fs)
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
                    f"{part_dir}/{_data_file(staging)}",
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


# -- commit machinery --------------------------------------------------------------------

_RENAME_EXCHANGE = 2  # linux/fs.h
_fault_counts: dict[str, int] = {}


def _fault(step: str) -> None:
    """Fault injection for the crash tests: PROPENSITY_LAKE_FAULT=<step>:<n> SIGKILLs
    this process at the n-th time it reaches `step`. Unset in production: a no-op."""
    spec = os.environ.get("PROPENSITY_LAKE_FAULT")
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != step:
        return
    _fault_counts[step] = _fault_counts.get(step, 0) + 1
    if _fault_counts[step] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def _data_file(staging: str) -> str:
    """A data file name unique to one write: a path never names two versions' bytes, so a
    reader that listed a partition just before a swap gets FileNotFoundError (and lists
    again), never the footer of one version with the pages of another."""
    return f"part-00000-{staging.rstrip('/').rsplit('/', 1)[-1]}.parquet"


def stage_sorted_batches(
    batches: Iterable[pa.RecordBatch], staging: str, keys: Sequence[str], part: int
) -> Iterator[pa.RecordBatch]:
    """Write record batches sorted by the partition columns `keys` into `staging`, one
    Hive partition directory per key run, one file per partition (`part-<part>-<id>`);
    yields one batch of (partition, rows) per partition written.

    Spark's own partitioned writer costs ~17 ms per file; a year of group features has
    4,368 partitions. This runs inside each Spark task (`LakeResource.write_spark`), which
    streams its rows here sorted, so a partition's file is open only while its run lasts.
    The name depends only on the task's partition number: a retried task overwrites its
    own files.
    """
    keys = list(keys)
    data_file = f"part-{part:05d}-{staging.rstrip('/').rsplit('/', 1)[-1]}.parquet"
    writer, current, rows, written = None, None, 0, []

    def close() -> None:
        if writer is not None:
            writer.close()
            written.append((current, rows))

    for batch in batches:
        if batch.num_rows == 0:
            continue
        for key in keys:
            if batch.column(key).null_count:
                raise ValueError(f"lake partition column {key!r}: null values cannot name a partition")
        values = [batch.column(k).cast(pa.string()) for k in keys]
        # where any key changes: the run ends of the keys joined (the separator only
        # splits runs; each run's values are read from the columns themselves)
        runs = pc.run_end_encode(pc.binary_join_element_wise(*values, "\x00"))
        data = batch.drop_columns(keys)
        start = 0
        for end in runs.run_ends.to_pylist():
            label = tuple(v[start].as_py() for v in values)
            if label != current:
                close()
                if label in dict(written):  # its file would be overwritten
                    raise ValueError(f"lake staging: rows of partition {label} are not contiguous; sort by {keys}")
                rel = partition_dir(dict(zip(keys, label)))
                os.makedirs(f"{staging}/{rel}", exist_ok=True)
                writer, current, rows = pq.ParquetWriter(f"{staging}/{rel}/{data_file}", data.schema), label, 0
            writer.write_batch(data.slice(start, end - start))
            rows += end - start
            start = end
    close()
    if written:
        yield pa.RecordBatch.from_pydict({"partition": ["/".join(w[0]) for w in written], "rows": [w[1] for w in written]})


def _marker(staging: str) -> str:
    # Leading underscore: Spark, pyarrow, DuckDB and Polars globs of *.parquet skip it.
    return f"_committed_{staging.rstrip('/').rsplit('/', 1)[-1]}"


def _write_bytes(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    # Write aside, fsync, then one atomic rename: a reader or a crash sees the old
    # file or the whole new one, never a torn journal.
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path))


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(fs: pafs.FileSystem, path: str, payload: dict) -> None:
    _write_bytes(fs, path, json.dumps(payload, indent=1).encode())


def _read_json(fs: pafs.FileSystem, path: str) -> dict | None:
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path) as handle:
        return json.loads(handle.read())


def _swap_dirs(fs: pafs.FileSystem, source: str, target: str, old: str) -> None:
    """Replace directory `target` by `source` so that readers see one or the other.

    On Linux local disks, renameat2(RENAME_EXCHANGE) swaps the two directories in one
    atomic step (the old version lands at `source`, inside staging, and goes with it).
    Elsewhere (NFS and other filesystems without it, other OSes) there is no atomic
    directory replace: the old version is moved aside and the new one in, two renames
    back to back, and a reader listing between them sees the partition missing; the
    journal still makes a crash there recoverable.
    """
    if _exchange(source, target):
        return
    fs.create_dir(old.rsplit("/", 1)[0], recursive=True)
    fs.move(target, old)
    _fault("between_renames")
    fs.move(source, target)


def _exchange(a: str, b: str) -> bool:
    if os.environ.get("PROPENSITY_LAKE_NO_EXCHANGE"):
        return False  # tests: exercise the two-rename fallback on a disk that has the exchange
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False  # filesystem without RENAME_EXCHANGE: fall back to two renames
    raise OSError(err, f"Could not swap lake partition {b} with staged {a}: {os.strerror(err)}")


class _TableLock:
    """One committer per table at a time, so two writers never interleave renames.

    An flock on `<root>/_locks/<table>.lock` (kept: deleting a lock file races); the kernel
    releases it when its holder dies, so a killed run never leaves a stale lock. (On NFS,
    flock is a lock of the server's lock manager, shared by every client.)
    """

    def __init__(self, fs: pafs.FileSystem, lock_root: str, table: str, timeout_s: float):
        self.path = f"{lock_root}/{table}.lock"
        self.table, self.timeout_s = table, timeout_s
        self.fd: int | None = None

    def __enter__(self) -> "_TableLock":
        import fcntl

        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    holder = os.pread(self.fd, 200, 0).decode(errors="replace").strip()
                    os.close(self.fd)
                    raise TimeoutError(
                        f"Lake table {self.table!r}: another writer has held the commit lock "
                        f"{self.path} for over {self.timeout_s:.0f}s (holder: {holder or 'unknown'}). "
                        "Wait for that run to finish, or raise PROPENSITY_LAKE_LOCK_TIMEOUT_S."
                    ) from None
                time.sleep(0.05)
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"pid={os.getpid()} host={socket.gethostname()} since={time.time():.0f}".encode(), 0)
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock
            self.fd = None
