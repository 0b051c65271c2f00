"""Endpoint discovery: worker host names expanded to one endpoint per address (a fake resolver)."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.gateway_fakes import (
    FakeWorker,
    FixedThreshold,
    HostTransport,
    cascade_config,
    hard_word_score,
    write_config,
)

from hadis_gateway.balancer import Balancer
from hadis_gateway.endpoints import (
    EndpointDiscovery,
    NoAddress,
    expand,
    getaddrinfo_resolver,
    named_host,
    ordered,
    with_address,
)
from hadis_gateway.server import create_app
from hadis_gateway.settings import Settings, SettingsError

SVC = "http://svc-light.ns.svc:8000"


class FakeDNS:
    """A resolver double: ``answers[name]`` is a list of addresses, an exception to raise, or
    ``"hang"`` (never answers); every question is recorded."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str] | Exception | str] = {}
        self.asked: list[str] = []

    def set(self, name: str, answer: list[str] | Exception | str) -> None:
        self.answers[name] = answer

    async def __call__(self, host: str) -> Sequence[str]:
        self.asked.append(host)
        answer = self.answers.get(host, OSError("unknown to the fake"))
        if answer == "hang":
            await asyncio.sleep(3600)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, list)
        return list(answer)


class Recorder:
    def __init__(self) -> None:
        self.applied: list[dict[str, list[str]]] = []

    def __call__(self, endpoints: dict[str, list[str]]) -> None:
        self.applied.append(endpoints)

    @property
    def last(self) -> dict[str, list[str]]:
        return self.applied[-1]


def discovery(dns: FakeDNS, **kw: Any) -> tuple[EndpointDiscovery, Recorder]:
    rec = Recorder()
    return EndpointDiscovery(rec, resolver=dns, **kw), rec


# --- pure parts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:8001",
        "http://10.0.0.5:8001/",
        "http://[::1]:8001",
        "http://[fd00::5]:8000/base",
        "https://svc-light.ns.svc:8443",  # an address would fail the certificate's name check
        "not a url",
        "http://svc:notaport",
        "",
    ],
)
def test_ip_literals_and_other_schemes_pass_through(endpoint: str) -> None:
    assert named_host(endpoint) is None
    assert expand({"v": [endpoint]}, {"svc-light.ns.svc": ["10.0.0.1"]}) == {"v": [endpoint]}


def test_a_name_is_expanded_with_scheme_port_and_path_kept() -> None:
    named = named_host("http://Svc-Light.ns.svc:8000/prefix?x=1")
    assert named is not None and named.host == "svc-light.ns.svc"
    assert with_address(named, "10.1.2.3") == "http://10.1.2.3:8000/prefix?x=1"
    assert with_address(named, "fd00::7") == "http://[fd00::7]:8000/prefix?x=1"
    no_port = named_host("http://workers")
    assert no_port is not None and with_address(no_port, "10.0.0.9") == "http://10.0.0.9"


def test_expansion_is_stable_whatever_order_dns_answers_in() -> None:
    addresses = ["10.0.0.12", "fd00::2", "10.0.0.3", "10.0.0.12", "fd00::1", "10.0.0.20"]
    expected = ["10.0.0.3", "10.0.0.12", "10.0.0.20", "fd00::1", "fd00::2"]  # v4 first, numeric order
    rng = random.Random(1)
    for _ in range(20):
        shuffled = addresses[:]
        rng.shuffle(shuffled)
        assert ordered(shuffled) == expected
    assert ordered(["10.0.0.1", "not-an-address"]) == ["10.0.0.1"]


def test_expand_keeps_config_order_and_drops_duplicates() -> None:
    configured = {
        "light": ["http://127.0.0.1:9000", SVC, "http://10.0.0.2:8000"],
        "heavy": ["http://svc-heavy:8000", "http://svc-heavy:8000"],
        "new": ["http://not-yet:8000"],
        "gone": ["http://scaled-to-zero:8000"],
    }
    known = {
        "svc-light.ns.svc": ["10.0.0.1", "10.0.0.2", "fd00::1"],
        "svc-heavy": ["10.0.1.1"],
        "scaled-to-zero": [],
    }
    assert expand(configured, known) == {
        "light": [
            "http://127.0.0.1:9000",
            "http://10.0.0.1:8000",
            "http://10.0.0.2:8000",
            "http://[fd00::1]:8000",
        ],
        "heavy": ["http://10.0.1.1:8000"],
        "new": ["http://not-yet:8000"],  # never resolved: the name itself
        "gone": [],  # no ready pods: no endpoint
    }


