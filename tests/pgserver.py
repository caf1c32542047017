"""A throwaway PostgreSQL server on 127.0.0.1 for the tests, run from Debian's binaries."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg


def find_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/<n>/bin holding initdb and pg_ctl, if any."""
    found = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return next((b for b in reversed(found) if (b / "pg_ctl").exists()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """``initdb`` + ``pg_ctl start`` in ``root``; as root, the server runs as ``postgres``
    (PostgreSQL refuses to run as root). ``stop()`` stops it by its postmaster PID."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self._count = 0
        self._user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._user:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._user:
            shutil.chown(self.root, self._user)
        self._run("initdb", "-D", str(self.data), "-U", "watcher", "--auth=trust", "-E", "UTF8")
        self._options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._log = str(self.root / "server.log")
        self._pg_start()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=5):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def dsn(self, database: str) -> str:
        return f"postgresql://watcher@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> str:
        """A SQLAlchemy URL for ``database``."""
        return f"postgresql+psycopg://watcher@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh empty database; returns its SQLAlchemy URL."""
        self._count += 1
        name = f"t{os.getpid()}_{self._count}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def pid(self) -> int | None:
        pidfile = self.data / "postmaster.pid"
        if not pidfile.exists():
            return None
        return int(pidfile.read_text().splitlines()[0])

    def stop(self) -> None:
        """Fast shutdown: SIGINT to the postmaster's PID, then wait for it to go."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 60
        while self.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.1)

    def restart(self) -> None:
        """Stop and start again on the same port and data (for outage tests)."""
        self.stop()
        self._pg_start()

    def _pg_start(self) -> None:
        data, opts, log = str(self.data), self._options, self._log
        self._run("pg_ctl", "-D", data, "-o", opts, "-l", log, "-w", "start")
        self._wait_ready()
