"""Reading a TLS ClientHello off the wire, sans-I/O, to learn the SNI before answering.

This is what a DPI box does: it sees the first flight in the clear. The handshake message may
span several TLS records and arrive in pieces, so ``parse_client_hello`` is fed the bytes so
far and says whether it has seen enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

_HANDSHAKE: Final = 22
_CLIENT_HELLO: Final = 1
_SERVER_NAME: Final = 0
_HOST_NAME: Final = 0
_MAX_RECORD: Final = 2**14 + 2048


class NotClientHello(ValueError):
    """The bytes are not the start of a TLS handshake with a well-formed ClientHello."""


@dataclass(frozen=True)
class ClientHello:
    sni: str | None
    size: int
    """How many bytes of the stream the records holding the ClientHello took."""


def parse_client_hello(data: bytes) -> ClientHello | None:
    """The ClientHello at the start of ``data``, or ``None`` if more bytes are needed."""
    handshake = bytearray()
    offset = 0
    while len(data) >= offset + 5:
        content_type, major, length = data[offset], data[offset + 1], _uint(data, offset + 3, 2)
        if content_type != _HANDSHAKE or major != 3 or not 0 < length <= _MAX_RECORD:
            raise NotClientHello(f"not a TLS handshake record: {data[offset : offset + 5]!r}")
        end = offset + 5 + length
        if len(data) < end:
            return None
        handshake += data[offset + 5 : end]
        offset = end
        if handshake[0] != _CLIENT_HELLO:
            raise NotClientHello(f"handshake message type {handshake[0]}, not ClientHello")
        if len(handshake) >= 4 and len(handshake) >= 4 + _uint(handshake, 1, 3):
            body = bytes(handshake[4 : 4 + _uint(handshake, 1, 3)])
            return ClientHello(_server_name(body), offset)
    return None


def _server_name(body: bytes) -> str | None:
    cursor = _Cursor(body)
    cursor.take(2 + 32)  # legacy_version, random
    cursor.vector(1)  # legacy_session_id
    cursor.vector(2)  # cipher_suites
    cursor.vector(1)  # legacy_compression_methods
    if cursor.done:
        return None  # a ClientHello without extensions
    extensions = _Cursor(cursor.vector(2))
    while not extensions.done:
        kind, data = _uint(extensions.take(2), 0, 2), extensions.vector(2)
        if kind == _SERVER_NAME:
            return _host_name(_Cursor(_Cursor(data).vector(2)))
    return None


def _host_name(names: _Cursor) -> str | None:
    while not names.done:
        name_type, name = names.take(1)[0], names.vector(2)
        if name_type == _HOST_NAME:
            try:
                return name.decode("ascii")
            except UnicodeDecodeError:
                raise NotClientHello("server name is not ASCII") from None
    return None


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0

    @property
    def done(self) -> bool:
        return self._offset >= len(self._data)

    def take(self, n: int) -> bytes:
        if self._offset + n > len(self._data):
            raise NotClientHello("ClientHello is truncated")
        chunk = self._data[self._offset : self._offset + n]
        self._offset += n
        return chunk

    def vector(self, length_bytes: int) -> bytes:
        return self.take(_uint(self.take(length_bytes), 0, length_bytes))


def _uint(data: bytes | bytearray, offset: int, size: int) -> int:
    return int.from_bytes(data[offset : offset + size], "big")
