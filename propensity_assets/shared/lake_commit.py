"""The lake's crash-safe commit: journal, atomic partition swaps, recovery and the
per-table lock (the protocol is described in `propensity_assets.shared.lake`).

Everything here works on paths: `<root>/<table>/<rel>` for a partition (`rel` is its
Hive directory, "" for an unpartitioned table), `<root>/_staging/<id>/` for a write
set aside, `<root>/_locks/<table>.lock` for a table's lock.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import socket
import time

import pyarrow.fs as pafs

from propensity_assets.shared import files

log = logging.getLogger(__name__)

JOURNAL = "_journal.json"
_RENAME_EXCHANGE = 2  # linux/fs.h
_FS = pafs.LocalFileSystem()


def crash_point(step: str) -> None:
    """A named step of the commit (`journal`, `swap`, `between_renames`, `committed`) at
    which a process may die. A no-op: the crash tests replace it to kill their writer
    there and prove that recovery completes the commit."""


def commit(root: str, table: str, staging: str, rels: list[str], lock_timeout_s: float) -> int:
    """Swap the partitions `rels` staged under `staging` into `table`, crash-safely; a
    partition with nothing staged is deleted. Returns how many partitions now hold data."""
    with TableLock(f"{root}/_locks", table, lock_timeout_s):
        recover_table(root, table)
        entries = []
        for rel in rels:
            source = f"{staging}/{rel}" if rel else f"{staging}/data"
            has_new = _FS.get_file_info(source).type == pafs.FileType.Directory
            if has_new:
                # The marker tells recovery whether this partition's swap happened.
                _write_bytes(f"{source}/{_marker(staging)}", b"")
            entries.append({"rel": rel, "new": has_new})
        _FS.create_dir(staging, recursive=True)
        _write_json(f"{staging}/{JOURNAL}", {"table": table, "state": "prepared", "partitions": entries})
        crash_point("journal")
        _apply(root, table, staging, entries)
        _write_json(f"{staging}/{JOURNAL}", {"table": table, "state": "committed", "partitions": entries})
        crash_point("committed")
        _FS.delete_dir(staging)
    return sum(entry["new"] for entry in entries)


def _apply(root: str, table: str, staging: str, entries: list[dict]) -> None:
    """Roll a prepared commit forward; idempotent, so recovery calls it again."""
    marker = _marker(staging)
    for entry in entries:
        rel = entry["rel"]
        source = f"{staging}/{rel}" if rel else f"{staging}/data"
        target = f"{root}/{table}" + (f"/{rel}" if rel else "")
        old = f"{staging}/_replaced/{rel or 'data'}"
        target_is_dir = _FS.get_file_info(target).type == pafs.FileType.Directory
        if target_is_dir and _FS.get_file_info(f"{target}/{marker}").type == pafs.FileType.File:
            continue  # swapped before the interruption
        if not entry["new"]:
            if target_is_dir:
                _FS.create_dir(old.rsplit("/", 1)[0], recursive=True)
                _FS.move(target, old)
            continue
        _FS.create_dir(target.rsplit("/", 1)[0], recursive=True)
        if target_is_dir:
            _swap_dirs(source, target, old)
        else:
            _FS.move(source, target)
        crash_point("swap")


def recover(root: str, lock_timeout_s: float) -> list[str]:
    """Finish every interrupted commit under `root`, each under its table's lock; returns
    the staging ids finished."""
    recovered = []
    for info in staging_dirs(root):
        journal = _read_json(f"{info.path}/{JOURNAL}")
        if journal is not None:
            with TableLock(f"{root}/_locks", journal["table"], lock_timeout_s):
                recovered += recover_table(root, journal["table"])
    return recovered


def recover_table(root: str, table: str) -> list[str]:
    """Roll forward every journaled commit of `table` (caller holds its lock).

    A journal is written only once every new partition is fully staged, so an
    interrupted commit can always be completed; nothing is ever rolled back to a
    state newer readers did not see. Staging without a journal never became
    visible and is left to the grace-period cleanup (its writer may still be alive).
    """
    done = []
    for info in staging_dirs(root):
        journal = _read_json(f"{info.path}/{JOURNAL}")
        if journal is None or journal.get("table") != table:
            continue
        if journal["state"] != "committed":
            _apply(root, table, info.path, journal["partitions"])
        _FS.delete_dir(info.path)
        log.warning("lake: finished interrupted commit %s of table %r", info.base_name, table)
        done.append(info.base_name)
    return done


def clean_stale_staging(root: str, grace_s: float) -> list[str]:
    """Delete un-journaled staging older than `grace_s` seconds (killed writers')."""
    cutoff = time.time() - grace_s
    cleaned = []
    for info in staging_dirs(root):
        if journaled(info.path):
            continue  # an interrupted commit: recovery's job, never plain deletion
        if info.mtime is not None and info.mtime.timestamp() < cutoff:
            _FS.delete_dir(info.path)
            cleaned.append(info.base_name)
    if cleaned:
        log.warning("lake: deleted %d stale staging dir(s) under %s/_staging: %s", len(cleaned), root, cleaned)
    return cleaned


def journaled(staging: str) -> bool:
    """Whether the write staged at `staging` got past its journal (it must be completed)."""
    return _FS.get_file_info(f"{staging}/{JOURNAL}").type == pafs.FileType.File


def staging_dirs(root: str) -> list[pafs.FileInfo]:
    """The staging directories under `root`, oldest first (their ids are time-ordered)."""
    selector = pafs.FileSelector(f"{root}/_staging", allow_not_found=True)
    return sorted(
        (info for info in _FS.get_file_info(selector) if info.type == pafs.FileType.Directory),
        key=lambda info: info.base_name,
    )


def _marker(staging: str) -> str:
    # Leading underscore: Spark, pyarrow, DuckDB and Polars globs of *.parquet skip it.
    return f"_committed_{staging.rstrip('/').rsplit('/', 1)[-1]}"


def _write_bytes(path: str, data: bytes) -> None:
    # A reader or a crash sees the old file or the whole new one, never a torn journal.
    files.write_bytes(path, data)


def _write_json(path: str, payload: dict) -> None:
    _write_bytes(path, json.dumps(payload, indent=1).encode())


def _read_json(path: str) -> dict | None:
    if _FS.get_file_info(path).type != pafs.FileType.File:
        return None
    with _FS.open_input_stream(path) as handle:
        return json.loads(handle.read())


def _swap_dirs(source: str, target: str, old: str) -> None:
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
    _FS.create_dir(old.rsplit("/", 1)[0], recursive=True)
    _FS.move(target, old)
    crash_point("between_renames")
    _FS.move(source, target)


def _exchange(a: str, b: str) -> bool:
    """Swap directories `a` and `b` atomically; False where the filesystem cannot."""
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


class TableLock:
    """One committer per table at a time, so two writers never interleave renames.

    An flock on `<root>/_locks/<table>.lock` (kept: deleting a lock file races); the kernel
    releases it when its holder dies, so a killed run never leaves a stale lock. (On NFS,
    flock is a lock of the server's lock manager, shared by every client.)
    """

    def __init__(self, lock_root: str, table: str, timeout_s: float):
        self.path = f"{lock_root}/{table}.lock"
        self.table, self.timeout_s = table, timeout_s
        self.fd: int | None = None

    def __enter__(self) -> "TableLock":
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
