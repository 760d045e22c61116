"""A long link in userspace: packets through a TUN device, each written back after a delay.

This kernel has no netem, so the lab makes latency itself. Run in the router namespace as
``python -m lab.delay --device cwdelay --seconds 0.3``: it opens the TUN device (the device
goes when the process does), prints ``READY``, and writes every packet it reads back into the
kernel ``--seconds`` later, in order. The censor routes the traffic to delay into the device
(``lab.censor.Delay``); a packet written back arrives from the device, is routed as usual and
leaves towards its destination.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import signal
import struct
import sys
from typing import Final

READY: Final = "delaying"
_TUNSETIFF: Final = 0x400454CA
_IFF_TUN: Final = 0x0001
_IFF_NO_PI: Final = 0x1000
_MAX_PACKET: Final = 65536


def open_tun(device: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", device.encode(), _IFF_TUN | _IFF_NO_PI))
    return fd


async def relay(fd: int, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    def write_back(packet: bytes) -> None:
        # A full device queue loses the packet, as a real link would.
        with contextlib.suppress(OSError):
            os.write(fd, packet)

    def readable() -> None:
        while True:
            try:
                packet = os.read(fd, _MAX_PACKET)
            except BlockingIOError:
                return
            loop.call_later(seconds, write_back, packet)

    loop.add_reader(fd, readable)
    print(READY, flush=True)
    await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.delay", description=__doc__)
    parser.add_argument("--device", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 10:
        print("lab.delay: --seconds must be in (0, 10]", file=sys.stderr)
        return 2
    asyncio.run(relay(open_tun(args.device), args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