# --- the discovery loop -------------------------------------------------------------------------


def test_ip_only_config_is_applied_unchanged_and_nothing_is_resolved() -> None:
    dns = FakeDNS()
    d, rec = discovery(dns)
    local = {"light": ["http://127.0.0.1:9001"], "heavy": ["http://127.0.0.1:9002", "http://127.0.0.1:9003"]}
    d.set_config(local)
    assert rec.applied == [local]
    assert asyncio.run(d.refresh()) is False
    assert rec.applied == [local] and dns.asked == []


def test_names_become_one_endpoint_per_address_and_follow_the_answer() -> None:
    dns = FakeDNS()
    dns.set("svc-light.ns.svc", ["10.0.0.2", "10.0.0.1"])
    d, rec = discovery(dns)
    d.set_config({"light": [SVC]})
    assert rec.last == {"light": [SVC]}  # applied at once; resolved on the next refresh

    async def go() -> None:
        assert await d.refresh() is True
        assert rec.last == {"light": ["http://10.0.0.1:8000", "http://10.0.0.2:8000"]}
        dns.set("svc-light.ns.svc", ["10.0.0.1", "10.0.0.2"])  # same set, other order: no change
        n = len(rec.applied)
        assert await d.refresh() is False and len(rec.applied) == n
        dns.set("svc-light.ns.svc", ["10.0.0.3", "10.0.0.1", "10.0.0.2"])  # scaled up
        assert await d.refresh() is True
        assert rec.last["light"] == ["http://10.0.0.1:8000", "http://10.0.0.2:8000", "http://10.0.0.3:8000"]
        d.set_config({"light": [SVC], "heavy": ["http://127.0.0.1:1"]})  # known names stay expanded
        assert rec.last == {
            "light": ["http://10.0.0.1:8000", "http://10.0.0.2:8000", "http://10.0.0.3:8000"],
            "heavy": ["http://127.0.0.1:1"],
        }

    asyncio.run(go())
    assert d.current == rec.last


