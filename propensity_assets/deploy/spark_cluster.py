"""A Spark standalone cluster on loopback: one master and one worker, started from the
installed pyspark package (its `bin/spark-class`), for `make spark-cluster` and the tests.

    python -m propensity_assets.deploy.spark_cluster --log-dir data/spark_cluster
    export SPARK_MASTER=spark://127.0.0.1:7077   # what it prints; then run anything

Everything binds 127.0.0.1 (RPC ports and web UIs). The worker's executors are separate
JVMs with their own working directory (`<log dir>/work`): a code path that reads a
driver-local file from an executor fails here as it would on a real cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from propensity_assets.shared import settings

HOST = "127.0.0.1"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


class SparkClusterError(RuntimeError):
    """The cluster could not start; the message says why and where the logs are."""


def spark_home() -> Path:
    """The installed pyspark package: it ships the Spark jars and `bin/spark-class`."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def java_executable() -> str:
    """`$JAVA_HOME/bin/java`, else `java` on PATH (what spark-class itself uses)."""
    java_home = settings.java_home()
    if java_home and os.access(Path(java_home) / "bin" / "java", os.X_OK):
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        where = f"JAVA_HOME={java_home} has no bin/java and " if java_home else "JAVA_HOME is unset and "
        raise SparkClusterError(
            f"Java 17 is required to run a Spark master and worker: {where}`java` is not on PATH. "
            "Install a JDK 17 (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME."
        )
    return found


