"""``censorwatch serve`` with ``workers`` above 1: that many collector processes on one port.

One Python process decodes, judges and writes on one core; the database, on another, was
waiting for it (``benchmarks/collector_ingest``). Each worker is a replica in every sense
the collector already supports (PostgreSQL only): idempotent ingest, rollups counted once,
claims on outbox rows and event sources, one detector at a time. The kernel spreads new
connections over the workers (``SO_REUSEPORT``), so a probe's uploads may land on any.

What stays per worker is what stays per replica: the rate limits (a probe gets at most
``workers`` times its budget, which bounds it all the same), ``ingest_batches_in_flight``
and the database pool. The detector and webhook delivery run in the first worker only (the
detector keeps its state decoded in memory between cycles; alternating workers would decode
it afresh each time); every worker polls event sources, which keeps each worker's source
gauges current, and a source is still fetched once per interval. ``/metrics`` from any
worker sums every worker's instruments (prometheus_client's multiprocess mode over a
directory this supervisor makes), so one scrape target is one collector host.

The supervisor starts the first worker, waits until it listens (it migrates the schema and
creates the admin token, so the others never race it), then the rest. SIGTERM or SIGINT is
passed on, and each worker finishes its requests in flight. A worker that ends on its own
ends the others too, with a non-zero status, for systemd or Kubernetes to restart the lot.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.context import SpawnContext, SpawnProcess
from types import FrameType
from typing import Any, Final

from collector.config import Config

METRICS_DIRECTORY: Final = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client reads it at import
_READY_SECONDS: Final = 300.0  # migrations on a large database take a while
_GRACE_SECONDS: Final = 15.0  # beyond shutdown_timeout_seconds before a worker is killed


@dataclass(frozen=True)
class Worker:
    """Which worker this process is; ``ready`` is set once it listens."""

    index: int
    count: int
    ready: Any  # a multiprocessing Event

    @property
    def primary(self) -> bool:
        """The worker that runs the detector and webhook delivery."""
        return self.index == 0

    def __str__(self) -> str:
        return f"worker {self.index + 1} of {self.count}"


def _say(message: str) -> None:
    print(f"censorwatch: {message}", file=sys.stderr, flush=True)


def _worker_main(config: Config, worker: Worker) -> None:
    from collector import cli  # in the spawned process: the supervisor imports none of it

    sys.exit(cli.run_worker(config, worker))


class _Supervisor:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.context: SpawnContext = multiprocessing.get_context("spawn")
        self.processes: list[SpawnProcess] = []
        self.ready: list[Any] = []  # held: a child unpickles its Event after start() returns
        self.stopping = False

    def stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def start(self, index: int) -> tuple[SpawnProcess, Any]:
        ready = self.context.Event()
        worker = Worker(index, self.config.workers, ready)
        process = self.context.Process(
            target=_worker_main, args=(self.config, worker), name=f"censorwatch-{worker}"
        )
        process.start()
        self.processes.append(process)
        self.ready.append(ready)
        return process, ready

    def wait_listening(self, process: SpawnProcess, ready: Any) -> bool:
        """Until the worker listens; False if it ended first or the wait was cut short."""
        waited = 0.0
        while not self.stopping and process.is_alive() and waited < _READY_SECONDS:
            if ready.wait(0.2):
                return True
            waited += 0.2
        if not self.stopping and process.is_alive():
            _say(f"the first worker did not listen within {_READY_SECONDS:.0f} s")
        return False

    def watch(self) -> int:
        """Until a signal (0) or a worker that ends on its own (1)."""
        while not self.stopping:
            ended = multiprocessing.connection.wait([p.sentinel for p in self.processes], 0.5)
            if ended and not self.stopping:
                for process in self.processes:
                    if process.sentinel in ended:
                        process.join(5)  # its pipe closes a moment before it can be reaped
                        _say(f"{process.name} exited with status {process.exitcode}; stopping")
                return 1
        return 0

    def shut_down(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: the worker finishes its requests in flight
        deadline = self.config.shutdown_timeout_seconds + _GRACE_SECONDS
        for process in self.processes:
            process.join(deadline)
            if process.is_alive():
                _say(f"{process.name} did not stop in {deadline:.0f} s; killing it")
                process.kill()
                process.join()


def supervise(config: Config) -> int:
    """Run ``config.workers`` workers until SIGTERM or SIGINT; the exit status."""
    directory = tempfile.mkdtemp(prefix="censorwatch-metrics-")
    os.environ[METRICS_DIRECTORY] = directory  # inherited by every spawned worker
    supervisor = _Supervisor(config)
    previous: dict[signal.Signals, Callable[..., Any] | int | None] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, supervisor.stop)
    try:
        first, ready = supervisor.start(0)
        if not supervisor.wait_listening(first, ready):
            code = 0 if supervisor.stopping else (first.exitcode or 1)
            return code
        for index in range(1, config.workers):
            supervisor.start(index)
        return supervisor.watch()
    finally:
        supervisor.shut_down()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        del os.environ[METRICS_DIRECTORY]
        shutil.rmtree(directory, ignore_errors=True)