def test_a_failure_keeps_the_last_good_addresses_and_an_empty_answer_removes_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dns = FakeDNS()
    dns.set("svc-light.ns.svc", ["10.0.0.1", "10.0.0.2"])
    d, rec = discovery(dns)
    d.set_config({"light": [SVC]})
    two = ["http://10.0.0.1:8000", "http://10.0.0.2:8000"]

    async def go() -> None:
        await d.refresh()
        assert rec.last == {"light": two}
        dns.set("svc-light.ns.svc", socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"))
        with caplog.at_level(logging.WARNING, logger="hadis_gateway.endpoints"):
            for _ in range(3):
                assert await d.refresh() is False
        assert rec.last == {"light": two}
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1  # once per state change, not once per refresh
        assert "svc-light.ns.svc" in warnings[0] and "last 2 address(es)" in warnings[0]
        assert "http://" not in warnings[0]  # host names only
        caplog.clear()
        dns.set("svc-light.ns.svc", [])  # the headless Service has no ready pod
        with caplog.at_level(logging.WARNING, logger="hadis_gateway.endpoints"):
            assert await d.refresh() is True
            assert await d.refresh() is False
        assert rec.last == {"light": []}
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
        dns.set("svc-light.ns.svc", ["10.0.0.2"])  # back
        assert await d.refresh() is True
        assert rec.last == {"light": ["http://10.0.0.2:8000"]}

    asyncio.run(go())


def test_nxdomain_empties_a_name_that_had_addresses_and_keeps_one_that_never_did() -> None:
    """Kubernetes DNS answers NXDOMAIN for a headless Service whose pods all went away; a name
    that never resolved may as well be a typo, and stays as written (its requests fail as before)."""
    dns = FakeDNS()
    dns.set("svc-light.ns.svc", ["10.0.0.1"])
    dns.set("typo", NoAddress("Name or service not known"))
    d, rec = discovery(dns)
    d.set_config({"light": [SVC], "heavy": ["http://typo:8000"]})

    async def go() -> None:
        await d.refresh()
        assert rec.last == {"light": ["http://10.0.0.1:8000"], "heavy": ["http://typo:8000"]}
        dns.set("svc-light.ns.svc", NoAddress("Name or service not known"))
        assert await d.refresh() is True
        assert rec.last == {"light": [], "heavy": ["http://typo:8000"]}
        dns.set("svc-light.ns.svc", ["10.0.0.5"])  # a pod is ready again
        assert await d.refresh() is True
        assert rec.last["light"] == ["http://10.0.0.5:8000"]

    asyncio.run(go())


def test_a_name_never_resolved_stays_as_it_is(caplog: pytest.LogCaptureFixture) -> None:
    dns = FakeDNS()
    dns.set("svc-light.ns.svc", OSError("resolver down"))
    d, rec = discovery(dns)
    d.set_config({"light": [SVC]})
    with caplog.at_level(logging.WARNING, logger="hadis_gateway.endpoints"):
        assert asyncio.run(d.refresh()) is False
    assert rec.last == {"light": [SVC]}
    assert "keeping the name itself" in caplog.text


def test_a_resolver_that_hangs_counts_as_a_failure() -> None:
    dns = FakeDNS()
    dns.set("svc-light.ns.svc", ["10.0.0.1"])
    dns.set("slow", "hang")
    d, rec = discovery(dns, timeout_s=0.05)
    d.set_config({"light": [SVC, "http://slow:8000"]})
    asyncio.run(d.refresh())
    # the other name is not held up; the silent one stays as written (never resolved)
    assert rec.last == {"light": ["http://10.0.0.1:8000", "http://slow:8000"]}
    dns.set("svc-light.ns.svc", "hang")
    assert asyncio.run(d.refresh()) is False  # a timeout keeps the last good addresses
    assert rec.last == {"light": ["http://10.0.0.1:8000", "http://slow:8000"]}


def test_disabled_discovery_applies_the_config_as_written() -> None:
    dns = FakeDNS()
    dns.set("svc-light.ns.svc", ["10.0.0.1"])
    for d, rec in (discovery(dns, refresh_s=0), discovery(dns, enabled=False)):
        d.set_config({"light": [SVC]})
        asyncio.run(d.refresh())
        asyncio.run(d.run())  # returns at once
        assert rec.applied == [{"light": [SVC]}]
    assert dns.asked == []


def test_run_refreshes_periodically() -> None:
    dns = FakeDNS()
    dns.set("svc-light.ns.svc", ["10.0.0.1"])
    d, rec = discovery(dns, refresh_s=0.05)

    async def go() -> None:
        d.set_config({"light": [SVC]})
        task = asyncio.create_task(d.run())
        try:
            await wait_until(lambda: rec.last == {"light": ["http://10.0.0.1:8000"]}, 5.0)
            dns.set("svc-light.ns.svc", ["10.0.0.1", "10.0.0.4"])
            await wait_until(lambda: len(rec.last["light"]) == 2, 5.0)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(go())


def test_run_resolves_at_once_when_the_config_changes() -> None:
    dns = FakeDNS()
    dns.set("svc-heavy", ["10.0.1.1"])
    d, rec = discovery(dns, refresh_s=3600)  # the period never comes within the test

    async def go() -> None:
        d.set_config({"light": ["http://127.0.0.1:1"]})
        task = asyncio.create_task(d.run())
        try:
            await asyncio.sleep(0.01)
            d.set_config({"light": ["http://127.0.0.1:1"], "heavy": ["http://svc-heavy:8000"]})
            assert rec.last["heavy"] == ["http://svc-heavy:8000"]  # applied at once, as written
            await wait_until(lambda: rec.last["heavy"] == ["http://10.0.1.1:8000"], 5.0)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(go())


async def wait_until(predicate: Any, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.005)


def test_requests_in_flight_are_released_after_their_address_went_away() -> None:
    balancer = Balancer()
    dns = FakeDNS()
    dns.set("svc-light.ns.svc", ["10.0.0.1"])
    d = EndpointDiscovery(balancer.set_endpoints, resolver=dns)

    async def go() -> None:
        d.set_config({"light": [SVC]})
        await d.refresh()
        old = await balancer.acquire("light", cap=1)
        assert old == "http://10.0.0.1:8000"
        waiter = asyncio.ensure_future(balancer.acquire("light", cap=1))
        await asyncio.sleep(0)
        assert not waiter.done()  # the only replica is busy
        dns.set("svc-light.ns.svc", ["10.0.0.2"])  # its pod was replaced
        await d.refresh()
        assert await asyncio.wait_for(waiter, 1) == "http://10.0.0.2:8000"  # the new pod takes it
        balancer.release(old)
        assert balancer.outstanding(old) == 0 and balancer.variant_outstanding("light") == 1

    asyncio.run(go())


def test_getaddrinfo_resolver_maps_no_such_name_to_no_address(monkeypatch: pytest.MonkeyPatch) -> None:
    async def go() -> None:
        loop = asyncio.get_running_loop()
        assert "127.0.0.1" in await getaddrinfo_resolver("localhost")  # the real resolver

        async def fake(host: str, port: Any, **kw: Any) -> Any:
            assert kw["type"] == socket.SOCK_STREAM and kw["family"] == socket.AF_UNSPEC
            if host == "gone":
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            if host == "flaky":
                raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fd00::1", 0, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 0)),
            ]

        monkeypatch.setattr(loop, "getaddrinfo", fake)
        with pytest.raises(NoAddress):
            await getaddrinfo_resolver("gone")
        with pytest.raises(socket.gaierror):
            await getaddrinfo_resolver("flaky")
        assert await getaddrinfo_resolver("svc") == ["fd00::1", "10.0.0.1"]

    asyncio.run(go())


