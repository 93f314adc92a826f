"""A real, throwaway PostgreSQL server for the tests and benchmarks of the Postgres instance.

It runs the system's server binaries (`initdb`, `pg_ctl`: `pg_ctl` on PATH, else the
newest `/usr/lib/postgresql/<version>/bin`, as Debian and Ubuntu install them) on
127.0.0.1 and a free port, with its data directory and socket in a new temp dir, and
deletes it all when stopped. PostgreSQL refuses to run as root, so when this process is
root the server runs as the `postgres` user (created by the distribution's packages),
else as `nobody`. Host connections need the password (SCRAM), as a deployed server would.

Nothing here is mocked: when no server can start, `PostgresUnavailable` says why and what
to install, so a test depending on it fails rather than skips.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
# The documented Postgres set-up: its ```yaml block and shell heredoc are what the tests use.
DOC = REPO / "docs" / "operations.md"
DOC_SECTION = "## A Postgres instance"
USERNAME = "dagster"
PASSWORD = "dagster-test-password"  # a throwaway server on loopback
START_TIMEOUT_S = 60


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be started; the message says why and what to do."""


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    username: str
    password: str
    directory: Path

    def connect(self, db_name: str = "postgres"):
        import psycopg2

        return psycopg2.connect(
            host=self.host, port=self.port, user=self.username, password=self.password, dbname=db_name
        )

    def create_database(self, db_name: str) -> None:
        """A new empty database (Dagster creates its tables on first use)."""
        connection = self.connect()
        try:
            connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{db_name}"')
        finally:
            connection.close()

    def query(self, db_name: str, sql: str, params: tuple = ()) -> list[tuple]:
        connection = self.connect(db_name)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            connection.close()


def documented_blocks() -> tuple[str, str]:
    """The documented Postgres `storage:` block (docs/operations.md): (its ```yaml block, the
    heredoc of its shell steps)."""
    text = DOC.read_text()
    if DOC_SECTION not in text:
        raise AssertionError(f"{DOC.relative_to(REPO)} has no section {DOC_SECTION!r}")
    section = text.split(DOC_SECTION, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    fenced = re.search(r"```yaml\n(.*?)```", section, re.S)
    heredoc = re.search(r"<<'EOF'[^\n]*\n(.*?)^EOF$", section, re.S | re.M)
    if not fenced or not heredoc:
        raise AssertionError(f"{DOC.relative_to(REPO)} {DOC_SECTION!r}: expected a ```yaml block and a <<'EOF' heredoc")
    return fenced.group(1), heredoc.group(1)


def write_home(server: PostgresServer, home: Path, db_name: str) -> dict[str, str]:
    """A DAGSTER_HOME as docs/operations.md makes one: the project's dagster.yaml with its
    `storage:` replaced by the documented block, pointed at `server` and a new database `db_name`.
    Returns the environment a process needs to use it."""
    storage = yaml.safe_load(documented_blocks()[0])
    storage["storage"]["postgres"]["postgres_db"].update(
        username=server.username, hostname=server.host, port=server.port, db_name=db_name
    )
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    config["storage"] = storage["storage"]
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    server.create_database(db_name)
    return {"DAGSTER_HOME": str(home), "DAGSTER_PG_PASSWORD": server.password}


def bin_dir() -> Path:
    """The directory holding initdb and pg_ctl."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name), reverse=True
    ) if Path("/usr/lib/postgresql").is_dir() else []
    if not installed:
        raise PostgresUnavailable(
            "no PostgreSQL server binaries: pg_ctl is not on PATH and /usr/lib/postgresql/<version>/bin "
            "does not exist (install the server, e.g. `apt-get install postgresql`)"
        )
    return installed[0].parent


def _server_user() -> tuple[int, int] | None:
    """(uid, gid) to run the server as when this process is root; None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise PostgresUnavailable("running as root, and neither a `postgres` nor a `nobody` user exists to run the server as")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def postgres_server(durable: bool = True) -> Iterator[PostgresServer]:
    """Start a server, yield it, stop it and delete its files. `durable=False` turns off fsync
    and synchronous commits (fine for tests, whose data is thrown away; not for measuring)."""
    binaries = bin_dir()
    user = _server_user()
    directory = Path(tempfile.mkdtemp(prefix="propensity_pg_"))
    try:
        if user is not None:
            os.chown(directory, *user)
        as_user = {"user": user[0], "group": user[1], "extra_groups": []} if user else {}

        def run(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [str(binaries / args[0]), *args[1:]],
                **as_user,
                cwd=directory,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT_S + 30,
            )

        pwfile = directory / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if user is not None:
            os.chown(pwfile, *user)
        data = directory / "data"
        init = run(
            "initdb", "-D", str(data), "-U", USERNAME, f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale",
            "--auth-local=trust", "--auth-host=scram-sha-256",
        )
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb ({binaries}) failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")

        options = f"-c listen_addresses=127.0.0.1 -c unix_socket_directories={directory}"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        log = directory / "server.log"
        for _attempt in range(3):  # another process may take the free port before the server binds it
            port = _free_port()
            start = run("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", str(START_TIMEOUT_S),
                        "-o", f"-p {port} {options}", "start")
            if start.returncode == 0:
                break
            log_text = log.read_text() if log.exists() else ""
            if "Address already in use" not in log_text:
                break
        if start.returncode != 0:
            raise PostgresUnavailable(
                f"pg_ctl start ({binaries}) failed ({start.returncode}):\n{start.stdout}\n{start.stderr}\n"
                f"--- server log\n{log_text[-4000:]}"
            )
        try:
            yield PostgresServer("127.0.0.1", port, USERNAME, PASSWORD, directory)
        finally:
            if run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop").returncode != 0:
                run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
