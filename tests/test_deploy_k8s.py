"""The Kubernetes manifests in ``deploy/k8s/`` agree with the vmcp configuration they ship.

There is no YAML parser among vmcp's dependencies, so the manifests are read with small,
strict patterns (they are written in one plain style for it): the ConfigMap's ``vmcp.toml``
must be a valid configuration; the probes must ask the paths vmcp answers on the port it
listens on (the container port and the Service's target port too); the grace period must
cover the preStop wait plus the drain; the Secret, ConfigMap and Redis Service the pods use
must be the ones defined beside them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from vmcp.config import VmcpConfig
from vmcp.transports.probes import LIVEZ, READYZ

K8S = Path(__file__).resolve().parents[1] / "deploy" / "k8s"
#: seconds ``vmcp`` may take beyond ``shutdown_grace`` to stop its backends
STOP_MARGIN = 10


def _documents(name: str) -> list[str]:
    text = (K8S / name).read_text(encoding="utf-8")
    return [doc for doc in re.split(r"^---$", text, flags=re.MULTILINE) if doc.strip()]


def _one(pattern: str, text: str) -> str:
    found = re.findall(pattern, text, flags=re.MULTILINE)
    assert len(found) == 1, f"expected one match of {pattern!r}, found {found}"
    return found[0]  # type: ignore[no-any-return]


def _kind(doc: str) -> str:
    return _one(r"^kind: (\w+)$", doc)


def _name(doc: str) -> str:
    return _one(r"^metadata:\n  name: ([\w-]+)$", doc)


def _by_kind(name: str, kind: str) -> list[str]:
    return [doc for doc in _documents(name) if _kind(doc) == kind]


def _block(doc: str, key: str) -> str:
    """The text of a literal block scalar ``key: |`` (dedented)."""
    match = re.search(rf"^( *){re.escape(key)}: \|\n((?:\1  .*\n|\n)+)", doc, re.MULTILINE)
    assert match, f"no block {key}"
    indent = len(match.group(1)) + 2
    return "".join(line[indent:] + "\n" for line in match.group(2).splitlines())


def _config() -> tuple[dict[str, Any], VmcpConfig]:
    (configmap,) = _by_kind("configmap.yaml", "ConfigMap")
    data = tomllib.loads(_block(configmap, "vmcp.toml"))
    return data, VmcpConfig.model_validate(data)


def test_every_document_has_a_kind_and_a_name() -> None:
    files = sorted(path.name for path in K8S.glob("*.yaml"))
    assert files
    for name in files:
        for doc in _documents(name):
            assert re.search(r"^apiVersion: \S+$", doc, re.MULTILINE), name
            assert _kind(doc)
            if _kind(doc) != "Kustomization":
                assert _name(doc)
    listed = re.findall(r"^  - (\S+\.yaml)$", (K8S / "kustomization.yaml").read_text(),
                        re.MULTILINE)
    assert listed and all((K8S / item).exists() for item in listed)
    assert "secret.yaml" not in listed  # created with a random key, never applied as shipped


def test_the_configmap_holds_a_valid_config_that_listens_where_the_probes_ask() -> None:
    data, config = _config()
    http = config.transports["http"]
    port = http["port"]
    assert http["host"] == "0.0.0.0" and config.auth.driver != "none"
    assert config.gateway.fronts == ["http"] and config.gateway.workers >= 1
    (deployment,) = _by_kind("deployment.yaml", "Deployment")
    probes = {kind: (path, int(number)) for kind, path, number in re.findall(
        r"^ +(\w+Probe):\n +httpGet:\n +path: (\S+)\n +port: (\d+)$", deployment,
        re.MULTILINE)}
    assert probes == {"livenessProbe": (LIVEZ, port), "readinessProbe": (READYZ, port),
                      "startupProbe": (LIVEZ, port)}
    assert int(_one(r"^ +containerPort: (\d+)$", deployment)) == port
    (service,) = _by_kind("deployment.yaml", "Service")
    assert int(_one(r"^ +targetPort: (\d+)$", service)) == port
    args = _one(r"^ +args: \[(.*)\]$", deployment)
    config_path = args.split(",")[1].strip().strip('"')
    assert config_path == _one(r"^ +- name: config\n +mountPath: (\S+)$", deployment) + \
        "/vmcp.toml"
    assert data["auth"]["tokens_file"].startswith(
        _one(r"^ +- name: tokens\n +mountPath: (\S+)$", deployment) + "/")


def test_the_grace_period_covers_the_prestop_wait_and_the_drain() -> None:
    _, config = _config()
    (deployment,) = _by_kind("deployment.yaml", "Deployment")
    grace = int(_one(r"^ +terminationGracePeriodSeconds: (\d+)$", deployment))
    pause = int(_one(r'^ +command: \["sleep", "(\d+)"\]$', deployment))
    assert pause >= 1  # the endpoints drop the pod before it stops taking work
    assert grace >= pause + config.gateway.shutdown_grace + STOP_MARGIN


def test_the_pods_use_the_secret_configmap_and_redis_defined_beside_them() -> None:
    data, _ = _config()
    (deployment,) = _by_kind("deployment.yaml", "Deployment")
    (secret,) = _by_kind("secret.yaml", "Secret")
    (configmap,) = _by_kind("configmap.yaml", "ConfigMap")
    reference = re.search(r"secretKeyRef:\n +name: (\S+)\n +key: (\S+)$", deployment,
                          re.MULTILINE)
    assert reference and reference.groups() == (_name(secret), "VMCP_STATE_KEY")
    assert re.search(r"^  VMCP_STATE_KEY: ", secret, re.MULTILINE)
    assert _one(r"^ +configMap:\n +name: (\S+)$", deployment) == _name(configmap)
    (redis,) = _by_kind("redis.yaml", "Service")
    port = _one(r"^ +port: (\d+)$", redis)
    where = f"redis://{_name(redis)}:{port}/"
    assert data["cache"]["url"].startswith(where)
    assert data["cluster"]["redis_url"].startswith(where)


@pytest.mark.parametrize("name", ["deployment.yaml", "redis.yaml"])
def test_selectors_match_the_pod_labels(name: str) -> None:
    for doc in _documents(name):
        labels = set(re.findall(r"app\.kubernetes\.io/name: (\S+)", doc))
        assert len(labels) == 1, labels
