"""A real Prometheus server (Debian package) in a subprocess, and its HTTP API."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

import yaml
from collector_harness import http
from deploy_paths import PROMETHEUS

from collector.demo.servers.base import free_port


def fast_rules(workdir: Path) -> list[str]:
    """The deployed rule files with every group evaluated each second."""
    paths = []
    for source in sorted((PROMETHEUS / "rules").glob("*.yml")):
        rules = yaml.safe_load(source.read_text())
        for group in rules["groups"]:
            group["interval"] = "1s"
        target = workdir / source.name
        target.write_text(yaml.safe_dump(rules, sort_keys=False))
        paths.append(str(target))
    return paths


def scrape_config_for(workdir: Path, collector_address: str) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml, pointed at one collector on loopback, scraping fast."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = fast_rules(workdir)
    jobs = [j for j in config["scrape_configs"] if j["job_name"] == "censorwatch-collector"]
    jobs[0]["static_configs"] = [{"targets": [collector_address]}]
    config["scrape_configs"] = jobs
    return config


class PrometheusProcess:
    def __init__(self, binary: str, workdir: Path, config: dict[str, Any]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config_file = workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log = workdir / "prometheus.log"
        command = [
            binary, f"--config.file={config_file}", f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited: {self.log.read_text()}")
            with contextlib.suppress(OSError):
                if http("GET", self.url + "/-/ready")[0] == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"prometheus not ready in {timeout} s: {self.log.read_text()}")

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, body = http("GET", url)
        reply = json.loads(body)
        assert status == 200, f"{expr}: {reply}"
        assert reply["status"] == "success", f"{expr}: {reply}"
        return list(reply["data"]["result"])

    def wait_for(self, expr: str, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if result := self.query(expr):
                return result
            time.sleep(0.25)
        raise AssertionError(f"no series for {expr} in {timeout} s: {self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def binary() -> str | None:
    return shutil.which("prometheus")
