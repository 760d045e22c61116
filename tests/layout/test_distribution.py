"""What ``pip install .`` installs: the product, never the lab or the test harnesses."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lab.paths import REPO_ROOT, CheckoutNotFound, find_root

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(out), str(REPO_ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = out.glob("censorwatch-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_wheel_holds_no_lab_and_no_test_harness(wheel_files: list[str]) -> None:
    tops = {name.split("/")[0] for name in wheel_files if "dist-info" not in name}
    # censorwatch/: the collector's entry point, which names its extra when it is missing
    assert tops == {"probe", "collector", "alerts", "censorwatch"}
    assert not [name for name in wheel_files if "harness" in name or "postgres" in name]


def test_wheel_holds_what_the_product_runs(wheel_files: list[str]) -> None:
    needed = {
        "probe/data/targets.toml",
        "collector/store/migrations/script.py.mako",
        "collector/store/migrations/versions/0001_initial.py",
        "collector/demo/servers/pki.py",  # the demo's loopback servers are product code
        "probe/cli.py",
        "collector/cli.py",
        "censorwatch/extras.py",
        "collector/web/templates/country.html",  # the status page ships whole
        "collector/web/templates/incident.txt",
        "collector/web/static/style.css",
        "collector/web/static/status.js",
        "collector/web/locales/ru.toml",
    }
    assert needed <= set(wheel_files)


def test_repo_root_is_the_checkout_being_tested() -> None:
    assert (REPO_ROOT / "pyproject.toml").is_file()
    assert Path(__file__).resolve().is_relative_to(REPO_ROOT)
    import probe

    assert Path(probe.__file__).resolve().is_relative_to(REPO_ROOT)


def test_find_root_refuses_a_directory_outside_any_checkout(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    with pytest.raises(CheckoutNotFound):
        find_root(tmp_path)
