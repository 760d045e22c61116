"""Informed consent: shown once, accepted once, recorded in the state directory."""

from __future__ import annotations

import datetime as dt
from typing import Final, TextIO

from probe.daemon.state import StateDir

VERSION: Final = "2"
FILE: Final = "consent.json"
TEXT: Final = """\
censorwatch probe — please read before running it

This program tests, every few minutes, whether messengers and social sites (WhatsApp,
Telegram, Signal, Instagram, YouTube, X, TikTok, …) can be reached from this network, and
sends what it saw to the collector you named.

What is sent: the services tested, the DNS answers, connection and TLS results with their
timings, the network (ASN) and country this machine is in, and which resolver answered,
named only if it is a well-known public one (Google, Cloudflare, Quad9, …); any other,
such as your router or your provider's, is sent only as "system", "private" or
"public-unlisted". Your IP address is not in any measurement.

What the collector sees: your IP address, on every connection (any server does). It works
out your network and country from it and does not store the address, but whoever runs
the collector, or forces its operator to, could log it. It also knows this probe's id and
when each measurement was taken, to the second: the public listing shows a daily-changing
pseudonym and coarser times, but the operator has the exact ones.

What your provider (or anyone who can read its flow logs) can see: that this line
connects, every few minutes, to the same list of services and to the collector, with
timings that match the measurements. If the collector's data (or the operator) falls into
their hands, those flow logs can be matched to this probe's measurements, and so to this
line, even without your address in them. In some countries running a censorship probe may
itself draw attention or be illegal. Only run it if you understand that risk and accept it.

You can stop at any time: stop the service and delete its state directory.
"""


class ConsentRequired(Exception):
    """Consent was not given; nothing is measured."""


def recorded(state: StateDir) -> bool:
    raw = state.read_json(FILE)
    return raw is not None and raw.get("version") == VERSION and raw.get("accepted") is True


def ensure(state: StateDir, accept_flag: bool, stdin: TextIO, stdout: TextIO) -> None:
    """Return if consent is on record or given now; raise ``ConsentRequired`` otherwise."""
    if recorded(state):
        return
    how = "flag" if accept_flag else _ask(stdin, stdout)
    state.write_json(
        FILE,
        {
            "version": VERSION,
            "accepted": True,
            "how": how,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    )


def _ask(stdin: TextIO, stdout: TextIO) -> str:
    if not stdin.isatty():
        raise ConsentRequired(
            "informed consent is needed before the first run: run it once in a terminal, "
            "or pass --accept-consent for a packaged, non-interactive install"
        )
    stdout.write(TEXT + "\nType 'yes' to accept: ")
    stdout.flush()
    if stdin.readline().strip().lower() != "yes":
        raise ConsentRequired("consent not given; nothing was measured")
    return "interactive"
