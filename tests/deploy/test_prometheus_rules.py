"""promtool: the Prometheus config and rules are valid and the rule unit tests pass."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from deploy_paths import PROMETHEUS

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is missing: install the Debian package prometheus (scripts/install-test-deps)",
)


def promtool(*args: str) -> str:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_config_is_valid() -> None:
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")


def test_rules_are_valid() -> None:
    files = sorted(str(p.relative_to(PROMETHEUS)) for p in (PROMETHEUS / "rules").glob("*.yml"))
    assert files == ["rules/alerts.yml", "rules/recording.yml"]
    output = promtool("check", "rules", *files)
    assert output.count("SUCCESS") == len(files)


@pytest.mark.parametrize("unit_tests", sorted(p.name for p in (PROMETHEUS / "tests").glob("*.yml")))
def test_rule_unit_tests_pass(unit_tests: str) -> None:
    assert "SUCCESS" in promtool("test", "rules", f"tests/{unit_tests}")


def test_every_alert_waits_and_is_unit_tested() -> None:
    import yaml

    rules = yaml.safe_load((PROMETHEUS / "rules" / "alerts.yml").read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    tested = "".join(p.read_text() for p in (PROMETHEUS / "tests").glob("*.yml"))
    for name, rule in alerts.items():
        assert rule.get("for"), f"{name} has no for clause"
        assert f"alertname: {name}" in tested, f"{name} has no promtool unit test"