def free_port() -> int:
    """A port free on loopback now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
        return False


@dataclass
class SparkCluster:
    """A running master and worker; `stop()` (or leaving the `with` block) ends both."""

    master_url: str
    web_ui_url: str
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def state(self) -> dict:
        """The master's JSON: workers, active and completed applications."""
        return _master_json(self.web_ui_url)

    def completed_apps(self) -> list[dict]:
        return self.state().get("completedapps", [])

    def stop(self, timeout_s: float = 30) -> None:
        # The worker first, so it kills its executors rather than waiting for the master.
        for name in ("worker", "master"):
            proc = self.processes.pop(name, None)
            if proc is not None:
                _terminate(proc, timeout_s)

    def __enter__(self) -> SparkCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start(
    log_dir: str | os.PathLike,
    port: int = 7077,
    webui_port: int = 8080,
    worker_port: int | None = None,
    worker_webui_port: int | None = None,
    worker_cores: int = 2,
    worker_memory: str = "2g",
    timeout_s: float = 90,
) -> SparkCluster:
    """Start a master on 127.0.0.1:`port` and one worker, and return once the worker is
    registered (ALIVE in the master's JSON at http://127.0.0.1:`webui_port`/json/).

    Logs go to `<log_dir>/master.log` and `<log_dir>/worker.log`; executors' stdout and
    stderr to `<log_dir>/work/<app>/<executor>/`. A port already in use is an error,
    never a silent move to the next port: the printed SPARK_MASTER must be the real one.
    """
    java = java_executable()
    log_dir = Path(log_dir).resolve()
    work_dir = log_dir / "work"
    work_dir.mkdir(parents=True, exist_ok=True)
    worker_port = worker_port or free_port()
    worker_webui_port = worker_webui_port or free_port()
    for name, value in (("master", port), ("master web UI", webui_port),
                        ("worker", worker_port), ("worker web UI", worker_webui_port)):
        if _port_taken(value):
            raise SparkClusterError(
                f"Spark {name} port {HOST}:{value} is already in use (another cluster running?); "
                "stop it or choose other ports"
            )
    home = spark_home()
    # Spark would move to the next port when one is taken: fail instead. The REST submission
    # server (port 6066, no authentication) is not needed: applications connect by RPC.
    properties = log_dir / "spark-cluster.conf"
    properties.write_text("spark.port.maxRetries 0\nspark.master.rest.enabled false\n")
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "JAVA_HOME": settings.java_home() or str(Path(java).resolve().parent.parent),
        # Web UIs bind SPARK_LOCAL_IP (else every interface); RPC binds --host.
        "SPARK_LOCAL_IP": HOST,
        "SPARK_LOG_DIR": str(log_dir),
        "SPARK_WORKER_DIR": str(work_dir),
        "SPARK_NO_DAEMONIZE": "1",
    }
    spark_class = str(home / "bin" / "spark-class")
    master_url = f"spark://{HOST}:{port}"
    web_ui_url = f"http://{HOST}:{webui_port}"
    cluster = SparkCluster(master_url, web_ui_url, log_dir)
    try:
        cluster.processes["master"] = _launch(
            [spark_class, MASTER_CLASS, "--host", HOST, "--port", str(port), "--webui-port", str(webui_port),
             "--properties-file", str(properties)],
            env, log_dir / "master.log",
        )
        state = _wait(cluster, "master", timeout_s, lambda s: s.get("status") == "ALIVE")
        if state.get("url") != master_url:
            raise SparkClusterError(f"Spark master came up at {state.get('url')}, not {master_url}")
        cluster.processes["worker"] = _launch(
            [spark_class, WORKER_CLASS, "--host", HOST, "--port", str(worker_port),
             "--webui-port", str(worker_webui_port), "--cores", str(worker_cores), "--memory", worker_memory,
             "--work-dir", str(work_dir), "--properties-file", str(properties), master_url],
            env, log_dir / "worker.log",
        )
        _wait(cluster, "worker", timeout_s,
              lambda s: any(w.get("state") == "ALIVE" for w in s.get("workers", [])))
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _launch(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        # Its own process group: stop() ends the JVM and the executors it forked.
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _master_json(web_ui_url: str, timeout_s: float = 5) -> dict:
    with urllib.request.urlopen(f"{web_ui_url}/json/", timeout=timeout_s) as response:
        return json.loads(response.read())


def _wait(cluster: SparkCluster, name: str, timeout_s: float, ready) -> dict:
    """Poll the master's JSON until `ready(state)`; fail early if `name`'s process died."""
    proc = cluster.processes[name]
    log = cluster.log_dir / f"{name}.log"
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise SparkClusterError(
                f"Spark {name} exited with code {proc.returncode} before it was up; "
                f"last lines of {log}:\n{_tail(log)}"
            )
        try:
            state = _master_json(cluster.web_ui_url, timeout_s=2)
            if ready(state):
                return state
        except (urllib.error.URLError, OSError, ValueError):
            pass  # not listening yet
        if time.monotonic() > deadline:
            raise SparkClusterError(
                f"Spark {name} did not come up within {timeout_s:.0f}s (master web UI {cluster.web_ui_url}/json/); "
                f"last lines of {log}:\n{_tail(log)}"
            )
        time.sleep(0.5)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _terminate(proc: subprocess.Popen, timeout_s: float) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        proc.wait()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m propensity_assets.deploy.spark_cluster",
        description="Run a Spark standalone master and worker on 127.0.0.1 until interrupted.",
    )
    parser.add_argument("--log-dir", default="data/spark_cluster", help="logs and the worker's work dir")
    parser.add_argument("--port", type=int, default=7077)
    parser.add_argument("--webui-port", type=int, default=8080)
    parser.add_argument("--cores", type=int, default=2, help="worker cores")
    parser.add_argument("--memory", default="2g", help="worker memory for executors")
    args = parser.parse_args(argv)
    try:
        cluster = start(args.log_dir, port=args.port, webui_port=args.webui_port,
                        worker_cores=args.cores, worker_memory=args.memory)
    except SparkClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the cluster as Ctrl-C does
    print(f"Spark master {cluster.master_url} (web UI {cluster.web_ui_url}), one worker: "
          f"{args.cores} cores, {args.memory}; logs in {cluster.log_dir}")
    print(f"export SPARK_MASTER={cluster.master_url}", flush=True)
    try:
        while all(proc.poll() is None for proc in cluster.processes.values()):
            time.sleep(1)
        print("error: a Spark process exited; see the logs", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
