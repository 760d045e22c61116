"""A throwaway PostgreSQL cluster for tests, benchmarks and demonstrations.

It lives in a temporary directory, listens on 127.0.0.1 on a free port and on a private
unix socket, trusts local connections, and is deleted on stop. PostgreSQL refuses to run
as root, so under root the server runs as an unprivileged system user (``postgres`` if
present, else ``nobody``) that owns the directory.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from collector.demo.servers.base import free_port

DEFAULT_BINDIR: Final = Path("/usr/lib/postgresql/15/bin")
SUPERUSER: Final = "postgres"
_SERVER_SETTINGS: Final = (
    "listen_addresses=127.0.0.1",
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=200",
    "shared_buffers=256MB",
)


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL binaries are not installed where expected."""

    def __init__(self, missing: Path) -> None:
        self.missing = missing
        super().__init__(f"PostgreSQL binary not found: {missing}")


class ClusterError(RuntimeError):
    """A cluster command failed; carries the command and its output."""

    def __init__(self, command: list[str], output: str) -> None:
        self.command = command
        self.output = output
        super().__init__(f"{' '.join(command)} failed:\n{output}")


def _server_account() -> pwd.struct_passwd | None:
    """The account to run the server as; None means this process's own."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ClusterError(["getpwnam"], "running as root and no 'postgres' or 'nobody' account")


class ThrowawayCluster:
    def __init__(self, bindir: Path = DEFAULT_BINDIR) -> None:
        for binary in ("initdb", "pg_ctl", "postgres", "psql"):
            if not (bindir / binary).exists():
                raise PostgresUnavailable(bindir / binary)
        self.bindir = bindir
        self.account = _server_account()
        self.root = Path(tempfile.mkdtemp(prefix="censorwatch-pg-"))
        self.port = free_port()
        self.socket_dir = self.root / "sock"
        self.data_dir = self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> str:
        command = [str(self.bindir / args[0]), *args[1:]]
        account = self.account
        result = subprocess.run(
            command,
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
            user=account.pw_uid if account else None,
            group=account.pw_gid if account else None,
            extra_groups=[] if account else None,
            timeout=120,
        )
        if result.returncode != 0:
            raise ClusterError(command, result.stdout + result.stderr)
        return result.stdout

    def start(self) -> None:
        self.socket_dir.mkdir()
        if self.account is not None:
            for path in (self.root, self.socket_dir):
                os.chown(path, self.account.pw_uid, self.account.pw_gid)
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        options = " ".join(f"-c {s}" for s in _SERVER_SETTINGS)
        options += f" -p {self.port} -k {self.socket_dir}"
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.root / "server.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def sql(self, statement: str, database: str = "postgres") -> str:
        return self._run(
            "psql", "-h", str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER,
            "-d", database, "-v", "ON_ERROR_STOP=1", "-tA", "-c", statement,
        )  # fmt: skip

    def create_database(self, name: str, template: str | None = None) -> str:
        suffix = f" TEMPLATE {template}" if template else ""
        self.sql(f'CREATE DATABASE "{name}"{suffix}')
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
            if (self.data_dir / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    @contextlib.contextmanager
    def running(self) -> Iterator[ThrowawayCluster]:
        try:
            self.start()
            yield self
        finally:
            self.stop()
