"""The probe/collector split is declared once, in pyproject.toml: the images, CI and the
scripts install from it and repeat none of its requirements."""

from __future__ import annotations

import re
import tomllib

from lab.paths import REPO_ROOT

from .conftest import SERVER_STACK

PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
INSTALLERS = [
    REPO_ROOT / "deploy" / "probe.Dockerfile",
    REPO_ROOT / "deploy" / "collector.Dockerfile",
    REPO_ROOT / "scripts" / "install-test-deps",
    REPO_ROOT / "scripts" / "build-deb",
    REPO_ROOT / ".ci" / "run",
]


def names(requirements: list[str]) -> list[str]:
    return [re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower() for r in requirements]


def test_the_base_is_the_probe_and_the_server_stack_is_the_collector_extra() -> None:
    base = names(PROJECT["dependencies"])
    collector = names(PROJECT["optional-dependencies"]["collector"])
    assert {"aiohttp", "dnspython", "msgspec", "cryptography"} <= set(base)
    assert set(collector) == set(SERVER_STACK)
    assert not set(base) & set(collector)


def test_no_installer_repeats_a_requirement() -> None:
    requirements = [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["collector"]]
    for path in INSTALLERS:
        text = path.read_text()
        for requirement in requirements:
            assert requirement not in text, f"{path.name} repeats {requirement}"


def test_each_image_installs_its_side_of_the_split() -> None:
    probe = (REPO_ROOT / "deploy" / "probe.Dockerfile").read_text()
    collector = (REPO_ROOT / "deploy" / "collector.Dockerfile").read_text()
    assert "pip install --no-compile .\\" in probe.replace(" \\", "\\")
    assert "[collector]" not in probe
    assert "'.[collector]'" in collector
    assert "collector" in (REPO_ROOT / "scripts" / "install-test-deps").read_text()
