"""examples/kubernetes: the manifests agree with the settings they configure."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from fastapi_chassis import ChassisSettings, build_app
from tests.conftest import ROOT

MANIFESTS = Path(ROOT) / "examples" / "kubernetes"
JWT_SECRET = "t8Vq2LzX9wNc4Rk7Hs1Pf6Ym3Jd0Gb5Ua8Ee2Oi"  # stands in for the Secret's value


def load(name: str) -> dict[str, Any]:
    documents = list(yaml.safe_load_all((MANIFESTS / name).read_text()))
    assert len(documents) == 1
    document: dict[str, Any] = documents[0]
    return document


@pytest.fixture
def deployment() -> dict[str, Any]:
    return load("deployment.yaml")


@pytest.fixture
def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = only
    return result


@pytest.fixture
def settings(
    container: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> ChassisSettings:
    """The settings the pod runs with: the manifest's environment, the Secret's values filled in."""
    for key in list(os.environ):
        if key.startswith("CHASSIS_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    secrets = {"jwt-secret": JWT_SECRET, "redis-url": "redis://:pw@redis.orders:6379/0"}
    for var in container["env"]:
        if not var["name"].startswith("CHASSIS_"):
            continue  # PROMETHEUS_MULTIPROC_DIR would change this process' metrics
        if "value" in var:
            monkeypatch.setenv(var["name"], var["value"])
        else:
            monkeypatch.setenv(var["name"], secrets[var["valueFrom"]["secretKeyRef"]["key"]])
    return ChassisSettings()  # raises if the production checks refuse the manifest's values


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def env_var(container: dict[str, Any], name: str) -> dict[str, Any]:
    (var,) = [v for v in container["env"] if v["name"] == name]
    return var


def test_probes_use_the_health_paths_and_the_served_port(
    container: dict[str, Any], settings: ChassisSettings
) -> None:
    assert settings.is_prod
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == int(option(container["command"], "--port"))
    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe")}
    probes["readinessProbe"] = container["readinessProbe"]["httpGet"]
    assert {k: (p["path"], ports[p["port"]]) for k, p in probes.items()} == {
        "startupProbe": (settings.health.liveness_path, 8000),
        "livenessProbe": (settings.health.liveness_path, 8000),
        "readinessProbe": (settings.health.readiness_path, 8000),
    }
    # The kubelet must not give up on /readyz before the checks' own timeout answers.
    assert container["readinessProbe"]["timeoutSeconds"] > settings.health.check_timeout


def test_an_app_built_from_the_manifest_settings_answers_the_probes(
    container: dict[str, Any], settings: ChassisSettings
) -> None:
    settings = settings.model_copy(
        update={
            "redis": settings.redis.model_copy(update={"url": None}),  # no Redis in this test
            "logging": settings.logging.model_copy(update={"configure": False}),
        }
    )
    client = TestClient(build_app(settings))
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        path = container[kind]["httpGet"]["path"]
        assert client.get(path).status_code == 200, path


def test_grace_period_covers_prestop_drain_graceful_shutdown_and_in_flight_wait(
    deployment: dict[str, Any], container: dict[str, Any], settings: ChassisSettings
) -> None:
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    graceful = float(option(container["command"], "--timeout-graceful-shutdown"))
    drain = settings.health.drain_seconds
    assert drain is not None
    assert drain > 0  # readiness turns 503 before uvicorn stops accepting
    budget = pre_stop + drain + graceful + settings.health.shutdown_timeout
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > budget


def test_secrets_come_from_a_secret_and_metrics_share_an_empty_dir(
    deployment: dict[str, Any], container: dict[str, Any], settings: ChassisSettings
) -> None:
    for name in ("CHASSIS_AUTH__JWT_SECRET", "CHASSIS_REDIS__URL"):
        var = env_var(container, name)
        assert "value" not in var
        assert var["valueFrom"]["secretKeyRef"]["name"] == "orders-secrets"
    multiproc = env_var(container, "PROMETHEUS_MULTIPROC_DIR")["value"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == multiproc]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes[mount["name"]]["emptyDir"] == {}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert settings.metrics.enabled
    assert annotations["prometheus.io/path"] == settings.metrics.path
    assert int(annotations["prometheus.io/port"]) == container["ports"][0]["containerPort"]


def test_service_selects_the_pods_and_targets_the_named_port(
    deployment: dict[str, Any], container: dict[str, Any]
) -> None:
    service = load("service.yaml")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    port_names = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
