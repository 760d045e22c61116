"""schemathesis, an independent OpenAPI fuzzer, against a real ``censorwatch serve``.

Every check runs (schemathesis' default; ``--checks all`` would also override the two
per-operation exceptions below): server errors, status codes and headers the document
does not declare, schema-valid requests refused, invalid ones accepted, required headers
not enforced, the ``Allow`` header, with a token for each security scheme the document
names. The seed and the example count are fixed so a run is repeatable and takes a
couple of minutes; a failure prints schemathesis' own report, with a curl line for each.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from collector_harness import ServerProcess, http

from lab.paths import REPO_ROOT, checkout_env

SEED = 20261201
MAX_EXAMPLES = 30
# Two judgements JSON Schema cannot make, stated here rather than hidden:
# - 422 answers values that are each valid but impossible together (axis_x = axis_y, an
#   event ending before it starts, a Telegram subscriber without a chat): a schema-valid
#   request may get it.
# - An ingest batch is judged item by item: a bad item is rejected alone, inside a 200
#   that says why, so an invalid item does not make the request "accepted" wrongly, and a
#   rejected item's id names nothing to fetch. A feed's validity (iCalendar, RSS) is not
#   expressible in JSON Schema either.
# No cache: a run replays nothing from an earlier one, so the seed alone decides it.
_CONFIG = """
[cache]
enabled = false

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]

[[operations]]
include-path = "/api/v1/measurements"
include-method = "POST"
checks.negative_data_rejection.enabled = false

# (The check runs on the GET that follows the POST: the one operation it can reach there.)
[[operations]]
include-path = "/api/v1/measurements/{measurement_id}"
checks.ensure_resource_availability.enabled = false

[[operations]]
include-path = "/api/v1/events/import"
checks.positive_data_acceptance.enabled = false

[auth.openapi.admin]
bearer = "${CW_ADMIN_TOKEN}"
[auth.openapi.researcher]
bearer = "${CW_RESEARCHER_TOKEN}"
[auth.openapi.probe]
bearer = "${CW_PROBE_TOKEN}"
[auth.openapi.enrolment]
bearer = "${CW_ENROLMENT_TOKEN}"
"""
_RUN = "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    workdir: Path = tmp_path_factory.mktemp("schemathesis")
    process = ServerProcess(workdir, f"sqlite:///{workdir / 'c.db'}")
    try:
        process.wait_ready()
        yield process, workdir
    finally:
        process.stop()


def _tokens(process: ServerProcess) -> dict[str, str]:
    admin = process.admin_headers()
    status, body = http(
        "POST", process.url + "/api/v1/enrolment-tokens", b'{"uses": 1000000}', admin
    )
    assert status == 201, body
    status, researcher = http("POST", process.url + "/api/v1/researcher-tokens", b"{}", admin)
    assert status == 201, researcher
    return {
        "CW_ADMIN_TOKEN": admin["Authorization"].removeprefix("Bearer "),
        "CW_RESEARCHER_TOKEN": json.loads(researcher)["token"],
        "CW_PROBE_TOKEN": process.register(),
        "CW_ENROLMENT_TOKEN": json.loads(body)["token"],
    }


# The API under every check; the status page's HTML routes (pages for people, whose own
# tests in tests/web cover their answers to bad addresses) under the one check that matters
# for them: no 5xx, whatever is asked.
PARTS = {
    "api": ["--include-path-regex", "^/api/"],
    "pages": ["--exclude-path-regex", "^/api/", "--checks", "not_a_server_error"],
}


@pytest.mark.slow
@pytest.mark.parametrize("part", sorted(PARTS))
def test_schemathesis_finds_nothing(served: tuple[ServerProcess, Path], part: str) -> None:
    process, workdir = served
    config = workdir / "schemathesis.toml"
    config.write_text(_CONFIG)
    command = [
        sys.executable, "-c", _RUN, "--config-file", str(config), "--no-color",
        "run", process.url + "/api/v1/openapi.json",
        "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES), "--workers", "1",
        "--suppress-health-check", "all", "--request-timeout", "30", *PARTS[part],
    ]  # fmt: skip
    run = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=checkout_env({**checkout_env(), **_tokens(process)}),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert "No issues found" in report or " 0 failures" in report or "passed" in report, report
    assert "500 Internal" not in process.output()
