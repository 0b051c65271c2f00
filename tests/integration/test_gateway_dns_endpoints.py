"""Endpoint discovery with the real resolver: worker endpoints named ``http://localhost:PORT``.

The gateway and two emulated workers run as ``python -m hadis_gateway`` / ``python -m hadis_worker``
(latencies × 0.001). The configuration names the workers by host name, as the operator names a
variant's headless Service; the gateway resolves it with getaddrinfo and dispatches to the
addresses. Several pods behind one name needs DNS control, so that expansion is unit-tested with a
fake resolver (tests/unit/gateway/test_endpoint_discovery.py).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import httpx
import pytest
from tests.process_stack import ProcessStack, running_stack

pytestmark = pytest.mark.integration

LIGHT, HEAVY = "sdxl-lightning", "sd35-large-turbo"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessStack]:
    row = {"light": LIGHT, "heavy": HEAVY, "theta": 0.3, "tau": 0.2, "p": 0.44, "fid": 25.75}
    with running_stack(
        tmp_path_factory.mktemp("dns"),
        row,
        slo_s=10.0,
        time_scale=0.001,
        batch_size=2,
        # a host name, not an address: what the operator writes (a headless Service's name)
        endpoint_host="localhost",
        gateway_env={"HADIS_ENDPOINT_REFRESH_S": "0.5"},
        ready_timeout_s=120.0,
    ) as s:
        yield s


def _gauge(metrics: str, variant: str) -> float:
    m = re.search(rf'^hadis_gateway_endpoints\{{variant="{re.escape(variant)}"\}} (\S+)$', metrics, re.M)
    assert m, f"no hadis_gateway_endpoints series for {variant}"
    return float(m.group(1))


def test_workers_named_localhost_are_resolved_and_serve(stack: ProcessStack) -> None:
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
    assert "worker host localhost resolves to" in stack.logs["gateway"].read_text()
