"""Request limits (settings → 400/413 naming the field, and the OpenAPI document), hostile JSON, and
the optional API keys (``HADIS_API_KEYS_FILE``), in-process against fake workers."""

from __future__ import annotations

import asyncio
import json
import random
import time
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

from hadis_gateway.auth import ApiKeys, ApiKeysError, bearer_token, parse_keys
from hadis_gateway.server import create_app
from hadis_gateway.settings import DEFAULT_MAX_BODY_BYTES, Settings, SettingsError

GEN = "/v1/images/generations"


class Rig:
    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.light, self.heavy = FakeWorker("l0", "light"), FakeWorker("h0", "heavy")
        path = tmp_path / "cascade.json"
        write_config(path, cascade_config(["http://l0"], ["http://h0"]))
        self.app = create_app(
            Settings(config_path=path, config_poll_s=0.05, **settings),
            score_prompt=hard_word_score,
            router_threshold=FixedThreshold(0.5),
            disc_threshold=FixedThreshold(0.5),
            transport=HostTransport({"l0": self.light.app(), "h0": self.heavy.app()}),
            rng=random.Random(0),
        )

    def worker_calls(self) -> int:
        return len(self.light.requests) + len(self.heavy.requests)


LIMITS = {"max_prompt_chars": 20, "max_images": 2, "sizes": ("256x256", "512x512"), "max_body_bytes": 2048}


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[Rig, TestClient]]:
    rig = Rig(tmp_path, **LIMITS)
    with TestClient(rig.app) as client:
        yield rig, client


def _error(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err: dict[str, Any] = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        ({"prompt": "x" * 21}, "prompt", "at most 20"),
        ({"prompt": "ok", "negative_prompt": "y" * 21}, "negative_prompt", "at most 20"),
        ({"prompt": "ok", "n": 3}, "n", "at most 2"),
        ({"prompt": "ok", "size": "1024x1024"}, "size", "256x256"),
    ],
)
def test_configured_limits_are_400_naming_the_field(
    limited: tuple[Rig, TestClient], body: dict[str, Any], param: str, says: str
) -> None:
    rig, c = limited
    err = _error(c.post(GEN, json=body), 400)
    assert err["param"] == param and err["type"] == "invalid_request_error"
    assert param in err["message"] and says in err["message"]
    assert rig.worker_calls() == 0


def test_requests_at_the_limits_are_served(limited: tuple[Rig, TestClient]) -> None:
    rig, c = limited
    body = {"prompt": "x" * 20, "negative_prompt": "y" * 20, "n": 2, "size": "256x256"}
    resp = c.post(GEN, json=body)
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["data"]) == 2 and rig.worker_calls() == 2


def test_body_over_the_configured_size_is_413(limited: tuple[Rig, TestClient]) -> None:
    rig, c = limited
    body = json.dumps({"prompt": "ok", "user": "u" * 200, "pad": "p" * 2000}).encode()
    assert len(body) > 2048
    err = _error(c.post(GEN, content=body, headers={"content-type": "application/json"}), 413)
    assert err["code"] == "request_too_large" and "2048 bytes" in err["message"]
    ok = json.dumps({"prompt": "ok", "pad": "p" * 1900}).encode()
    assert len(ok) <= 2048 and c.post(GEN, content=ok).status_code == 200
    assert rig.worker_calls() == 1


