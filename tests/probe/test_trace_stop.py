"""A trace stopped while it tidies up stops: its cancellation is not taken for its helper's."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from probe.measure.trace import IcmpListener


@pytest.mark.skipif(os.geteuid() != 0, reason="a raw ICMP socket needs root (CI runs as root)")
async def test_a_stop_while_the_icmp_listener_closes_is_not_lost() -> None:
    listener = IcmpListener(socket.AF_INET)
    listener.start()
    await asyncio.sleep(0)  # the reader is waiting for a packet
    closing = asyncio.create_task(listener.close())
    await asyncio.sleep(0)  # close has cancelled the reader and waits for it to end
    closing.cancel()  # the round is stopped just then
    await asyncio.gather(closing, return_exceptions=True)
    assert closing.cancelled()
    assert listener.sock.fileno() == -1  # closed all the same
