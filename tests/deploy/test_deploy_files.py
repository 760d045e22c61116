"""Structure of the compose stack, Kubernetes manifests, Grafana provisioning and units.

No container engine and no kubeconform (it needs schemas from the network) run here, so
these are schema-light structural checks; ``docker compose config`` (or the Debian
``docker-compose``) runs too when one is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_paths import DASHBOARDS, DEPLOY, GRAFANA_PROVISIONING, K8S

from collector.config import Config

COMPOSE = DEPLOY / "docker-compose.yml"
CONFIG_KEYS = {f"CENSORWATCH_{f.upper()}" for f in Config.__dataclass_fields__}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_services_have_health_checks_and_volumes() -> None:
    stack = load(COMPOSE)
    services = stack["services"]
    assert set(services) == {"collector", "postgres", "prometheus", "grafana"}
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
        assert service.get("restart") == "unless-stopped", name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in stack["volumes"], f"{name} uses undeclared volume {source}"
    assert services["collector"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert (DEPLOY.parent / services["collector"]["build"]["dockerfile"]).exists()
    for key in services["collector"]["environment"]:
        assert key in CONFIG_KEYS, f"collector has no setting {key}"


def test_compose_config_validates_with_the_cli() -> None:
    cli = compose_cli()
    if cli is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    env = {**os.environ, "POSTGRES_PASSWORD": "test", "GRAFANA_ADMIN_PASSWORD": "test"}
    done = subprocess.run(
        [*cli, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr


def manifests() -> dict[str, dict[str, Any]]:
    documents = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            assert {"apiVersion", "kind", "metadata"} <= set(document), path.name
            kind = document["kind"]
            documents[kind if kind not in documents else f"{kind}/{path.stem}"] = document
    return documents


def test_the_admin_token_comes_from_a_secret_mounted_read_only() -> None:
    docs = manifests()
    secret = docs["Secret/token-secret"]
    spec = docs["Deployment"]["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    assert volume["secret"]["defaultMode"] == 0o400
    assert not any(v["name"] == "data" for v in spec["volumes"])  # no per-pod token on disk
    (container,) = spec["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    path = docs["ConfigMap"]["data"]["CENSORWATCH_ADMIN_TOKEN_FILE"]
    assert path.startswith(mount["mountPath"] + "/")


def test_kustomization_lists_every_manifest() -> None:
    listed = load(K8S / "kustomization.yaml")["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.stem != "kustomization")


def test_collector_deployment_scales_out_safely() -> None:
    docs = manifests()
    deployment = docs["Deployment"]
    spec = deployment["spec"]
    selector = spec["selector"]["matchLabels"]
    assert spec["replicas"] >= 2
    assert selector.items() <= spec["template"]["metadata"]["labels"].items()
    (container,) = spec["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
    assert sources == {docs["ConfigMap"]["metadata"]["name"], docs["Secret"]["metadata"]["name"]}
    for key in [*docs["ConfigMap"]["data"], *docs["Secret"]["stringData"]]:
        assert key in CONFIG_KEYS, f"collector has no setting {key}"
    port_names = {p["name"] for p in container["ports"]}
    service = docs["Service"]["spec"]
    assert service["selector"].items() <= selector.items()
    assert {p["targetPort"] for p in service["ports"]} <= port_names
    budget = docs["PodDisruptionBudget"]["spec"]
    assert budget["selector"]["matchLabels"] == selector
    assert budget["minAvailable"] < spec["replicas"]


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    (datasource,) = load(GRAFANA_PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    (provider,) = load(GRAFANA_PROVISIONING / "dashboards" / "censorwatch.yml")["providers"]
    mounts = load(COMPOSE)["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    uids = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        uids.append(board["uid"])
        assert board["uid"] == path.stem, "the uid is fixed and names the file"
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] == datasource["uid"], panel["title"]
    assert sorted(uids) == ["censorwatch-operations", "censorwatch-overview", "censorwatch-service"]


def test_collector_unit_is_hardened() -> None:
    unit = (DEPLOY / "systemd" / "censorwatch-collector.service").read_text()
    settings = dict(
        line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#")
    )
    for key, value in {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "DynamicUser": "yes",
        "CapabilityBoundingSet": "", "PrivateDevices": "yes", "RestrictNamespaces": "yes",
    }.items():  # fmt: skip
        assert settings.get(key) == value, key
    assert "serve" in settings["ExecStart"]


def test_collector_image_runs_unprivileged_from_a_pinned_base() -> None:
    dockerfile = (DEPLOY / "collector.Dockerfile").read_text()
    assert "ARG PYTHON_IMAGE=python:3.11." in dockerfile
    assert "-slim" in dockerfile
    assert "\nUSER 10001:10001\n" in dockerfile
    assert "HEALTHCHECK" in dockerfile
