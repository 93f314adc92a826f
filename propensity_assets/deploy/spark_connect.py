"""A Spark Connect server on loopback, started from the installed pyspark package (its
`bin/spark-submit` and the spark-connect jar it ships), for `make spark-connect`,
`make dev` and the tests: one warm JVM that every run reaches by SPARK_REMOTE instead
of starting its own.

    python -m propensity_assets.deploy.spark_connect --log-dir data/spark_connect
    export SPARK_REMOTE=sc://127.0.0.1:15002     # what it prints; then run anything

    python -m propensity_assets.deploy.spark_connect --log-dir data/spark_connect -- dg dev ...
    # runs the command with SPARK_REMOTE set, and stops the server when it exits

The server is a classic Spark application: its master, driver memory and static conf come
from `settings.spark_conf()` (SPARK_MASTER, SPARK_DRIVER_MEMORY, PROPENSITY_SPARK_CONF), as
a classic run's would; each client session then sets its own runtime SQL conf. gRPC binds
127.0.0.1 only: a Connect server runs whatever its clients send, with no authentication.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from propensity_assets.shared import settings
from propensity_assets.deploy.spark_cluster import (
    HOST, SparkClusterError, _launch, _port_taken, _tail, _terminate, free_port, java_executable, spark_home,
)

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
DEFAULT_PORT = 15002


class SparkConnectError(SparkClusterError):
    """The Connect server could not start; the message says why and where its log is."""


@dataclass
class SparkConnectServer:
    """A running server; `stop()` (or leaving the `with` block) ends it."""

    url: str
    port: int
    log: Path
    process: subprocess.Popen | None

    def stop(self, timeout_s: float = 30) -> None:
        proc, self.process = self.process, None
        if proc is not None:
            _terminate(proc, timeout_s)

    def __enter__(self) -> SparkConnectServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def server_command(port: int, conf: dict[str, str]) -> list[str]:
    """spark-submit of the server class, with the classic conf as the server's own."""
    conf = dict(conf)
    command = [str(spark_home() / "bin" / "spark-submit"), "--class", SERVER_CLASS,
               "--name", conf.pop("spark.app.name", "Spark Connect server"),
               "--master", conf.pop("spark.master", "local[*]")]
    if "spark.driver.memory" in conf:  # read before the driver JVM starts: a flag, not --conf
        command += ["--driver-memory", conf.pop("spark.driver.memory")]
    conf.update({
        "spark.connect.grpc.binding.address": HOST,
        "spark.connect.grpc.binding.port": str(port),
        # A taken port is an error, never a silent move: the printed SPARK_REMOTE must be the real one.
        "spark.port.maxRetries": "0",
        "spark.driver.host": HOST,
        "spark.driver.bindAddress": HOST,
    })
    if conf.get("spark.ui.enabled", "true") != "false":
        # With no retries, the web UI must not want 4040, which any other Spark may hold.
        conf.setdefault("spark.ui.port", str(free_port()))
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    return [*command, "spark-internal"]


def server_environment(conf: dict[str, str], java: str) -> dict[str, str]:
    """The server process's environment. Spark Connect starts the Python workers of a
    client's UDFs (scoring, the lake writes) at the server's PYSPARK_PYTHON, not at
    spark.pyspark.python: without it they would be the PATH's `python3`, which lacks the
    project. So PYSPARK_PYTHON is set from the conf's interpreter unless already set."""
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "JAVA_HOME": settings.java_home() or str(Path(java).resolve().parent.parent),
        "SPARK_LOCAL_IP": HOST,  # the web UI binds it, else every interface
    }
    if "spark.pyspark.python" in conf:
        env.setdefault("PYSPARK_PYTHON", conf["spark.pyspark.python"])
    env.pop("SPARK_REMOTE", None)  # the server is classic; SPARK_REMOTE would make it a client
    return env


def start(
    log_dir: str | os.PathLike,
    port: int = DEFAULT_PORT,
    conf: dict[str, str] | None = None,
    timeout_s: float = 120,
) -> SparkConnectServer:
    """Start a server on 127.0.0.1:`port` with `conf` (default `settings.spark_conf()`),
    and return once it accepts connections. Its log goes to `<log_dir>/connect.log`."""
    java = java_executable()
    log_dir = Path(log_dir).resolve()
    if _port_taken(port):
        raise SparkConnectError(
            f"Spark Connect port {HOST}:{port} is already in use (another server running?); "
            "stop it or choose another port"
        )
    log_dir.mkdir(parents=True, exist_ok=True)
    conf = settings.spark_conf() if conf is None else conf
    env = server_environment(conf, java)
    log = log_dir / "connect.log"
    server = SparkConnectServer(f"sc://{HOST}:{port}", port, log, None)
    try:
        server.process = _launch(server_command(port, conf), env, log)
        deadline = time.monotonic() + timeout_s
        while not _accepts(port):
            if server.process.poll() is not None:
                raise SparkConnectError(
                    f"Spark Connect server exited with code {server.process.returncode} before it was up; "
                    f"last lines of {log}:\n{_tail(log)}"
                )
            if time.monotonic() > deadline:
                raise SparkConnectError(
                    f"Spark Connect server did not accept connections on {HOST}:{port} within {timeout_s:.0f}s; "
                    f"last lines of {log}:\n{_tail(log)}"
                )
            time.sleep(0.5)
    except BaseException:
        server.stop()
        raise
    return server


def _accepts(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=2).close()
        return True
    except OSError:
        return False


_child: subprocess.Popen | None = None


def _terminate_signal(signum, frame) -> None:
    """`kill` stops the server as Ctrl-C does; the command (which Ctrl-C reaches through the
    terminal's process group, but `kill` does not) gets it too."""
    if _child is not None and _child.poll() is None:
        _child.send_signal(signal.SIGTERM)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m propensity_assets.deploy.spark_connect",
        description="Run a Spark Connect server on 127.0.0.1 until interrupted, or for as long as a command runs.",
    )
    parser.add_argument("--log-dir", default="data/spark_connect", help="where connect.log goes")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0: a free port (`make demo` uses one)")
    parser.add_argument("command", nargs="*", help="after --: run it with SPARK_REMOTE set, then stop the server")
    args = parser.parse_args(argv)
    global _child
    signal.signal(signal.SIGTERM, _terminate_signal)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even if started with it ignored
    try:
        server = start(args.log_dir, port=args.port or free_port())
    except SparkClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(f"Spark Connect server {server.url} (master {settings.spark_conf()['spark.master']}); "
          f"log {server.log}")
    print(f"export SPARK_REMOTE={server.url}", flush=True)
    try:
        if args.command:
            _child = subprocess.Popen(args.command, env={**os.environ, "SPARK_REMOTE": server.url})
            return _child.wait()
        while server.process.poll() is None:
            time.sleep(1)
        print(f"error: the Spark Connect server exited; see {server.log}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if _child is not None:  # it got the signal too: let it shut down, then stop the server
            try:
                return _child.wait(60)
            except subprocess.TimeoutExpired:
                _child.kill()
                return _child.wait()
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
