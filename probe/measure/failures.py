"""The closed vocabulary of failures, and the one table that maps platform errors onto it.

Strings follow OONI's df-007 data format so researchers can read them without a glossary.
Platform error text (errno messages, OpenSSL reasons) never leaves this module: whatever the
operating system says is reduced to one of these names.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
from typing import Final, Literal

Operation = Literal["resolve", "connect", "tls_handshake", "http_round_trip"]

GENERIC_TIMEOUT: Final = "generic_timeout_error"
CONNECTION_REFUSED: Final = "connection_refused"
CONNECTION_RESET: Final = "connection_reset"
CONNECTION_ABORTED: Final = "connection_aborted"
HOST_UNREACHABLE: Final = "host_unreachable"
NETWORK_UNREACHABLE: Final = "network_unreachable"
EOF_ERROR: Final = "eof_error"
SSL_UNKNOWN_AUTHORITY: Final = "ssl_unknown_authority"
SSL_INVALID_HOSTNAME: Final = "ssl_invalid_hostname"
SSL_INVALID_CERTIFICATE: Final = "ssl_invalid_certificate"
SSL_FAILED_HANDSHAKE: Final = "ssl_failed_handshake"
DNS_NXDOMAIN: Final = "dns_nxdomain_error"
DNS_SERVFAIL: Final = "dns_servfail_error"
DNS_REFUSED: Final = "dns_refused_error"
DNS_NO_ANSWER: Final = "dns_no_answer"
DNS_BOGUS_RESPONSE: Final = "dns_bogus_response"
DNS_NO_RESOLVER: Final = "dns_no_resolver"
HTTP_BAD_RESPONSE: Final = "http_bad_response"
UNKNOWN: Final = "unknown_failure"

FAILURES: Final = frozenset(
    {
        GENERIC_TIMEOUT,
        CONNECTION_REFUSED,
        CONNECTION_RESET,
        CONNECTION_ABORTED,
        HOST_UNREACHABLE,
        NETWORK_UNREACHABLE,
        EOF_ERROR,
        SSL_UNKNOWN_AUTHORITY,
        SSL_INVALID_HOSTNAME,
        SSL_INVALID_CERTIFICATE,
        SSL_FAILED_HANDSHAKE,
        DNS_NXDOMAIN,
        DNS_SERVFAIL,
        DNS_REFUSED,
        DNS_NO_ANSWER,
        DNS_BOGUS_RESPONSE,
        DNS_NO_RESOLVER,
        HTTP_BAD_RESPONSE,
        UNKNOWN,
    }
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
