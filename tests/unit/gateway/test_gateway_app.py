"""The gateway app in-process: handlers against fake workers over an ASGI transport (fast)."""

from __future__ import annotations

import random
from collections.abc import Iterator
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

from hadis_gateway.server import create_app
from hadis_gateway.settings import Settings


class Rig:
    def __init__(self, tmp_path: Path, config: dict[str, Any] | None = None, **settings: Any) -> None:
        self.light, self.heavy, self.heavy2 = (
            FakeWorker("l0", "light"),
            FakeWorker("h0", "heavy"),
            FakeWorker("h1", "heavy"),
        )
        self.path = tmp_path / "cascade.json"
        write_config(self.path, config or cascade_config(["http://l0"], ["http://h0", "http://h1"]))
        self.settings = Settings(config_path=self.path, config_poll_s=60, **settings)
        self.router, self.disc = FixedThreshold(0.5), FixedThreshold(0.5)
        transport = HostTransport({"l0": self.light.app(), "h0": self.heavy.app(), "h1": self.heavy2.app()})
        self.app = create_app(
            self.settings,
            score_prompt=hard_word_score,
            router_threshold=self.router,
            disc_threshold=self.disc,
            transport=transport,
            rng=random.Random(0),
        )

    def heavy_count(self) -> int:
        return len(self.heavy.requests) + len(self.heavy2.requests)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[Rig, TestClient]]:
    r = Rig(tmp_path)
    with TestClient(r.app) as client:
        yield r, client


def gen(client: TestClient, **body: Any) -> Any:
    return client.post("/v1/images/generations", json={"prompt": "a cat", **body})


def test_easy_prompt_served_by_light(rig: tuple[Rig, TestClient]) -> None:
    r, c = rig
    resp = gen(c, n=2, seed=7, size="256x256")
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert len(data) == 2
    x = data[0]["x_hadis"]
    assert (x["variant"], x["router_hard"], x["escalated"], x["discriminator_score"]) == (
        "light",
        False,
        False,
        0.9,
    )
    assert x["router_score"] == 0.0 and data[0]["b64_json"]
    sent = r.light.requests
    assert [q.seed for q in sent] == [7, 8] and all(q.discriminate and q.width == 256 for q in sent)
    assert r.heavy_count() == 0 and r.router.seen == [0.0, 0.0] and r.disc.seen == [0.9, 0.9]


def test_hard_prompt_goes_straight_to_heavy(rig: tuple[Rig, TestClient]) -> None:
    r, c = rig
    x = gen(c, prompt="a hard scene").json()["data"][0]["x_hadis"]
    assert (x["variant"], x["router_hard"], x["escalated"]) == ("heavy", True, False)
    assert not r.light.requests and r.heavy_count() == 1
    (q,) = r.heavy.requests + r.heavy2.requests
    assert not q.discriminate and q.deadline_unix_s > 0


def test_low_p_real_escalates_to_heavy(rig: tuple[Rig, TestClient]) -> None:
    r, c = rig
    x = gen(c, prompt="a blurry cat").json()["data"][0]["x_hadis"]
    assert (x["variant"], x["escalated"], x["discriminator_score"]) == ("heavy", True, 0.05)
    assert len(r.light.requests) == 1 and r.heavy_count() == 1


def test_deadline_is_arrival_plus_admission_factor_times_slo(rig: tuple[Rig, TestClient]) -> None:
    import time

    r, c = rig
    before = time.time()
    gen(c)
    (q,) = r.light.requests
    assert before + 1.5 * 5.0 <= q.deadline_unix_s <= time.time() + 1.5 * 5.0


