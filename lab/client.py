"""Plain client operations run inside a lab namespace: what the tests use to see packets' fate.

Each function enters the namespace in a throwaway thread (``lab.netns``) and reports what
happened as data (an ``Outcome``) rather than raising, so that a test can say "this timed
out" or "this was reset" in one line.
"""

from __future__ import annotations

import errno
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
from cryptography import x509

from lab.netns import call_in

Result = Literal["ok", "timeout", "reset", "refused", "unreachable", "eof", "cert", "error"]
DEFAULT_TIMEOUT: Final = 2.0


@dataclass(frozen=True)
class Outcome:
    result: Result
    detail: str = ""
    seconds: float = 0.0


def classify(exc: BaseException) -> Result:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "cert"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return "eof"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    return "error"


def connect(namespace: str, address: str, port: int, timeout: float = DEFAULT_TIMEOUT) -> Outcome:
    def attempt() -> Outcome:
        started = time.monotonic()
        try:
            with socket.create_connection((address, port), timeout=timeout):
                return Outcome("ok", seconds=time.monotonic() - started)
        except OSError as exc:
            return Outcome(classify(exc), repr(exc), time.monotonic() - started)

    return call_in(namespace, attempt)


def tls_handshake(
    namespace: str,
    address: str,
    sni: str,
    ca_file: Path | None,
    port: int = 443,
    timeout: float = DEFAULT_TIMEOUT,
) -> Outcome:
    """A handshake verified against ``ca_file``; without one, unverified (detail: issuer)."""

    def attempt() -> Outcome:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        if ca_file is None:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        started = time.monotonic()
        try:
            with (
                socket.create_connection((address, port), timeout=timeout) as raw,
                context.wrap_socket(raw, server_hostname=sni) as tls,
            ):
                der = tls.getpeercert(binary_form=True) or b""
                return Outcome("ok", _issuer(der), time.monotonic() - started)
        except OSError as exc:
            return Outcome(classify(exc), repr(exc), time.monotonic() - started)

    return call_in(namespace, attempt)


def _issuer(der: bytes) -> str:
    if not der:
        return ""
    return x509.load_der_x509_certificate(der).issuer.rfc4514_string()


def http_get(
    namespace: str, address: str, host: str, path: str = "/", timeout: float = DEFAULT_TIMEOUT
) -> Outcome:
    """A plain HTTP/1.1 GET; detail holds the whole response."""

    def attempt() -> Outcome:
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        started = time.monotonic()
        try:
            with socket.create_connection((address, 80), timeout=timeout) as sock:
                sock.sendall(request.encode())
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            return Outcome(classify(exc), repr(exc), time.monotonic() - started)
        text = b"".join(chunks).decode(errors="replace")
        return Outcome("ok", text, time.monotonic() - started)

    return call_in(namespace, attempt)


@dataclass(frozen=True)
class DNSResult:
    """Every response that arrived for one query within the listening window, in order."""

    rcodes: tuple[str, ...]
    answers: tuple[tuple[str, ...], ...]

    @property
    def first(self) -> tuple[str, ...]:
        return self.answers[0] if self.answers else ()


def dns_query(
    namespace: str, server: str, name: str, listen: float = DEFAULT_TIMEOUT, responses: int = 1
) -> DNSResult:
    """Send one A query over UDP; collect responses for ``listen`` seconds or until the
    ``responses``-th (ask for more than one to see an injected answer and the real one)."""

    def ask() -> DNSResult:
        query = dns.message.make_query(name, "A")
        rcodes: list[str] = []
        answers: list[tuple[str, ...]] = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((server, 53))
            sock.send(query.to_wire())
            deadline = time.monotonic() + listen
            while len(rcodes) < responses and (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    wire = sock.recv(65535)
                except (TimeoutError, ConnectionRefusedError):
                    break
                try:
                    response = dns.message.from_wire(wire)
                except dns.exception.DNSException:
                    continue
                if response.id != query.id:
                    continue
                rcodes.append(dns.rcode.to_text(response.rcode()))
                answers.append(_addresses(response))
        return DNSResult(tuple(rcodes), tuple(answers))

    return call_in(namespace, ask)


def _addresses(response: dns.message.Message) -> tuple[str, ...]:
    return tuple(
        item.to_text()
        for rrset in response.answer
        if rrset.rdtype == dns.rdatatype.A
        for item in rrset
    )
