"""From an ingest request body to a list of undecoded items, within limits.

Nothing here trusts the body: gzip is inflated in bounded steps so a small bomb cannot
allocate more than the decompressed limit, the framing (JSON array or NDJSON) is checked
before any item is looked at, and items stay raw so that one bad item is rejected alone.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final, Literal

import msgspec

from collector.api.errors import APIError

Framing = Literal["array", "ndjson"]
_CHUNK: Final = 256 * 1024
_NDJSON_TYPES: Final = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"}
)
_JSON_TYPES: Final = frozenset({"application/json", ""})
_raw_list: Final = msgspec.json.Decoder(list[msgspec.Raw])


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    max_decompressed_bytes: int
    max_batch_items: int


def _too_large(what: str, limit: int) -> APIError:
    return APIError(413, "payload_too_large", f"{what} exceeds the limit", limit=limit)


def gunzip(body: bytes, limit: int) -> bytes:
    """Inflate gzip (one or more members) without ever holding more than ``limit`` bytes."""
    out = bytearray()
    data = body
    while data:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            while data:
                out += inflater.decompress(data, min(_CHUNK, limit + 1 - len(out)))
                if len(out) > limit:
                    raise _too_large("decompressed body", limit)
                data = inflater.unconsumed_tail
                if inflater.eof:
                    break
            if not inflater.eof:
                # Input is used up; what zlib still holds is at most one window (32 KiB).
                out += inflater.flush()
                if len(out) > limit:
                    raise _too_large("decompressed body", limit)
            if not inflater.eof:
                raise APIError(400, "bad_gzip", "gzip stream is truncated")
        except zlib.error as exc:
            raise APIError(400, "bad_gzip", f"invalid gzip data: {exc}") from exc
        data = inflater.unused_data
    return bytes(out)


def decode_content(body: bytes, encoding: str | None, limit: int) -> bytes:
    coding = (encoding or "identity").strip().lower()
    if coding in ("gzip", "x-gzip"):
        return gunzip(body, limit)
    if coding == "identity":
        if len(body) > limit:
            raise _too_large("body", limit)
        return body
    raise APIError(
        415, "unsupported_encoding", f"Content-Encoding {encoding!r} not supported; use gzip"
    )


def framing_of(content_type: str, data: bytes) -> Framing:
    if content_type in _NDJSON_TYPES:
        return "ndjson"
    if content_type not in _JSON_TYPES:
        raise APIError(
            415,
            "unsupported_media_type",
            f"Content-Type {content_type!r} not supported; "
            "send application/json (an array) or application/x-ndjson",
        )
    return "array" if data.lstrip()[:1] == b"[" else "ndjson"


def split_array(data: bytes) -> list[msgspec.Raw]:
    try:
        return _raw_list.decode(data)
    except RecursionError as exc:
        raise APIError(400, "bad_json", "JSON nested too deeply") from exc
    except msgspec.ValidationError as exc:
        raise APIError(400, "bad_json", f"expected a JSON array of measurements: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise APIError(400, "bad_json", f"invalid JSON: {exc}") from exc


def split_ndjson(data: bytes, max_items: int) -> list[msgspec.Raw]:
    items: list[msgspec.Raw] = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        if len(items) == max_items:
            raise _too_large("number of items in the batch", max_items)
        items.append(msgspec.Raw(line))
    return items


@dataclass(frozen=True)
class Batch:
    """A batch's items, undecoded, with the (decompressed) data they were split from."""

    data: bytes
    framing: Framing
    items: list[msgspec.Raw]


def read_batch(body: bytes, content_type: str, encoding: str | None, limits: Limits) -> Batch:
    """The batch; raises APIError (4xx) for anything but a usable batch."""
    data = decode_content(body, encoding, limits.max_decompressed_bytes)
    framing = framing_of(content_type, data)
    items = split_ndjson(data, limits.max_batch_items) if framing == "ndjson" else split_array(data)
    if len(items) > limits.max_batch_items:
        raise _too_large("number of items in the batch", limits.max_batch_items)
    if not items:
        raise APIError(400, "empty_batch", "the batch holds no measurements")
    return Batch(data, framing, items)


def split_batch(
    body: bytes, content_type: str, encoding: str | None, limits: Limits
) -> list[msgspec.Raw]:
    """The batch's items, undecoded; raises APIError (4xx) for anything but a usable batch."""
    return read_batch(body, content_type, encoding, limits).items
