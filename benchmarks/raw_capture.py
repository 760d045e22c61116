"""What raw-packet capture costs a probe: exchanges on loopback with and without it.

    python -m benchmarks.raw_capture [--exchanges 200] [--concurrency 1 20]

A loopback TCP server answers each connection with a few bytes and closes. The probe's
network seam (``SocketNetwork``) makes the same exchanges with ``raw=False`` and, where this
process holds CAP_NET_RAW, with ``raw=True`` (a capture per flow, BPF narrowed to it). It
prints the wall time per exchange, the median exchange time and the packets recorded.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from probe.measure import raw
from probe.measure.network import Exchange
from probe.measure.sockets import SocketNetwork


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"hello\n")
    await writer.drain()
    writer.close()


async def run(exchanges: int, concurrency: int, capture: bool) -> tuple[float, float, float]:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    network = SocketNetwork(raw=capture)
    limit = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    times: list[float] = []
    recorded = 0

    async def one() -> None:
        nonlocal recorded
        async with limit:
            started = loop.time()
            tcp, _, _ = await network.exchange(Exchange(ip="127.0.0.1", port=port), started)
            times.append(loop.time() - started)
            recorded += len(tcp.packets)

    async with server:
        wall = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(exchanges)))
        wall = time.perf_counter() - wall
    return wall / exchanges, statistics.median(times), recorded / exchanges


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--exchanges", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 20])
    args = parser.parse_args(argv)
    modes = [False, True] if raw.available() else [False]
    if not raw.available():
        print("no CAP_NET_RAW (or no scapy): only the uncaptured rows")
    print(f"{'capture':>8} {'conc':>5} {'wall ms/exchange':>17} {'median ms':>10} {'packets':>8}")
    for concurrency in args.concurrency:
        for capture in modes:
            wall, median, packets = asyncio.run(run(args.exchanges, concurrency, capture))
            print(
                f"{'raw' if capture else 'none':>8} {concurrency:>5} {wall * 1000:>17.2f} "
                f"{median * 1000:>10.2f} {packets:>8.1f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
