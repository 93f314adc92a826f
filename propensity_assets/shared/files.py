"""Files written whole or not at all: write aside, fsync, then one rename. A reader (a
campaign tool picking up a CSV, a DuckDB client opening the catalogue) or a crash sees
the old file or the complete new one, never a torn one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable


def replace_atomically(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Create or replace `path` with what `write(tmp)` writes to a temporary path beside it
    (same directory, so the rename is atomic). A failed write leaves `path` as it was."""
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    fsync_dir(directory)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """`data` as the whole content of `path`, atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)

    replace_atomically(path, write)


def fsync_dir(path: str) -> None:
    """Make a rename in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
