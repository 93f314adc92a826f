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


def _tree_proc(root: int) -> tuple[int, dict[int, float]]:
    """(sum of VmRSS in bytes, CPU seconds used so far per pid) of `root` and all its
    descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            # The command name may hold spaces and parentheses: fields resume after the last ')'.
            fields = stat[stat.rindex(")") + 2 :].split()
            ppid = int(fields[1])
            with open(f"/proc/{pid}/statm") as f:
                rss[pid] = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            cpu[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
        children.setdefault(ppid, []).append(pid)
    total, stack, seen = 0, [root], {}
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        if pid in cpu:
            seen[pid] = cpu[pid]
        stack.extend(children.get(pid, []))
    return total, seen


def _tree_psutil(root: int) -> tuple[int, dict[int, float]]:
    try:
        proc = psutil.Process(root)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, {}
    total, cpu = 0, {}
    for p in procs:
        try:
            total += p.memory_info().rss
            times = p.cpu_times()
            cpu[p.pid] = times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total, cpu


def tree_usage(root: int) -> tuple[int, dict[int, float]]:
    """(RSS in bytes, CPU seconds so far per pid) of `root` and its descendants."""
    return _tree_psutil(root) if psutil is not None else _tree_proc(root)


def tree_rss(root: int) -> int:
    return tree_usage(root)[0]


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
    # CPU seconds (user + system) of the process tree. On a shared machine it is the figure
    # that load does not stretch: wall seconds grow with other people's work, CPU seconds hardly.
    cpu_seconds: float = 0.0


def run_measured(command: list[str], env: dict[str, str], log: Path) -> Measured:
    """Run `command`, sampling the RSS of its process tree until it exits."""
    peak = 0
    loads: list[float] = []
    cpu: dict[int, float] = {}
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                rss, used = tree_usage(proc.pid)
                cpu.update(used)
                peak = max(peak, rss)
                loads.append(os.getloadavg()[0])
                done.wait(SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # wait4 gives the exact CPU time of the process and of every descendant it waited
        # for; the samples add descendants nobody waited for (and miss the end of each).
        _, status, usage = os.wait4(proc.pid, 0)
        returncode = proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    return Measured(seconds, peak, returncode, log.read_text(),
                    max(loads, default=0.0), sum(loads) / len(loads) if loads else 0.0,
                    max(sum(cpu.values()), usage.ru_utime + usage.ru_stime))
