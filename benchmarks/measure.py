"""Run a command and measure it: wall seconds and the peak resident memory of its whole
process tree (the `dagster` process, the Spark JVM it starts, Python workers), sampled
every 0.2 s with psutil when installed and /proc otherwise. Shared by the benchmarks."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SAMPLE_SECONDS = 0.2

try:
    import psutil
except ImportError:  # /proc fallback below
    psutil = None


# -- memory of a process tree ------------------------------------------------------------


def _tree_rss_proc(root: int) -> int:
    """Sum of VmRSS (bytes) of `root` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            # The command name may hold spaces and parentheses: fields resume after the last ')'.
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            with open(f"/proc/{pid}/statm") as f:
                rss[pid] = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
        children.setdefault(ppid, []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def _tree_rss_psutil(root: int) -> int:
    try:
        proc = psutil.Process(root)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def tree_rss(root: int) -> int:
    return _tree_rss_psutil(root) if psutil is not None else _tree_rss_proc(root)


@dataclass
class Measured:
    seconds: float
    peak_rss: int
    returncode: int
    output: str
    # The 1-minute load average, highest and mean over the samples: on a shared machine it
    # says how much of the wall time was other people's work.
    max_load: float = 0.0
    mean_load: float = 0.0


def run_measured(command: list[str], env: dict[str, str], log: Path) -> Measured:
    """Run `command`, sampling the RSS of its process tree until it exits."""
    peak = 0
    loads: list[float] = []
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, tree_rss(proc.pid))
                loads.append(os.getloadavg()[0])
                done.wait(SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        returncode = proc.wait()
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    return Measured(seconds, peak, returncode, log.read_text(),
                    max(loads, default=0.0), sum(loads) / len(loads) if loads else 0.0)
