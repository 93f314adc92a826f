"""The instance's run launcher: Dagster's default one, plus a health check that lets run
monitoring fail runs whose process died.

Dagster's `DefaultRunLauncher` cannot tell whether a run's worker is alive, so a run
whose process was killed (a preempted machine, `kill -9`, an out-of-memory kill) stays
STARTED for ever and holds a slot of the run queue. Every run, whether launched by the
daemon or from the CLI (`propensity-assets launch`, `dg launch`), records the pid of the process executing it
on its RUN_START event; the check below asks the operating system whether that process
still exists and is the same one (it started no later than the run). The daemon's run
monitoring (`run_monitoring` in dagster.yaml) calls it for every STARTED run and marks
the dead ones failed.

The check is meaningful only where runs execute on the daemon's machine, which is what
this launcher (like the default one) does.
"""

from __future__ import annotations

import os

from dagster import DefaultRunLauncher
from dagster._core.events import DagsterEventType
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun

# A process that started more than this long after its run's RUN_START event is another
# process that reused the pid.
_CLOCK_SLACK_S = 2.0


def process_started_at(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), or None if there is no such
    live process (never existed, exited, or a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        with open("/proc/stat") as system:
            boot = next(float(line.split()[1]) for line in system if line.startswith("btime"))
    except (OSError, StopIteration):
        return 0.0  # no /proc: alive, start time unknown
    if fields[0] in ("Z", "X"):  # state: zombie or dead
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat: starttime


class LocalRunLauncher(DefaultRunLauncher):
    """`DefaultRunLauncher` whose run-worker health is the liveness of the run's process."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        records = self._instance.get_records_for_run(run.run_id, of_type=DagsterEventType.RUN_START, limit=1).records
        if not records:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "the run has not recorded its start yet")
        entry = records[0].event_log_entry
        pid = entry.dagster_event.pid if entry.dagster_event else None
        if pid is None:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "the run's start event names no process")
        started = process_started_at(pid)
        if started is None or started > entry.timestamp + _CLOCK_SLACK_S:
            return CheckRunHealthResult(
                WorkerStatus.FAILED,
                f"the process that executed run {run.run_id} (pid {pid}) is gone: it was killed or crashed "
                "without recording the end of the run. Re-run the partitions; the lake still holds each "
                "partition's previous or new content, never a mix.",
            )
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"pid {pid} is alive")
