"""What hostile batches cost the collector now: CPU and peak memory per request shape.

    python -m benchmarks.collector_hostile

Prints, for each shape a single probe token can send, the seconds of CPU the payload
stage takes and its peak allocation, beside the quadratic gzip inflation the collector
used before (re-slicing the remaining body per member), measured on the same input.
"""

from __future__ import annotations

import gzip
import time
import tracemalloc
import zlib
from collections.abc import Callable

import msgspec

from collector.api.errors import APIError
from collector.ingest.measurements import ContextIndex
from collector.ingest.payload import Limits, gunzip, split_batch
from collector.store.rollups import ContextRow

LIMITS = Limits(16 << 20, 16 << 20, 5000)


def quadratic_gunzip(body: bytes) -> int:
    """The earlier loop's shape: one decompressor per member, fed the whole remaining body."""
    data, total = body, 0
    while data:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        total += len(inflater.decompress(data))
        data = inflater.unused_data
    return total


def measure(name: str, work: Callable[[], object]) -> None:
    tracemalloc.start()
    started = time.process_time()
    try:
        work()
        outcome = "accepted"
    except APIError as exc:
        outcome = f"{exc.status} {exc.code}"
    seconds = time.process_time() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"{name:<52} {seconds:8.3f} s CPU  {peak / 2**20:8.1f} MiB peak  {outcome}")


def main() -> None:
    members = gzip.compress(b"") * 100_000
    for count in (1_000, 10_000, 50_000):
        part = gzip.compress(b"") * count
        measure(
            f"before: {count:,} empty gzip members (quadratic)", lambda p=part: quadratic_gunzip(p)
        )
    measure("now: 100,000 empty gzip members (2 MB)", lambda: gunzip(members, 16 << 20))
    array = b"[" + b"0," * ((8 << 20) - 2) + b"0]"  # just under the 16 MiB limit
    whole = msgspec.json.Decoder(list[msgspec.Raw])
    measure("before: 16 MiB JSON array, materialised first", lambda: whole.decode(array))
    measure(
        "now: 16 MiB JSON array of 8 million zeros", lambda: split_batch(array, "", None, LIMITS)
    )
    blank = b"\n" * (16 << 20)
    measure(
        "now: 16 MiB of blank NDJSON lines",
        lambda: split_batch(blank, "application/x-ndjson", None, LIMITS),
    )
    rows = [ContextRow("telegram", h, asn, False, "ok", 1) for h in range(20_000) for asn in (1, 2)]

    def lookups() -> None:
        index = ContextIndex(rows)
        for hour in range(0, 20_000, 4):
            index.vantages("telegram", hour)

    measure("now: context for 5,000 distinct hours, 40,000 rows", lookups)


if __name__ == "__main__":
    main()