def test_openapi_document_describes_the_body_with_the_limits_in_force(
    limited: tuple[Rig, TestClient],
) -> None:
    _, c = limited
    op = c.get("/openapi.json").json()["paths"][GEN]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    props = schema["properties"]
    assert op["requestBody"]["required"] and schema["required"] == ["prompt"]
    assert (props["prompt"]["minLength"], props["prompt"]["maxLength"]) == (1, 20)
    assert props["negative_prompt"]["anyOf"][0]["maxLength"] == 20
    assert (props["n"]["minimum"], props["n"]["maximum"]) == (1, 2)
    assert props["size"]["enum"] == ["256x256", "512x512"]
    assert props["model"]["anyOf"][0]["enum"] == ["hadis", "heavy", "light"]
    seed = props["seed"]["anyOf"][0]  # JSON Schema keywords, not pydantic's ge/lt
    assert (seed["minimum"], seed["exclusiveMaximum"]) == (0, 2**62)
    assert props["guidance_scale"]["anyOf"][0] == {"type": "number", "minimum": 0, "maximum": 50}
    assert {"200", "400", "413", "429", "502", "503", "504"} <= set(op["responses"])
    assert "401" not in op["responses"] and "security" not in op  # no keys configured


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b'{"prompt": "a", "guidance_scale": NaN}', None),  # not JSON
        (b'{"prompt": "a", "seed": Infinity}', None),
        (b"[" * 100_000 + b"]" * 100_000, None),  # deeper than the parser's recursion limit
        (b'{"prompt": "a", "seed": ' + b"9" * 5000 + b"}", None),  # beyond int("…") digit limit
        (b'{"prompt": "\\ud800"}', "prompt"),  # a lone surrogate: not text
        (b'{"prompt": "a", "negative_prompt": "\\udfff"}', "negative_prompt"),
        (b'{"prompt": "a", "n": "2"}', "n"),  # JSON Schema types: no string → number conversion
        (b'{"prompt": "a", "n": true}', "n"),
        (b'{"prompt": "a", "guidance_scale": "7"}', "guidance_scale"),
        (b'{"prompt": "a", "n": 1.5}', "n"),
        (b'{"prompt": "a", "seed": 4611686018427387904}', "seed"),
        (b"\xff\xfe", None),  # not UTF-8
        (b"", None),
        (b'"a prompt"', None),
    ],
)
def test_hostile_bodies_are_400_not_500(tmp_path: Path, raw: bytes, param: str | None) -> None:
    rig = Rig(tmp_path)  # the default limits: room for the deep and the long bodies
    with TestClient(rig.app) as c:
        err = _error(c.post(GEN, content=raw, headers={"content-type": "application/json"}), 400)
    assert err["param"] == param and err["code"] in ("invalid_json", "invalid_value")
    assert (err["code"] == "invalid_json") == (param is None)
    assert rig.worker_calls() == 0


def test_integral_floats_are_integers_as_in_json_schema(limited: tuple[Rig, TestClient]) -> None:
    rig, c = limited
    resp = c.post(GEN, json={"prompt": "a", "n": 2.0, "seed": 7.0, "num_inference_steps": 4.0})
    assert resp.status_code == 200, resp.text
    assert sorted(r.seed or 0 for r in rig.light.requests) == [7, 8]


def test_settings_read_the_limits_and_the_keys_file() -> None:
    base = {"HADIS_CONFIG_PATH": "/c.json"}
    s = Settings.from_env(base)
    assert (s.max_prompt_chars, s.max_body_bytes, s.max_images, s.api_keys_file) == (
        4000,
        DEFAULT_MAX_BODY_BYTES,
        4,
        None,
    )
    s = Settings.from_env(
        {
            **base,
            "HADIS_MAX_PROMPT_CHARS": "500",
            "HADIS_MAX_BODY_BYTES": "65536",
            "HADIS_API_KEYS_FILE": "/etc/hadis/keys",
        }
    )
    assert (s.max_prompt_chars, s.max_body_bytes, s.api_keys_file) == (500, 65536, Path("/etc/hadis/keys"))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HADIS_MAX_PROMPT_CHARS", "0"),
        ("HADIS_MAX_PROMPT_CHARS", "4001"),  # longer than the workers accept
        ("HADIS_MAX_PROMPT_CHARS", "many"),
        ("HADIS_MAX_BODY_BYTES", "10"),
        ("HADIS_MAX_IMAGES", "65"),
    ],
)
def test_bad_limits_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"HADIS_CONFIG_PATH": "/c.json", name: value})


# --- API keys -------------------------------------------------------------------------------------


def test_keys_file_format_and_bearer_header() -> None:
    text = "# rotated 2026-11\n\n  key-one  \nkey-two\n#key-three\n\tkey-two\n"
    assert parse_keys(text) == ["key-one", "key-two", "key-two"]
    assert bearer_token(b"Bearer abc") == b"abc" and bearer_token(b"bearer   abc ") == b"abc"
    assert bearer_token(b"Basic abc") is None and bearer_token(b"Bearer ") is None
    assert bearer_token(None) is None and bearer_token(b"abc") is None


