"""Long-running lab processes (resolvers, servers, the injector), each inside a namespace.

Each runs in its own session so that it can be stopped with its children, and logs to a file
in the lab's state directory, whose tail is quoted if it dies before it is ready.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lab.paths import REPO_ROOT, checkout_env
from lab.shell import in_netns


class LabProcessError(RuntimeError):
    """A lab process that died or never became ready; carries the end of its log."""

    def __init__(self, name: str, problem: str, log_tail: str) -> None:
        self.name = name
        self.log_tail = log_tail
        super().__init__(f"{name}: {problem}\n--- last lines of its log ---\n{log_tail}")


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


class LabProcess:
    def __init__(self, name: str, namespace: str, argv: Sequence[str], log_dir: Path) -> None:
        self.name = name
        self.namespace = namespace
        self.argv = list(argv)
        self.log = log_dir / f"{name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = checkout_env()
        env["PYTHONUNBUFFERED"] = "1"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                in_netns(self.namespace, self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env=env,
                start_new_session=True,
            )

    def wait_ready(self, ready: Callable[[], bool], timeout: float = 15.0) -> None:
        """Poll ``ready`` until it is true; fail early, with the log, if the process exits."""
        deadline = time.monotonic() + timeout
        while True:
            code = self._process.poll() if self._process else None
            if code is not None:
                raise LabProcessError(self.name, f"exited {code} before it was ready", self.tail())
            if ready():
                return
            if time.monotonic() > deadline:
                raise LabProcessError(self.name, f"not ready after {timeout:.0f}s", self.tail())
            time.sleep(0.05)

    def stop(self, grace: float = 3.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(grace)

    def signal(self, signum: signal.Signals) -> None:
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signum)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
