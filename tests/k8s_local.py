"""The project's local Kubernetes control plane (.ci/k8s-local.sh) for the e2e tests.

Each test session starts its own etcd + kube-apiserver + kube-controller-manager on free loopback
ports in a temporary directory, so it never meets a control plane a developer left running, and
stops it at the end. The binaries must have been built (``make k8s-local``; ``make test`` does it):
when they are missing the session fails loudly instead of skipping.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "k8s-local.sh"
CRD_PATH = ROOT / "crds" / "hadisservices.hadis.io.yaml"

T = TypeVar("T")


@dataclass(frozen=True)
class ControlPlane:
    kubeconfig: Path
    api: client.ApiClient
    env: dict[str, str]

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@contextmanager
def running_control_plane() -> Iterator[ControlPlane]:
    run_dir = tempfile.mkdtemp(prefix="hadis-k8s-e2e-")
    api_port, etcd_port, peer_port = _free_ports(3)
    env = {
        **os.environ,
        "HADIS_K8S_DIR": run_dir,
        "HADIS_K8S_API_PORT": str(api_port),
        "HADIS_K8S_ETCD_PORT": str(etcd_port),
        "HADIS_K8S_ETCD_PEER_PORT": str(peer_port),
        "HADIS_K8S_NO_BUILD": "1",
    }
    started = subprocess.run(
        ["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=240, check=False
    )
    try:
        if started.returncode != 0:
            raise RuntimeError(
                f"{SCRIPT.name} start failed (exit {started.returncode}):\n{started.stderr[-4000:]}"
            )
        kubeconfig = Path(started.stdout.strip().splitlines()[-1])
        api = config.new_client_from_config(config_file=str(kubeconfig))
        try:
            yield ControlPlane(kubeconfig=kubeconfig, api=api, env=env)
        finally:
            api.close()
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=60, check=False)


def wait_until(what: str, probe: Callable[[], T | None], timeout: float = 30.0, every: float = 0.2) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def install_crd(api: client.ApiClient, path: Path = CRD_PATH) -> dict[str, Any]:
    """Create (or replace) the CRD from its YAML file and wait until it is Established."""
    body = yaml.safe_load(path.read_text(encoding="utf-8"))
    ext = client.ApiextensionsV1Api(api)
    name = body["metadata"]["name"]
    try:
        ext.create_custom_resource_definition(body)
    except ApiException as e:
        if e.status != 409:
            raise
        current = ext.read_custom_resource_definition(name)
        body["metadata"]["resourceVersion"] = current.metadata.resource_version
        ext.replace_custom_resource_definition(name, body)

    def established() -> bool:
        crd = ext.read_custom_resource_definition(name)
        conditions = crd.status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    wait_until(f"CRD {name} Established", established)
    return body


def create_namespace(api: client.ApiClient, name: str) -> None:
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
