"""A stop that arrives just as a loop is woken still stops the daemon.

On Python 3.11, ``asyncio.wait_for`` returns the awaited result and drops a cancellation that
lands in the same turn of the event loop as the result: a daemon loop woken by a finished
round at the moment SIGTERM cancels it would go round again and never exit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from probe.daemon import config as settings
from probe.daemon.client import CollectorClient
from probe.daemon.schedule import Plan, Scheduler
from probe.daemon.service import Daemon, Options
from probe.daemon.state import StateDir
from probe.daemon.upload import Uploader


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    client = CollectorClient("http://127.0.0.1:9")  # never reached: the spool stays empty
    options = Options(
        "http://127.0.0.1:9", StateDir(tmp_path / "state").ensure(), settings.Config()
    )
    daemon = Daemon(options, client)
    daemon.scheduler = Scheduler(Plan(interval=3600.0), {}, time.monotonic())
    daemon.uploader = Uploader(daemon.spool, client, "token", 10, daemon.backoff, daemon.rng)
    yield daemon
    await daemon.close()
    await client.close()


async def _settled(task: asyncio.Task[None]) -> None:
    """A few turns of the loop: enough for a cancelled task to unwind, and no wall clock."""
    for _ in range(20):
        if task.done():
            return
        await asyncio.sleep(0)


async def test_a_stop_as_the_measure_loop_is_woken_is_not_lost(daemon: Daemon) -> None:
    task = asyncio.create_task(daemon._sleep_until_due())
    await _settled(task)
    assert not task.done()  # asleep until the next round or a change of targets
    daemon.targets_changed.set()  # a round finished ...
    task.cancel()  # ... in the same turn as the stop
    await _settled(task)
    assert task.cancelled()


async def test_a_stop_as_the_upload_loop_is_woken_is_not_lost(daemon: Daemon) -> None:
    task = asyncio.create_task(daemon._upload_loop())
    await _settled(task)
    assert not task.done()  # the spool is empty: idle until woken
    daemon.wake_uploader.set()
    task.cancel()
    await _settled(task)
    stopped = task.cancelled()
    task.cancel()  # leave nothing running behind a failure
    await asyncio.gather(task, return_exceptions=True)
    assert stopped
