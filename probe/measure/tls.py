"""TLS handshakes driven by hand over a TCP stream, and the certificate facts they yield.

The handshake runs through ``ssl.MemoryBIO`` so that the probe sees exactly what the
network did: an empty read is an EOF, a ``ConnectionResetError`` is a reset, silence is a
timeout. asyncio's own TLS layer folds some of these together.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from probe.model import Certificate

_READ_SIZE = 65536
_DER = 2  # _ssl.ENCODING_DER: the C certificate objects' public_bytes format for DER


class HandshakeEOF(EOFError):
    """The peer closed the connection before the handshake finished."""


@dataclass(frozen=True)
class Contexts:
    """The SSL contexts a probe run needs, built once."""

    verify_name: ssl.SSLContext  # chain and host name, as a client would
    verify_chain: ssl.SSLContext  # chain only: for the control SNI, whose name will not match
    insecure: ssl.SSLContext  # nothing: to record a certificate that failed verification

    @classmethod
    def build(cls, ca_file: Path | None = None) -> Contexts:
        verify_name = _client_context(ca_file)
        verify_chain = _client_context(ca_file)
        verify_chain.check_hostname = False
        insecure = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no trust store to load
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        insecure.set_alpn_protocols(["http/1.1"])
        return cls(verify_name, verify_chain, insecure)


def _client_context(ca_file: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    context.set_alpn_protocols(["http/1.1"])
    return context


async def handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    context: ssl.SSLContext,
    server_name: str | None,
) -> TLSChannel:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=False, server_hostname=server_name)
    channel = TLSChannel(reader, writer, tls, incoming, outgoing)
    while True:
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            await channel.flush()
            await channel.receive()
            continue
        await channel.flush()
        return channel


@dataclass
class TLSChannel:
    """An established TLS session over a stream, for an HTTP request after the handshake."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    tls: ssl.SSLObject
    incoming: ssl.MemoryBIO
    outgoing: ssl.MemoryBIO
    ended: bool = False

    async def flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def receive(self) -> None:
        data = await self.reader.read(_READ_SIZE)
        if not data:
            raise HandshakeEOF("peer closed the connection")
        self.incoming.write(data)

    async def send(self, payload: bytes) -> None:
        self.tls.write(payload)
        await self.flush()

    async def read(self) -> bytes:
        """Application data, or b'' at a clean end of stream."""
        while True:
            try:
                return self.tls.read(_READ_SIZE)
            except ssl.SSLWantReadError:
                data = await self.reader.read(_READ_SIZE)
                if not data:
                    return b""
                self.incoming.write(data)
            except ssl.SSLZeroReturnError:
                return b""

    async def discard(self) -> int:
        """Take what the network delivers next and throw its content away: the number of
        bytes that arrived (TLS framing included), 0 at the end of the stream. For a
        throughput measurement, which must count bytes as they arrive: a record is readable
        only once it is whole, and at 128 kbit/s a 16 KiB record takes a second to come."""
        if self.ended:
            return 0
        data = await self.reader.read(_READ_SIZE)
        if not data:
            return 0
        self.incoming.write(data)
        try:
            while self.tls.read(_READ_SIZE):
                pass
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            self.ended = True  # close_notify: the server has sent everything
        return len(data)

    @property
    def version(self) -> str | None:
        return self.tls.version()

    def certificate(self) -> Certificate | None:
        der = self.tls.getpeercert(binary_form=True)
        return certificate_facts(der) if der else None

    def chain(self) -> list[Certificate]:
        """The certificates the server sent after its own, as sent (unverified): where an
        interception CA shows its name. Empty where the ssl module cannot say."""
        presented = _unverified_chain(self.tls)
        return [certificate_facts(der) for der in presented[1:_MAX_CHAIN]]


_MAX_CHAIN = 8


def _unverified_chain(tls: ssl.SSLObject) -> list[bytes]:
    # Public from Python 3.13; the same method of the C object before that.
    getter = getattr(tls, "get_unverified_chain", None) or getattr(
        getattr(tls, "_sslobj", None), "get_unverified_chain", None
    )
    if getter is None:
        return []
    try:
        chain = getter() or []
    except (ssl.SSLError, ValueError):
        return []
    return [c if isinstance(c, bytes) else c.public_bytes(_DER) for c in chain]


@functools.lru_cache(maxsize=1024)
def certificate_facts(der: bytes) -> Certificate:
    """Facts of a DER certificate (cached: many endpoints share a certificate)."""
    sha256 = hashlib.sha256(der).hexdigest()
    sha1 = hashlib.sha1(der, usedforsecurity=False).hexdigest()
    try:
        cert = x509.load_der_x509_certificate(der)
        return Certificate(
            sha256=sha256,
            subject=cert.subject.rfc4514_string()[:512],
            issuer=cert.issuer.rfc4514_string()[:512],
            not_before=_iso(cert.not_valid_before_utc),
            not_after=_iso(cert.not_valid_after_utc),
            san=_names(cert)[:32],
            sha1=sha1,
        )
    except Exception:  # a certificate a middlebox made can be malformed in any way
        return Certificate(
            sha256=sha256, subject="?", issuer="?", not_before="?", not_after="?", sha1=sha1
        )


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _names(cert: x509.Certificate) -> list[str]:
    try:
        extension = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return []
    san = extension.value
    assert isinstance(san, x509.SubjectAlternativeName)
    names: list[str] = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    names += [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    return [n[:255] for n in names]
