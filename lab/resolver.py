"""The ISP's resolver: forwards to the far resolver unless the censor overrides a name.

Run in the router namespace as ``python -m lab.resolver --listen IP --upstream IP --policy
FILE``. The censor writes the policy file (JSON, replaced atomically); the resolver rereads it
whenever it changes, so actions take effect on the next query without a restart. The same
program with ``--delay`` and no policy is the lab's distant public resolver.

Policy: ``{"overrides": {"telegram.org": {"kind": "nxdomain"}, …}}``; a key covers the name
and its subdomains; kinds are ``nxdomain``, ``servfail``, ``refused``, ``timeout`` (stay
silent) and ``answer`` (with ``addresses``: a bogon, a blockpage's address).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, cast

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

OverrideKind = Literal["nxdomain", "servfail", "refused", "timeout", "answer"]
OVERRIDE_KINDS: Final[tuple[OverrideKind, ...]] = (
    "nxdomain",
    "servfail",
    "refused",
    "timeout",
    "answer",
)
HEALTH_NAME: Final = dns.name.from_text("health.cwlab.internal.")
UPSTREAM_TIMEOUT: Final = 1.0
UPSTREAM_TRIES: Final = 3
"""Like a real recursive resolver, retransmit upstream before giving up with SERVFAIL."""
ANSWER_TTL: Final = 60


@dataclass(frozen=True)
class Override:
    kind: OverrideKind
    addresses: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "addresses": list(self.addresses)}

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> Override:
        kind = raw.get("kind")
        if kind not in OVERRIDE_KINDS:
            raise ValueError(f"unknown override kind {kind!r}")
        addresses = raw.get("addresses", [])
        if not isinstance(addresses, list):
            raise ValueError("addresses must be a list")
        return cls(kind, tuple(str(a) for a in addresses))


Policy = dict[str, Override]


def parse_policy(text: str) -> Policy:
    document = json.loads(text)
    return {
        name.rstrip(".").lower(): Override.from_json(raw)
        for name, raw in document.get("overrides", {}).items()
    }


def dump_policy(policy: Policy) -> str:
    return json.dumps({"overrides": {n: o.to_json() for n, o in sorted(policy.items())}})


def write_policy(path: Path, policy: Policy) -> None:
    """Replace the policy file atomically, so the resolver never reads half of it."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(dump_policy(policy))
    os.replace(temporary, path)


def find_override(policy: Policy, qname: str) -> Override | None:
    """The override for a name: its own, else its closest censored parent domain's."""
    labels = qname.rstrip(".").lower().split(".")
    for i in range(len(labels)):
        override = policy.get(".".join(labels[i:]))
        if override is not None:
            return override
    return None


def answer_locally(query: dns.message.Message, override: Override) -> dns.message.Message | None:
    """The response an override dictates, or None to stay silent."""
    if override.kind == "timeout":
        return None
    response = dns.message.make_response(query)
    response.flags |= dns.flags.RA
    rcodes = {"nxdomain": dns.rcode.NXDOMAIN, "servfail": dns.rcode.SERVFAIL}
    rcodes["refused"] = dns.rcode.REFUSED
    if override.kind in rcodes:
        response.set_rcode(rcodes[override.kind])
        return response
    question = query.question[0]
    if question.rdtype == dns.rdatatype.A and override.addresses:
        rrset = dns.rrset.from_text_list(
            question.name, ANSWER_TTL, dns.rdataclass.IN, dns.rdatatype.A, override.addresses
        )
        response.answer.append(rrset)
    return response


class Resolver:
    def __init__(self, upstream: str, policy_file: Path | None, delay: float) -> None:
        self.upstream = upstream
        self.policy_file = policy_file
        self.delay = delay
        self._policy: Policy = {}
        self._policy_stamp: tuple[int, int, int] | None = None

    def policy(self) -> Policy:
        if self.policy_file is None:
            return {}
        try:
            stat = self.policy_file.stat()
        except FileNotFoundError:
            return {}
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp != self._policy_stamp:
            self._policy = parse_policy(self.policy_file.read_text())
            self._policy_stamp = stamp
        return self._policy

    async def resolve(self, wire: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if len(query.question) != 1:
            return _with_rcode(query, dns.rcode.FORMERR).to_wire()
        qname = query.question[0].name
        if qname == HEALTH_NAME:
            return _with_rcode(query, dns.rcode.NOERROR).to_wire()
        override = find_override(self.policy(), qname.to_text())
        if override is not None:
            response = answer_locally(query, override)
            return None if response is None else response.to_wire()
        if self.delay:
            await asyncio.sleep(self.delay)
        return await self.forward(query)

    async def forward(self, query: dns.message.Message) -> bytes:
        for _ in range(UPSTREAM_TRIES):
            try:
                response, _ = await dns.asyncquery.udp_with_fallback(
                    query, self.upstream, timeout=UPSTREAM_TIMEOUT
                )
            except (dns.exception.DNSException, OSError):
                continue
            return response.to_wire()
        return _with_rcode(query, dns.rcode.SERVFAIL).to_wire()


def _with_rcode(query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.flags |= dns.flags.RA
    response.set_rcode(rcode)
    return response


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        response = await self.resolver.resolve(data)
        if response is not None and self.transport is not None:
            self.transport.sendto(response, addr)


async def _serve_tcp(
    resolver: Resolver, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while True:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            response = await resolver.resolve(await reader.readexactly(length))
            if response is None:
                continue
            writer.write(struct.pack("!H", len(response)) + response)
            await writer.drain()
    writer.close()


async def serve(listen: str, resolver: Resolver, port: int = 53) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _UDP(resolver), local_addr=(listen, port)
    )
    server = await asyncio.start_server(
        lambda r, w: _serve_tcp(resolver, r, w), listen, port, reuse_address=True
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"resolver on {listen}:{port}, upstream {resolver.upstream}", flush=True)
    await stop.wait()
    transport.close()
    server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lab.resolver", description=__doc__)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--policy", type=Path)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before forwarding")
    args = parser.parse_args(argv)
    resolver = Resolver(args.upstream, args.policy, args.delay)
    asyncio.run(serve(args.listen, resolver, args.port))


if __name__ == "__main__":
    main()