def test_pinned_model_and_model_list(rig: tuple[Rig, TestClient]) -> None:
    r, c = rig
    assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["hadis", "heavy", "light"]
    x = gen(c, model="heavy").json()["data"][0]["x_hadis"]
    assert x["variant"] == "heavy" and x["router_score"] is None and not r.light.requests


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 4001}, "prompt"),
        ({"n": 0}, "n"),
        ({"n": 5}, "n"),
        ({"size": "13x13"}, "size"),
        ({"model": "dall-e-3"}, "model"),
        ({"response_format": "url"}, "response_format"),
        ({"prompt": None}, "prompt"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_input_names_the_field(rig: tuple[Rig, TestClient], body: dict[str, Any], param: str) -> None:
    _, c = rig
    resp = gen(c, **body)
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["param"] == param and err["type"] == "invalid_request_error" and param in err["message"]


def test_malformed_json_and_missing_prompt(rig: tuple[Rig, TestClient]) -> None:
    _, c = rig
    resp = c.post("/v1/images/generations", content=b"{nope", headers={"content-type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_json"
    resp = c.post("/v1/images/generations", json={"n": 1})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "prompt"
    assert c.get("/nope").json()["error"]["code"] == "not_found"


def test_retry_on_another_replica_when_connection_fails(tmp_path: Path) -> None:
    r = Rig(tmp_path, cascade_config(["http://l0"], ["http://dead", "http://h0"], theta=1.0))
    with TestClient(r.app) as c:
        for _ in range(4):
            x = gen(c).json()["data"][0]["x_hadis"]
            assert x["variant"] == "heavy"
        assert len(r.heavy.requests) == 4
        assert "hadis_gateway_worker_retries_total" in c.get("/metrics").text


def test_all_replicas_down_is_an_explicit_error(tmp_path: Path) -> None:
    r = Rig(tmp_path, cascade_config(["http://dead1", "http://dead2"], ["http://h0"], theta=0.0))
    with TestClient(r.app) as c:
        resp = gen(c)
        assert resp.status_code == 502 and resp.json()["error"]["code"] == "worker_unavailable"


def test_worker_refusal_maps_to_openai_error(rig: tuple[Rig, TestClient]) -> None:
    r, c = rig
    r.light.refuse = "deadline"
    resp = gen(c)
    assert resp.status_code == 504 and resp.json()["error"]["code"] == "deadline"
    r.light.refuse = "overloaded"
    resp = gen(c)
    assert resp.status_code == 429 and resp.headers["retry-after"] == "1"


def test_failed_escalation_serves_the_light_image(rig: tuple[Rig, TestClient]) -> None:
    r, c = rig
    r.heavy.refuse = r.heavy2.refuse = "overloaded"
    x = gen(c, prompt="blurry").json()["data"][0]["x_hadis"]
    assert (x["variant"], x["escalated"], x["escalation_error"]) == ("light", False, "overloaded")


def test_split_config_routes_by_share(tmp_path: Path) -> None:
    cfg = cascade_config(["http://l0"], ["http://h0"])
    del cfg["row"]
    cfg["split"] = {"light": 0.0, "heavy": 1.0}
    r = Rig(tmp_path, cfg)
    with TestClient(r.app) as c:
        for _ in range(3):
            assert gen(c).json()["data"][0]["x_hadis"]["variant"] == "heavy"
        assert not r.light.requests and r.router.seen == []


def test_queue_full_is_429_with_retry_after(rig: tuple[Rig, TestClient]) -> None:
    r, c = rig
    r.app.state.gateway.in_flight = r.settings.queue_capacity
    resp = gen(c)
    assert resp.status_code == 429 and resp.headers["retry-after"] == "1"
    assert resp.json()["error"]["code"] == "queue_full"
    r.app.state.gateway.in_flight = 0


def test_no_config_is_not_ready(tmp_path: Path) -> None:
    s = Settings(config_path=tmp_path / "missing.json")
    with TestClient(create_app(s, score_prompt=hard_word_score)) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 503
        resp = gen(c)
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "not_ready"


@pytest.mark.parametrize(
    ("theta", "tau", "light", "heavy", "ready"),
    [
        (1.0, 0.0, [], ["http://h"], True),  # every prompt is hard: the light model is not used
        (0.0, 0.0, ["http://l"], [], True),  # nothing escalates: the heavy model is not used
        (0.5, 0.0, ["http://l"], [], False),
        (0.0, 0.2, [], ["http://h"], False),
    ],
)
def test_ready_when_every_variant_in_use_has_endpoints(
    tmp_path: Path, theta: float, tau: float, light: list[str], heavy: list[str], ready: bool
) -> None:
    path = tmp_path / "cascade.json"
    write_config(path, cascade_config(light, heavy, theta=theta, tau=tau))
    with TestClient(create_app(Settings(config_path=path), score_prompt=hard_word_score)) as c:
        assert (c.get("/readyz").status_code == 200) is ready


def test_metrics_are_exposed(rig: tuple[Rig, TestClient]) -> None:
    _, c = rig
    gen(c)
    gen(c, prompt="hard")
    gen(c, prompt="blurry")
    text = c.get("/metrics").text
    for name in (
        'hadis_gateway_requests_total{outcome="ok",variant="light"} 1.0',
        'hadis_gateway_requests_total{outcome="escalated",variant="heavy"} 1.0',
        "hadis_gateway_router_hard_total 1.0",
        "hadis_gateway_escalations_total 1.0",
        "hadis_gateway_in_flight_requests 0.0",
        'hadis_gateway_queue_length_requests{variant="light"} 0.0',
        "hadis_gateway_request_latency_seconds_count 3.0",
        "hadis_gateway_slo_violations_total 0.0",
    ):
        assert name in text
    assert c.get("/readyz").json()["status"] == "ready"


def test_client_request_id_is_used_when_valid(rig: tuple[Rig, TestClient]) -> None:
    r, c = rig
    c.post("/v1/images/generations", json={"prompt": "a"}, headers={"x-request-id": "abc"})
    c.post("/v1/images/generations", json={"prompt": "a"}, headers={"x-request-id": "x" * 500})
    assert r.light.requests[0].request_id == "abc" and len(r.light.requests[1].request_id) == 32


def test_response_is_exactly_the_openai_models_shape(rig: tuple[Rig, TestClient]) -> None:
    """The hot path builds its JSON without pydantic; it must match what the models would dump."""
    from hadis_gateway.openai_api import ImagesResponse

    _, c = rig
    for prompt in ("a cat", "hard", "blurry"):
        resp = gen(c, prompt=prompt, n=2)
        assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
        body = resp.json()
        assert ImagesResponse.model_validate(body).model_dump(exclude_none=False) == body


def test_fast_paths_keep_content_types_and_refuse_huge_bodies(rig: tuple[Rig, TestClient]) -> None:
    r, c = rig
    assert c.get("/healthz").json() == {"status": "ok"}
    assert c.get("/metrics").headers["content-type"].startswith("text/plain")
    resp = c.post("/v1/images/generations", content=b"{" + b" " * (2 << 20) + b"}")
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "request_too_large"
    assert not r.light.requests
    # the OpenAPI document still lists the images endpoint
    assert "/v1/images/generations" in c.get("/openapi.json").json()["paths"]
