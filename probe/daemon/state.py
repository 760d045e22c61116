"""The probe's state directory: credentials, consent, the last check-in and the spool.

Default: ``$STATE_DIRECTORY`` (set by systemd's ``StateDirectory=``), else
``/var/lib/censorwatch-probe`` for root, else ``$XDG_STATE_HOME/censorwatch-probe``
(``~/.local/state`` when unset). The directory is 0700 and the credentials file 0600: the
token lets anyone upload in this probe's name.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

SYSTEM_DIR: Final = Path("/var/lib/censorwatch-probe")
APP: Final = "censorwatch-probe"


class StateError(Exception):
    """The state directory cannot be used; the message says why and where."""


def default_dir(environ: Mapping[str, str] = os.environ, euid: int | None = None) -> Path:
    if environ.get("STATE_DIRECTORY"):
        return Path(environ["STATE_DIRECTORY"].split(":")[0])
    if (os.geteuid() if euid is None else euid) == 0:
        return SYSTEM_DIR
    base = environ.get("XDG_STATE_HOME") or str(Path(environ.get("HOME", "~")) / ".local/state")
    return Path(base).expanduser() / APP


@dataclass(frozen=True)
class Credentials:
    collector: str
    probe_id: str
    token: str
    enrolment_sha256: str | None = None  # which enrolment token made this probe
    revoked_at: str | None = None  # when the collector refused ``token``, if it has


class StateDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    def ensure(self) -> StateDir:
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            if stat.S_IMODE(self.path.stat().st_mode) & 0o077:
                self.path.chmod(0o700)
        except OSError as exc:
            raise StateError(f"state directory {self.path}: {exc.strerror or exc}") from exc
        return self

    @property
    def spool_path(self) -> Path:
        return self.path / "spool.sqlite3"

    def read_json(self, name: str) -> dict[str, Any] | None:
        try:
            value = json.loads((self.path / name).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StateError(f"{self.path / name}: unreadable ({exc})") from exc
        return value if isinstance(value, dict) else None

    def write_json(self, name: str, value: Mapping[str, Any]) -> None:
        """Atomically and durably: a crash leaves the old file or the new one, never half."""
        target = self.path / name
        temporary = target.with_suffix(".tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(value, out, indent=1)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except OSError:
            temporary.unlink(missing_ok=True)  # a full disk leaves no half-written file
            raise
        directory = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def credentials(self, collector: str) -> Credentials | None:
        """Stored credentials, if they belong to this collector."""
        raw = self.read_json("credentials.json")
        if raw is None or raw.get("collector") != collector:
            return None
        return Credentials(
            collector,
            str(raw["probe_id"]),
            str(raw["token"]),
            _text(raw.get("enrolment_sha256")),
            _text(raw.get("revoked_at")),
        )

    def save_credentials(self, credentials: Credentials) -> None:
        self.write_json(
            "credentials.json",
            {
                "collector": credentials.collector,
                "probe_id": credentials.probe_id,
                "token": credentials.token,
                "enrolment_sha256": credentials.enrolment_sha256,
                "revoked_at": credentials.revoked_at,
            },
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
