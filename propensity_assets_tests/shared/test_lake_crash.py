"""The lake commit under SIGKILL, concurrent readers and concurrent writers.

A real child process commits many partitions and is killed (SIGKILL to its process
group) at named steps of the commit (`lake_commit.crash_point`) and at random times.
After each kill every partition must read back as exactly its old or its new
content; recovery must then finish the commit, and a re-run must converge to the
content of an uninterrupted run with no staging left.
"""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from propensity_assets.shared.lake import Lake, partition_dir

PARTS = ["as_of", "product_group"]
AS_OFS = ["2017-10-01", "2017-11-01", "2017-12-01"]
GROUPS = ["eggs", "beef", "bread", "cheese"]
SPECS = [{"as_of": a, "product_group": g} for a in AS_OFS for g in GROUPS]
REPO = Path(__file__).resolve().parents[2]


def frame(version: int) -> pd.DataFrame:
    """Version 0 has 3 households per partition, version 1 has 5: a mix of the two
    (duplicated rows) or a missing partition is visible in the row count."""
    n = 3 if version == 0 else 5
    rows = [
        {"as_of": s["as_of"], "product_group": s["product_group"], "household_id": h, "score": version + h / 10}
        for s in SPECS
        for h in range(n)
    ]
    return pd.DataFrame(rows)


def expected(version: int, spec: dict) -> list[tuple[int, float]]:
    df = frame(version)
    df = df[(df.as_of == spec["as_of"]) & (df.product_group == spec["product_group"])]
    return sorted(zip(df.household_id, df.score))


def read_partition(root: Path, spec: dict) -> list[tuple[int, float]] | None:
    """What a reader listing the partition directory sees (None: missing).

    A listing races a swap in two ways, and like any reader of a lake being written this
    one lists again (a path never holds another version's bytes), as often as it takes:
    - a file listed just before the swap is gone when it is opened;
    - the directory was opened just before the swap and read after the commit deleted
      the old version: the listing is empty. The directory's inode tells: the path then
      names another directory than the one listed.
    A fixed number of tries would report a reader that a busy writer on a loaded machine
    outran that many times in a row as a missing partition.
    """
    path = root / "scores" / partition_dir(spec)
    while True:
        try:
            inode = path.stat().st_ino
            files = sorted(p for p in path.iterdir() if p.suffix == ".parquet" and not p.name.startswith(("_", ".")))
        except FileNotFoundError:
            return None  # the partition directory itself is missing
        if not files:
            try:
                if path.stat().st_ino != inode:
                    continue  # listed the version the swap replaced: list again
            except FileNotFoundError:
                return None
            return None
        try:
            table = pd.concat([pq.read_table(f).to_pandas() for f in files])
        except FileNotFoundError:
            continue  # swapped between listing and reading: list again
        return sorted(zip(table.household_id, table.score))


def versions(root: Path) -> list[int]:
    """Per partition: 0 (old) or 1 (new); fails naming the partition otherwise."""
    out = []
    for spec in SPECS:
        seen = read_partition(root, spec)
        matches = [v for v in (0, 1) if seen == expected(v, spec)]
        assert matches, f"partition {partition_dir(spec)} of table 'scores' is neither old nor new: {seen}"
        out.append(matches[0])
    return out


def inject(fault: str, no_exchange: bool) -> None:
    """In the child: `fault` (`<step>:<n>`) SIGKILLs the process the n-th time the commit
    reaches `step`; `no_exchange` makes every partition swap take the two-rename fallback,
    as on a filesystem without RENAME_EXCHANGE."""
    from propensity_assets.shared import lake_commit

    if fault:
        step, _, nth = fault.partition(":")
        reached = [0]

        def crash_point(name: str) -> None:
            if name == step:
                reached[0] += 1
                if reached[0] == int(nth or 1):
                    os.kill(os.getpid(), signal.SIGKILL)

        lake_commit.crash_point = crash_point
    if no_exchange:
        lake_commit._exchange = lambda a, b: False


CHILD = """
import sys
from propensity_assets_tests.shared.test_lake_crash import frame, inject, PARTS
from propensity_assets.shared.lake import Lake
inject(sys.argv[3], sys.argv[4] == "no_exchange")
Lake(sys.argv[1]).write_pandas("scores", frame(int(sys.argv[2])), PARTS)
"""


def run_child(
    root: Path, version: int, fault: str | None = None, kill_after: float | None = None, no_exchange: bool = False
) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [str(root), str(version), fault or "", "no_exchange" if no_exchange else ""]
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *args], env=env, start_new_session=True)
    if kill_after is not None:
        time.sleep(kill_after)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return proc.wait(timeout=120)


def staging_left(root: Path) -> list[Path]:
    staging = root / "_staging"
    return sorted(staging.iterdir()) if staging.exists() else []


# Each named step with the occurrence to die at; `swap` runs once per partition (12).
FAULTS = ["journal:1", "swap:1", "swap:6", "swap:12", "committed:1"]


