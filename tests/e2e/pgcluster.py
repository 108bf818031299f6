"""A PostgreSQL cluster of a test's own, so the test can stop and start the server under the bot.

The suite's shared server (scripts/with-postgres) must not be restarted: other tests use it.
This makes a throw-away cluster the same way (initdb, trust auth, loopback only, durability
off), on a free port, in a directory of its own that is removed afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import suppress
from pathlib import Path

__all__ = ["PostgresCluster", "postgres_binaries"]


def postgres_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None when none is installed."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name or 0)
    )
    for directory in reversed(found):
        if (Path(directory) / "initdb").exists():
            return Path(directory)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresCluster:
    """initdb + pg_ctl on a free loopback port; `stop`/`start` to take the server away."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.port = _free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="hearback-pg-restart."))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self._as_root = os.getuid() == 0
        if self._as_root:  # PostgreSQL refuses to run as root
            shutil.chown(self.directory, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.binaries / program), *args]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{program} failed: {result.stderr}\n{log}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start",
            "-o", options,
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """ "fast" ends every session (clients see their connections dropped), as a restart by
        an operator or a failover does; "immediate" is a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def remove(self) -> None:
        with suppress(RuntimeError):  # not running
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)
