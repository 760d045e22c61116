"""The one table that maps platform errors onto the failure vocabulary (``probe.vocabulary``).

Strings follow OONI's df-007 data format so researchers can read them without a glossary.
Platform error text (errno messages, OpenSSL reasons) never leaves this module: whatever the
operating system says is reduced to one of these names.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
from typing import Final

from probe.vocabulary import (
    CONNECTION_ABORTED,
    CONNECTION_REFUSED,
    CONNECTION_RESET,
    EOF_ERROR,
    GENERIC_TIMEOUT,
    HOST_UNREACHABLE,
    NETWORK_UNREACHABLE,
    SSL_FAILED_HANDSHAKE,
    SSL_INVALID_CERTIFICATE,
    SSL_INVALID_HOSTNAME,
    SSL_UNKNOWN_AUTHORITY,
    UNKNOWN,
)

TIMEOUTS: Final = frozenset({GENERIC_TIMEOUT})

_ERRNO: Final[dict[int, str]] = {
    errno.ETIMEDOUT: GENERIC_TIMEOUT,
    errno.ECONNREFUSED: CONNECTION_REFUSED,
    errno.ECONNRESET: CONNECTION_RESET,
    errno.EPIPE: CONNECTION_RESET,
    errno.ECONNABORTED: CONNECTION_ABORTED,
    errno.EHOSTUNREACH: HOST_UNREACHABLE,
    errno.EHOSTDOWN: HOST_UNREACHABLE,
    errno.ENETUNREACH: NETWORK_UNREACHABLE,
    errno.ENETDOWN: NETWORK_UNREACHABLE,
    errno.EADDRNOTAVAIL: NETWORK_UNREACHABLE,
    errno.EAFNOSUPPORT: NETWORK_UNREACHABLE,
}

# X509_V_ERR_* codes from OpenSSL's x509_vfy.h.
_VERIFY_CODE: Final[dict[int, str]] = {
    2: SSL_UNKNOWN_AUTHORITY,  # unable to get issuer certificate
    18: SSL_UNKNOWN_AUTHORITY,  # self-signed leaf
    19: SSL_UNKNOWN_AUTHORITY,  # self-signed certificate in chain
    20: SSL_UNKNOWN_AUTHORITY,  # unable to get local issuer certificate
    21: SSL_UNKNOWN_AUTHORITY,  # unable to verify the first certificate
    62: SSL_INVALID_HOSTNAME,  # hostname mismatch
    64: SSL_INVALID_HOSTNAME,  # IP address mismatch
}


def from_exception(exc: BaseException) -> str:
    """Reduce an exception raised by a network operation to a failure string."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _VERIFY_CODE.get(exc.verify_code, SSL_INVALID_CERTIFICATE)
    if isinstance(exc, ssl.SSLEOFError | asyncio.IncompleteReadError | EOFError):
        return EOF_ERROR
    if isinstance(exc, ssl.SSLZeroReturnError):
        return EOF_ERROR
    if isinstance(exc, ssl.SSLError):
        return _from_ssl_error(exc)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return GENERIC_TIMEOUT
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return CONNECTION_RESET
    if isinstance(exc, ConnectionRefusedError):
        return CONNECTION_REFUSED
    if isinstance(exc, ConnectionAbortedError):
        return CONNECTION_ABORTED
    if isinstance(exc, OSError) and exc.errno is not None:
        return _ERRNO.get(exc.errno, UNKNOWN)
    return UNKNOWN


def _from_ssl_error(exc: ssl.SSLError) -> str:
    reason = (exc.reason or "").upper()
    if "UNEXPECTED_EOF" in reason or "EOF" in reason:
        return EOF_ERROR
    if "RESET" in reason:
        return CONNECTION_RESET
    if "CERTIFICATE_VERIFY_FAILED" in reason:
        return SSL_INVALID_CERTIFICATE
    return SSL_FAILED_HANDSHAKE


def is_timeout(failure: str | None) -> bool:
    return failure in TIMEOUTS
