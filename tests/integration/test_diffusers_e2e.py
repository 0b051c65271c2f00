"""End to end over real HTTP with real models: the gateway (real router) in front of two worker
processes running the diffusers engine on tiny random-weight pipelines — an SD-style light worker
with the CLIP discriminator and an SDXL-style heavy worker with the Lightning UNet checkpoint — called
with the official ``openai`` client. θ and τ at their extremes pin every routing decision."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.gateway_fakes import ServerThread, free_port, wait_for, write_config

from hadis_gateway.server import create_app
from hadis_gateway.settings import Settings

pytestmark = pytest.mark.slow
openai = pytest.importorskip("openai")
pytest.importorskip("diffusers")

LIGHT, HEAVY = "tiny-sd", "tiny-sdxl-lightning"


@dataclass
class Stack:
    gateway: ServerThread
    workers: dict[str, tuple[subprocess.Popen[bytes], str, Path]]
    config_path: Path
    profile: Path
    generation: int = 0

    def write(self, theta: float, tau: float) -> None:
        """Write a cascade configuration with this θ and τ (a new generation)."""
        self.generation += 1
        variant = {"batchSize": 2, "steps": 2, "guidanceScale": 0}
        p = theta + (1 - theta) * tau
        config: dict[str, Any] = {
            "generation": self.generation,
            "row": {"light": LIGHT, "heavy": HEAVY, "theta": theta, "tau": tau, "p": p, "fid": 35.0},
            "variants": {v: {**variant, "endpoints": [self.workers[v][1]]} for v in (LIGHT, HEAVY)},
            "sloS": 120.0,
            "profile": str(self.profile),
        }
        write_config(self.config_path, config)

    def route(self, theta: float, tau: float) -> None:
        """Apply θ and τ and wait until the gateway runs with them."""
        self.write(theta, tau)
        gen = self.generation
        wait_for(lambda: httpx.get(f"{self.gateway.url}/readyz").json().get("generation") == gen, 10)


def start_worker(variant: str, env: dict[str, str], logs: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log = logs / f"{variant}.log"
    full = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HADIS_WORKER_VARIANT": variant,
        "HADIS_ENGINE": "diffusers",
        "HADIS_DEVICE": "cpu",
        "HADIS_WORKER_HOST": "127.0.0.1",
        "HADIS_WORKER_PORT": str(port),
        "HADIS_CONFIG_POLL_S": "0.05",
        **env,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hadis_worker"], env=full, stdout=out, stderr=subprocess.STDOUT
        )
    return proc, f"http://127.0.0.1:{port}", log


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"worker exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"worker at {url} not ready in {timeout_s} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def stack(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("diffusers-e2e")
    config_path = work / "cascade.json"
    common = {"HADIS_PROFILE": str(tiny_models["profile"]), "HADIS_CONFIG_PATH": str(config_path)}
    workers = {
        LIGHT: start_worker(
            LIGHT,
            {
                **common,
                "HADIS_DISCRIMINATOR_CLIP": str(tiny_models["clip"]),
                "HADIS_DISCRIMINATOR_HEAD": str(tiny_models["head"]),
            },
            work,
        ),
        HEAVY: start_worker(
            HEAVY, {**common, "HADIS_UNET_CHECKPOINT": str(tiny_models["unet_checkpoint"])}, work
        ),
    }
    gateway: ServerThread | None = None
    try:
        for proc, url, log in workers.values():
            wait_ready(proc, url, log)
        settings = Settings(config_path=config_path, config_poll_s=0.05, sizes=("64x64",))
        s = Stack(ServerThread(create_app(settings)), workers, config_path, tiny_models["profile"])
        s.write(theta=0.0, tau=0.0)
        gateway = s.gateway.start()
        s.route(theta=0.0, tau=0.0)
        yield s
    finally:
        if gateway is not None:
            gateway.stop()
        for proc, _, _ in workers.values():
            proc.terminate()
        for proc, _, _ in workers.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def images(
    stack: Stack, prompt: str, n: int = 2, seed: int | None = None
) -> list[tuple[bytes, dict[str, Any]]]:
    client = openai.OpenAI(base_url=f"{stack.gateway.url}/v1", api_key="unused", max_retries=0, timeout=120)
    extra = {"seed": seed} if seed is not None else {}
    result = client.images.generate(
        model="hadis", prompt=prompt, n=n, size="64x64", response_format="b64_json", extra_body=extra
    )
    assert result.data is not None and len(result.data) == n
    out = []
    for image in result.data:
        assert image.b64_json is not None and image.model_extra is not None
        out.append((base64.b64decode(image.b64_json), image.model_extra["x_hadis"]))
    return out


def png_size(png: bytes) -> tuple[int, int]:
    from PIL import Image

    size: tuple[int, int] = Image.open(io.BytesIO(png)).size
    return size


def test_tau_zero_serves_the_light_image_with_its_score(stack: Stack) -> None:
    stack.route(theta=0.0, tau=0.0)
    for png, x in images(stack, "a small wooden boat on a calm lake"):
        assert png_size(png) == (64, 64)
        assert (x["variant"], x["router_hard"], x["escalated"]) == (LIGHT, False, False)
        assert x["router_score"] is not None
        assert 0.0 <= x["discriminator_score"] <= 1.0  # the light worker's CLIP discriminator
        assert x["generation_ms"] > 0


def test_tau_one_escalates_every_light_image_to_heavy(stack: Stack) -> None:
    stack.route(theta=0.0, tau=1.0)
    for png, x in images(stack, "an astronaut riding a horse on the moon"):
        assert png_size(png) == (64, 64)
        assert (x["variant"], x["router_hard"], x["escalated"]) == (HEAVY, False, True)
        assert 0.0 <= x["discriminator_score"] <= 1.0  # the light image's score, which escalated it


def test_theta_one_sends_everything_straight_to_heavy(stack: Stack) -> None:
    stack.route(theta=1.0, tau=0.0)
    for _, x in images(stack, "a cat", n=1):
        assert (x["variant"], x["router_hard"], x["escalated"]) == (HEAVY, True, False)
        assert x["discriminator_score"] is None  # the light stage never ran


def test_seeds_make_images_reproducible_through_the_cascade(stack: Stack) -> None:
    stack.route(theta=0.0, tau=0.0)
    first = images(stack, "a lighthouse at dusk", n=1, seed=11)[0]
    again = images(stack, "a lighthouse at dusk", n=1, seed=11)[0]
    other = images(stack, "a lighthouse at dusk", n=1, seed=12)[0]
    assert first[0] == again[0] and first[0] != other[0]
    assert first[1]["discriminator_score"] == pytest.approx(again[1]["discriminator_score"])