@pytest.mark.parametrize("fault", FAULTS)
def test_kill_at_a_commit_step_leaves_old_or_new_and_recovers(tmp_path, fault):
    lake = Lake(str(tmp_path), staging_grace_s=0)
    lake.write_pandas("scores", frame(0), PARTS)
    assert run_child(tmp_path, 1, fault=fault) == -signal.SIGKILL
    seen = versions(tmp_path)
    n_new = int(fault.split(":")[1]) if fault.startswith("swap") else (12 if fault == "committed:1" else 0)
    assert seen.count(1) == n_new, seen
    assert staging_left(tmp_path), "the killed commit must leave its journal for recovery"
    report = lake.recover()
    assert len(report["recovered"]) == 1
    assert versions(tmp_path) == [1] * 12  # journaled: rolled forward
    assert staging_left(tmp_path) == []
    # A re-run converges to the uninterrupted result.
    lake.write_pandas("scores", frame(1), PARTS)
    assert versions(tmp_path) == [1] * 12
    assert staging_left(tmp_path) == []


def test_without_atomic_exchange_a_kill_between_the_renames_is_recovered(tmp_path):
    """The object-store path (two renames per partition): a kill between them leaves
    that one partition missing (the documented window), and recovery restores it."""
    lake = Lake(str(tmp_path))
    lake.write_pandas("scores", frame(0), PARTS)
    rc = run_child(tmp_path, 1, fault="between_renames:3", no_exchange=True)
    assert rc == -signal.SIGKILL
    seen = [read_partition(tmp_path, spec) for spec in SPECS]
    assert seen[:2] == [expected(1, s) for s in SPECS[:2]]
    assert seen[2] is None
    assert seen[3:] == [expected(0, s) for s in SPECS[3:]]
    assert len(lake.recover()["recovered"]) == 1
    assert versions(tmp_path) == [1] * 12
    assert staging_left(tmp_path) == []


def test_a_kill_before_the_journal_keeps_the_old_version_and_the_next_write_cleans(tmp_path):
    lake = Lake(str(tmp_path), staging_grace_s=3600)
    lake.write_pandas("scores", frame(0), PARTS)
    # Killed while staging (before any journal): nothing visible changed.
    Path(tmp_path, "_staging", "00000000000000000001-dead").mkdir(parents=True)
    old = time.time() - 7200
    os.utime(Path(tmp_path, "_staging", "00000000000000000001-dead"), (old, old))
    assert versions(tmp_path) == [0] * 12
    assert lake.clean_stale_staging() == ["00000000000000000001-dead"]
    assert staging_left(tmp_path) == []


def test_random_time_kills_always_leave_old_or_new(tmp_path):
    lake = Lake(str(tmp_path), staging_grace_s=0)
    rng = random.Random(9)
    outcomes = []
    for i in range(8):
        version = i % 2
        lake.write_pandas("scores", frame(1 - version), PARTS)
        rc = run_child(tmp_path, version, kill_after=rng.uniform(0.2, 1.5))
        seen = versions(tmp_path)  # asserts old-or-new per partition
        lake.recover()
        after = versions(tmp_path)
        assert after in ([version] * 12, [1 - version] * 12), (rc, seen, after)
        assert staging_left(tmp_path) == []
        outcomes.append((rc, sum(1 for v in seen if v == version)))
    lake.write_pandas("scores", frame(1), PARTS)
    assert versions(tmp_path) == [1] * 12
    print("random kills (rc, partitions new at kill):", outcomes)


def test_a_concurrent_reader_never_sees_a_missing_or_mixed_partition(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write_pandas("scores", frame(0), PARTS)
    stop, reads, errors = threading.Event(), [0], []

    def reader():
        while not stop.is_set():
            for spec in SPECS:
                try:
                    seen = read_partition(tmp_path, spec)
                except Exception as exc:  # a torn read (one version's footer, another's pages) fails here
                    errors.append((partition_dir(spec), repr(exc)))
                    continue
                if seen not in (expected(0, spec), expected(1, spec)):
                    errors.append((partition_dir(spec), seen))
                reads[0] += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        # At least 30 commits, and on until the reader has read 100 times (a loaded machine
        # can starve the reader thread), within a bound.
        i = 0
        while i < 30 or (reads[0] <= 100 and i < 3000):
            lake.write_pandas("scores", frame((i + 1) % 2), PARTS)
            i += 1
            time.sleep(0.002)  # let the reader thread take the GIL between commits
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert reads[0] > 30


WRITER = """
import sys
from propensity_assets_tests.shared.test_lake_crash import frame, PARTS
from propensity_assets.shared.lake import Lake
lake = Lake(sys.argv[1])
for _ in range(15):
    lake.write_pandas("scores", frame(int(sys.argv[2])), PARTS)
"""


def test_two_concurrent_writers_of_the_same_partitions_both_succeed(tmp_path):
    Lake(str(tmp_path)).write_pandas("scores", frame(0), PARTS)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(v)], env=env, stderr=subprocess.PIPE)
        for v in (0, 1)
    ]
    results = [(p.wait(timeout=300), p.stderr.read().decode()) for p in procs]
    assert [rc for rc, _ in results] == [0, 0], results
    final = versions(tmp_path)
    assert final in ([0] * 12, [1] * 12)  # one writer's commit, whole; never interleaved
    assert staging_left(tmp_path) == []