# --- in the app: balancer, /readyz and the gauge --------------------------------------------------


def test_app_dispatches_to_every_address_and_reports_them(tmp_path: Path) -> None:
    light = {a: FakeWorker(a, "light") for a in ("10.0.0.1", "10.0.0.2")}
    heavy = FakeWorker("h", "heavy")
    dns = FakeDNS()
    dns.set("svc-light", ["10.0.0.2", "10.0.0.1"])
    dns.set("svc-heavy", ["10.0.1.1"])
    path = tmp_path / "cascade.json"
    write_config(
        path, cascade_config(["http://svc-light:8000"], ["http://svc-heavy:8000"], theta=0.5, tau=0.0)
    )
    transport = HostTransport({"10.0.0.1": light["10.0.0.1"].app(), "10.0.0.2": light["10.0.0.2"].app(),
                               "10.0.1.1": heavy.app()})  # fmt: skip
    app = create_app(
        Settings(config_path=path, config_poll_s=60, endpoint_refresh_s=0.05),
        score_prompt=hard_word_score,
        router_threshold=FixedThreshold(0.5),
        disc_threshold=FixedThreshold(0.5),
        transport=transport,
        resolver=dns,
    )
    with TestClient(app) as c:
        ready = c.get("/readyz")  # resolved before the first request
        assert ready.status_code == 200 and ready.json()["endpoints"] == {"light": 2, "heavy": 1}
        metrics = c.get("/metrics").text
        assert 'hadis_gateway_endpoints{variant="light"} 2.0' in metrics
        assert 'hadis_gateway_endpoints{variant="heavy"} 1.0' in metrics
        for _ in range(4):
            resp = c.post("/v1/images/generations", json={"prompt": "a cat"})
            assert resp.status_code == 200, resp.text
        assert all(w.requests for w in light.values())  # both pods served
        dns.set("svc-light", [])  # no ready light pod any more
        # still ready: the other variant's requests are served (readiness follows the config)
        _wait(lambda: c.get("/readyz").json()["endpoints"] == {"light": 0, "heavy": 1})
        assert c.get("/readyz").status_code == 200
        resp = c.post("/v1/images/generations", json={"prompt": "a cat"})
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "no_workers"
        assert 'hadis_gateway_endpoints{variant="light"} 0.0' in c.get("/metrics").text


def test_an_injected_transport_without_a_resolver_keeps_host_names(tmp_path: Path) -> None:
    path = tmp_path / "cascade.json"
    write_config(path, cascade_config(["http://l0"], ["http://h0"]))
    transport = HostTransport({"l0": FakeWorker("l0", "light").app(), "h0": FakeWorker("h0", "heavy").app()})
    app = create_app(Settings(config_path=path), score_prompt=hard_word_score, transport=transport)
    with TestClient(app) as c:
        assert c.get("/readyz").status_code == 200
        assert c.post("/v1/images/generations", json={"prompt": "a cat", "model": "light"}).status_code == 200
        assert 'hadis_gateway_endpoints{variant="light"} 1.0' in c.get("/metrics").text


def _wait(predicate: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.02)


def test_refresh_setting() -> None:
    assert Settings.from_env({"HADIS_CONFIG_PATH": "c"}).endpoint_refresh_s == 5.0
    off = Settings.from_env({"HADIS_CONFIG_PATH": "c", "HADIS_ENDPOINT_REFRESH_S": "0"})
    assert off.endpoint_refresh_s == 0
    with pytest.raises(SettingsError, match="HADIS_ENDPOINT_REFRESH_S"):
        Settings.from_env({"HADIS_CONFIG_PATH": "c", "HADIS_ENDPOINT_REFRESH_S": "-1"})
