"""A small real collector stand-in that answers uploads from a script (500, 429, 401 …),
for the faults the real collector cannot be made to produce on demand."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from aiohttp import web

from collector.demo.servers.base import free_port
from probe import model


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FaultyCollector:
    targets_text: str
    script: list[Reply]
    port: int = field(default_factory=free_port)
    attempts: list[float] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    resolvers: set[str] = field(default_factory=set)
    enrolments: list[str | None] = field(default_factory=list)  # Authorization of each
    revoked: bool = False  # answer 401 to the probe token
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/v1/probes", self.enrol)
        app.router.add_post("/api/v1/probes/check-in", self.check_in)
        app.router.add_post("/api/v1/measurements", self.measurements)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def enrol(self, request: web.Request) -> web.Response:
        self.enrolments.append(request.headers.get("Authorization"))
        self.revoked = False
        probe_id = f"p-{len(self.enrolments)}"
        return web.json_response({"probe_id": probe_id, "token": f"cwp_{probe_id}"}, status=201)

    def _refused(self) -> web.Response | None:
        if not self.revoked:
            return None
        error = {"error": {"status": 401, "message": "token revoked"}}
        return web.json_response(error, status=401)

    async def check_in(self, request: web.Request) -> web.Response:
        if refused := self._refused():
            return refused
        return web.json_response(
            {
                "probe_id": f"p-{len(self.enrolments)}",
                "control": False,
                "cc": "KZ",
                "asn": 9198,
                "schedule": {"interval_seconds": 1, "jitter_seconds": 0},
                "targets": {"format": "toml", "sha256": "x", "text": self.targets_text},
            }
        )

    async def measurements(self, request: web.Request) -> web.Response:
        if refused := self._refused():
            return refused
        self.attempts.append(time.monotonic())
        body = await request.read()
        if self.script:
            reply = self.script.pop(0)
            error = {"error": {"status": reply.status, "message": "scripted"}}
            return web.json_response(error, status=reply.status, headers=reply.headers)
        # aiohttp has already undone the Content-Encoding: gzip
        lines = body.split(b"\n")
        results = []
        for index, line in enumerate(lines):
            measurement = model.decode(line)
            ident = str(measurement.id)
            self.accepted.append(ident)
            self.services.append(measurement.service)
            self.resolvers |= {
                o.resolver for o in measurement.observations if isinstance(o, model.DNSObservation)
            }
            results.append({"index": index, "result": "accepted", "id": ident})
        summary = {"accepted": len(lines), "duplicate": 0, "rejected": 0, "results": results}
        return web.Response(body=json.dumps(summary), content_type="application/json")
