"""How a run is shown: a table for people, JSON per the DESIGN.md contract for programs."""

from __future__ import annotations

import shutil
from typing import Any

import msgspec

from probe import SOFTWARE_NAME, __version__
from probe.measure.engine import Report
from probe.model import FORMAT_VERSION, Measurement
from probe.verdicts.analysis import RULES_VERSION


def service_summary(m: Measurement) -> dict[str, Any]:
    a = m.analysis
    return {
        "service": m.service,
        "category": m.category,
        "verdict": a.verdict,
        "methods": list(a.methods),
        "confidence": a.confidence,
        "rules": list(a.rules),
        "evidence": list(a.evidence),
        "measurement_id": str(m.id),
        "endpoints": [msgspec.to_builtins(e) for e in a.endpoints],
    }


def to_json(report: Report, network_resolver: str | None, control_resolvers: list[str]) -> bytes:
    document = {
        "software": {"name": SOFTWARE_NAME, "version": __version__},
        "format_version": FORMAT_VERSION,
        "rules_version": RULES_VERSION,
        "offline": report.offline,
        "network_resolver": network_resolver,
        "control_resolvers": control_resolvers,
        "services": [service_summary(m) for m in report.measurements],
        "measurements": report.measurements,
    }
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"


def table(report: Report) -> str:
    width = shutil.get_terminal_size((120, 24)).columns
    rows = [("SERVICE", "VERDICT", "METHODS", "EVIDENCE")]
    ordered = sorted(report.measurements, key=lambda m: (m.category == "control", m.service))
    for m in ordered:
        a = m.analysis
        evidence = a.evidence[0] if a.evidence and a.verdict != "ok" else ""
        rows.append((m.service, a.verdict, ",".join(a.methods) or "-", evidence))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for row in rows:
        head = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3]))
        room = max(width - len(head) - 2, 20)
        evidence = row[3] if len(row[3]) <= room else row[3][: room - 1] + "…"
        lines.append(f"{head}  {evidence}".rstrip())
    unjudged = [m for m in ordered if m.analysis.verdict == "offline" and m.category != "control"]
    if unjudged and not report.offline:
        lines.append("")
        lines.append(
            f"{len(unjudged)} service(s) could not be judged: this network failed a control check"
        )
        lines.append("between retries. Nothing marked offline is evidence of censorship.")
    if report.offline:
        lines.append("")
        lines.append(
            "This network looks offline: control services are unreachable, so no judgement about"
        )
        lines.append("blocking is possible. Nothing above is evidence of censorship.")
    return "\n".join(lines) + "\n"