def test_api_keys_allow_only_listed_keys_and_follow_the_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("# two keys\nalpha-key\nbeta-key\n")
    keys = ApiKeys(path)
    assert len(keys) == 2
    assert keys.allows(b"Bearer alpha-key") and keys.allows(b"Bearer beta-key")
    for bad in (b"Bearer alpha", b"Bearer alpha-key2", b"Bearer # two keys", b"alpha-key", None):
        assert not keys.allows(bad), bad
    path.write_text("gamma-key\n")
    assert keys.reload() and not keys.reload()  # changed once, then unchanged
    assert keys.allows(b"Bearer gamma-key") and not keys.allows(b"Bearer alpha-key")
    path.write_text("# none left\n")
    keys.reload()
    assert len(keys) == 0 and not keys.allows(b"Bearer gamma-key")  # an empty file refuses all


def test_unreadable_keys_file_stops_the_start_but_not_a_running_gateway(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ApiKeysError, match=r"HADIS_API_KEYS_FILE.*nope"):
        ApiKeys(missing)
    path = tmp_path / "keys"
    path.write_text("secret-key-1\n")
    keys = ApiKeys(path)
    path.unlink()

    async def a_few_polls() -> None:
        task = asyncio.create_task(keys.run(0.01))
        await asyncio.sleep(0.1)
        task.cancel()

    asyncio.run(a_few_polls())
    assert keys.allows(b"Bearer secret-key-1")  # kept
    assert "cannot read" in caplog.text and "secret-key-1" not in caplog.text


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[tuple[Rig, TestClient, Path]]:
    path = tmp_path / "api-keys"
    path.write_text("right-key\n")
    rig = Rig(tmp_path, api_keys_file=path)
    with TestClient(rig.app) as client:
        yield rig, client, path


def test_v1_needs_a_key_and_health_metrics_stay_open(keyed: tuple[Rig, TestClient, Path]) -> None:
    rig, c, _ = keyed
    for headers in ({}, {"authorization": "Bearer wrong-key"}, {"authorization": "right-key"}):
        for resp in (
            c.get("/v1/models", headers=headers),
            c.post(GEN, json={"prompt": "a"}, headers=headers),
        ):
            err = _error(resp, 401)
            assert err["code"] == "invalid_api_key" and err["type"] == "invalid_request_error"
            assert "right-key" not in resp.text and "wrong-key" not in resp.text
            assert resp.headers["www-authenticate"].startswith("Bearer")
    assert _error(c.get("/v1/nothing-here"), 401)["code"] == "invalid_api_key"  # before routing
    assert rig.worker_calls() == 0
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert c.get(path).status_code == 200, path
    good = {"authorization": "Bearer right-key"}
    assert c.get("/v1/models", headers=good).status_code == 200
    assert c.post(GEN, json={"prompt": "a"}, headers=good).status_code == 200
    assert _error(c.get("/v1/nothing-here", headers=good), 404)["code"] == "not_found"


def test_rotated_key_applies_without_a_restart(keyed: tuple[Rig, TestClient, Path]) -> None:
    _, c, path = keyed
    path.write_text("next-key\n")
    for _ in range(100):  # polled every 0.05 s
        if c.get("/v1/models", headers={"authorization": "Bearer next-key"}).status_code == 200:
            break
        time.sleep(0.05)
    assert c.get("/v1/models", headers={"authorization": "Bearer next-key"}).status_code == 200
    assert c.get("/v1/models", headers={"authorization": "Bearer right-key"}).status_code == 401


def test_openapi_document_declares_the_bearer_scheme(keyed: tuple[Rig, TestClient, Path]) -> None:
    _, c, _ = keyed
    doc = c.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "one of the gateway's keys",
    }
    for path, ops in doc["paths"].items():
        for op in ops.values():
            assert ("security" in op) == path.startswith("/v1/"), path
            assert ("401" in op["responses"]) == path.startswith("/v1/"), path
