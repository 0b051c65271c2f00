"""Gateway + real emulated workers + the real prompt router, all over HTTP: the E1 data path, end to end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.gateway_fakes import ServerThread, wait_for, write_config

from hadis.profiles import load_prompt_scores, load_reference_prompts
from hadis_gateway.server import create_app
from hadis_gateway.settings import Settings
from hadis_worker.server import create_app as create_worker
from hadis_worker.settings import WorkerSettings

LIGHT, HEAVY = "sdxl-lightning", "sd35-large-turbo"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, ServerThread]]]:
    path = tmp_path_factory.mktemp("e2e") / "cascade.json"
    workers = {
        name: ServerThread(create_worker(WorkerSettings(variant=v, config_path=path, config_poll_s=0.05)))
        for name, v in (("light", LIGHT), ("heavy-0", HEAVY), ("heavy-1", HEAVY))
    }
    config: dict[str, Any] = {
        "generation": 1,
        "row": {"light": LIGHT, "heavy": HEAVY, "theta": 0.3, "tau": 0.2, "p": 0.44, "fid": 25.75},
        "variants": {
            LIGHT: {"batchSize": 4, "endpoints": [workers["light"].url]},
            HEAVY: {"batchSize": 2, "endpoints": [workers["heavy-0"].url, workers["heavy-1"].url]},
        },
        "sloS": 10.0,
        "timeScale": 0.01,
    }
    write_config(path, config)
    for w in workers.values():
        w.start()
    gw = ServerThread(create_app(Settings(config_path=path, config_poll_s=0.05))).start()
    wait_for(lambda: httpx.get(f"{gw.url}/readyz").status_code == 200)
    yield gw.url, workers
    gw.stop()
    for w in workers.values():
        w.stop()


def test_reference_prompts_follow_the_cascade(gateway: tuple[str, dict[str, ServerThread]]) -> None:
    url, _ = gateway
    prompts = load_reference_prompts()[:60]
    p_real = load_prompt_scores().p_real[LIGHT]
    hard = escalated = 0
    with httpx.Client(base_url=url, timeout=60) as client:
        for i, prompt in enumerate(prompts):
            resp = client.post("/v1/images/generations", json={"prompt": prompt, "seed": i, "model": "hadis"})
            assert resp.status_code == 200, resp.text
            x = resp.json()["data"][0]["x_hadis"]
            assert x["router_score"] is not None and x["generation_ms"] > 0
            if x["router_hard"]:
                hard += 1
                assert x["variant"] == HEAVY and x["discriminator_score"] is None
                continue
            # the emulated light worker reports the profiled p_real of this reference prompt and seed
            assert x["discriminator_score"] == pytest.approx(p_real[i, i % p_real.shape[1]], abs=1e-6)
            escalated += x["escalated"]
            assert x["variant"] == (HEAVY if x["escalated"] else LIGHT)
        metrics = client.get("/metrics").text
    assert 5 <= hard <= 35, hard  # θ = 0.3 of 60 prompts, from the profile's score quantiles
    assert 1 <= escalated <= 25, escalated  # τ = 0.2 of the rest
    assert f"hadis_gateway_router_hard_total {float(hard)}" in metrics


def test_openai_shape_with_emulated_workers(gateway: tuple[str, dict[str, ServerThread]]) -> None:
    url, _ = gateway
    resp = httpx.post(
        f"{url}/v1/images/generations", json={"prompt": "a red fox in snow", "n": 3}, timeout=60
    )
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert len(data) == 3 and all(d["b64_json"].startswith("iVBOR") for d in data)
