"""What a revoked probe does: stop, say how to come back, and come back only when asked to.

The collector revokes a probe's token (a 401/403 to it): the daemon exits 3, which systemd
does not restart, and records the revocation so that ``status`` and the next start say what
to do. Started again with the enrolment token that made the revoked probe, it stops at once
(a reboot must not quietly undo an operator's revocation); with a new one it enrols again.
"""

from __future__ import annotations

import hashlib

from probe.daemon.state import Credentials


class ProbeRevoked(Exception):
    """The stored token was revoked and no new enrolment token was given: stop at once,
    with what to do, rather than ask the collector again."""


def advice(collector: str) -> str:
    return (
        "to measure again, ask the collector's operator for a new enrolment token, save it in "
        f"a file only you can read, and run: censorwatch-probe run --collector {collector} "
        "--token-file FILE (with the systemd unit: write it to /etc/censorwatch/enrolment-token "
        "and run `systemctl restart censorwatch-probe`). Measurements taken as the revoked "
        "probe are kept in its quarantine, not uploaded."
    )


def fingerprint(enrolment_token: str | None) -> str | None:
    """What credentials keep of the enrolment token: enough to recognise it, not to use it."""
    if enrolment_token is None:
        return None
    return hashlib.sha256(enrolment_token.encode()).hexdigest()


def may_enrol_again(stored: Credentials, enrolment_token: str | None) -> bool:
    """Whether a revoked probe was given a new enrolment token."""
    return enrolment_token is not None and fingerprint(enrolment_token) != stored.enrolment_sha256
