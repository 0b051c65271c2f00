"""Endpoint discovery with the real resolver: worker endpoints named ``http://localhost:PORT``.

The gateway and two emulated workers run as ``python -m hadis_gateway`` / ``python -m hadis_worker``
(latencies × 0.001). The configuration names the workers by host name, as the operator names a
variant's headless Service; the gateway resolves it with getaddrinfo and dispatches to the
addresses. Several pods behind one name needs DNS control, so that expansion is unit-tested with a
fake resolver (tests/unit/gateway/test_endpoint_discovery.py).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

LIGHT, HEAVY = "sdxl-lightning", "sd35-large-turbo"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout_s} s:\n{log.read_text()[-3000:]}")


@dataclass
class Stack:
    gateway: str
    gateway_log: Path
    worker_ports: dict[str, int]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("dns")
    config_path = tmp / "cascade.json"
    ports = {"gateway": _free_port(), LIGHT: _free_port(), HEAVY: _free_port()}
    config: dict[str, Any] = {
        "generation": 1,
        "row": {"light": LIGHT, "heavy": HEAVY, "theta": 0.3, "tau": 0.2, "p": 0.44, "fid": 25.75},
        # a host name, not an address: what the operator writes (a headless Service's name)
        "variants": {
            v: {"batchSize": 2, "endpoints": [f"http://localhost:{ports[v]}"]} for v in (LIGHT, HEAVY)
        },
        "sloS": 10.0,
        "timeScale": 0.001,
    }
    config_path.write_text(json.dumps(config))
    base = {**os.environ, "HADIS_CONFIG_PATH": str(config_path), "HADIS_CONFIG_POLL_S": "0.2"}
    worker_env = {"HADIS_WORKER_HOST": "127.0.0.1"}
    specs = [
        (v, "hadis_worker", {**worker_env, "HADIS_WORKER_VARIANT": v}, "HADIS_WORKER_PORT")
        for v in (LIGHT, HEAVY)
    ]
    gateway_env = {"HADIS_GATEWAY_HOST": "127.0.0.1", "HADIS_ENDPOINT_REFRESH_S": "0.5"}
    specs.append(("gateway", "hadis_gateway", gateway_env, "HADIS_GATEWAY_PORT"))
    procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    try:
        for name, module, env, port_var in specs:
            log = tmp / f"{name}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", module],
                    env={**base, **env, port_var: str(ports[name])},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            procs.append((name, proc, log))
        for name, proc, log in procs:
            _wait_ready(f"http://127.0.0.1:{ports[name]}", proc, log)
        yield Stack(f"http://127.0.0.1:{ports['gateway']}", tmp / "gateway.log", ports)
    finally:
        for _, proc, _ in procs:
            proc.terminate()
        for _, proc, _ in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _gauge(metrics: str, variant: str) -> float:
    m = re.search(rf'^hadis_gateway_endpoints\{{variant="{re.escape(variant)}"\}} (\S+)$', metrics, re.M)
    assert m, f"no hadis_gateway_endpoints series for {variant}"
    return float(m.group(1))


def test_workers_named_localhost_are_resolved_and_serve(stack: Stack) -> None:
    infos = socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses = {str(info[4][0]) for info in infos}
    with httpx.Client(base_url=stack.gateway, timeout=30) as http:
        for body in ({"model": LIGHT}, {"model": HEAVY}, {}):  # pinned to each variant, then the cascade
            resp = http.post("/v1/images/generations", json={"prompt": "a red bicycle", **body})
            assert resp.status_code == 200, resp.text
            (image,) = resp.json()["data"]
            assert image["b64_json"] and image["x_hadis"]["variant"] in (LIGHT, HEAVY)
            if addresses == {"127.0.0.1"}:  # where localhost is also ::1, that one is refused first
                assert image["x_hadis"]["retries"] == 0
        metrics = http.get("/metrics").text
        assert _gauge(metrics, LIGHT) >= 1 and _gauge(metrics, HEAVY) >= 1
        assert _gauge(metrics, LIGHT) == _gauge(metrics, HEAVY) == len(addresses)  # one per address
        assert http.get("/readyz").json()["status"] == "ready"
    # the name was resolved (to addresses), not passed through as written
    assert "worker host localhost resolves to" in stack.gateway_log.read_text()
