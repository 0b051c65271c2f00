"""API keys and log hygiene on a real ``python -m hadis_gateway`` (two emulated workers behind it).

The gateway reads its keys from ``HADIS_API_KEYS_FILE``, as the operator mounts them from a Secret;
the official ``openai`` client sends its ``api_key`` as ``Authorization: Bearer``. At the default
log level the gateway's output (stdout and stderr, one file here) carries neither a key, nor an
``Authorization`` header, nor a prompt.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from tests.process_stack import ProcessStack, running_stack

pytestmark = pytest.mark.integration

LIGHT, HEAVY = "sdxl-lightning", "sd35-large-turbo"
KEY = "sk-hadis-7f3a9c1e-right-key"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProcessStack, Path]]:
    tmp = tmp_path_factory.mktemp("security")
    keys = tmp / "api-keys"  # as a Secret's key mounted as a file
    keys.write_text(f"# gateway keys\n\n{KEY}\n")
    row = {"light": LIGHT, "heavy": HEAVY, "theta": 0.3, "tau": 0.2, "p": 0.44, "fid": 25.75}
    with running_stack(
        tmp,
        row,
        slo_s=30.0,
        time_scale=0.001,
        batch_size=2,
        gateway_env={"HADIS_API_KEYS_FILE": str(keys)},  # the default log level: info
        ready_timeout_s=120.0,
    ) as stack:
        yield stack, keys


def client(stack: ProcessStack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.gateway}/v1", api_key=key, max_retries=0, timeout=60)


def test_openai_client_with_the_right_key_gets_images(keyed: tuple[ProcessStack, Path]) -> None:
    stack, _ = keyed
    result = client(stack, KEY).images.generate(
        model="hadis", prompt="a lighthouse at dawn", size="256x256", response_format="b64_json"
    )
    assert result.data is not None and result.data[0].b64_json
    assert [m.id for m in client(stack, KEY).models.list()] == ["hadis", HEAVY, LIGHT]


def test_openai_client_with_a_wrong_key_is_refused(keyed: tuple[ProcessStack, Path]) -> None:
    stack, _ = keyed
    for call in (
        lambda c: c.images.generate(prompt="a cat", response_format="b64_json"),
        lambda c: c.models.list(),
    ):
        with pytest.raises(openai.AuthenticationError) as e:
            call(client(stack, "sk-hadis-wrong"))
        assert e.value.status_code == 401 and e.value.code == "invalid_api_key"
    no_key = httpx.post(f"{stack.gateway}/v1/images/generations", json={"prompt": "a cat"}, timeout=30)
    assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "invalid_api_key"
    for path in ("/healthz", "/readyz", "/metrics"):  # probes and scrapes need no key
        assert httpx.get(f"{stack.gateway}{path}", timeout=30).status_code == 200, path


def test_a_rotated_secret_applies_without_a_restart(keyed: tuple[ProcessStack, Path]) -> None:
    stack, keys = keyed
    rotated = "sk-hadis-rotated-2b8e"
    keys.write_text(f"{KEY}\n{rotated}\n")  # the new key first added, then the old one dropped
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            client(stack, rotated).models.list()
            break
        except openai.AuthenticationError:
            time.sleep(0.2)
    assert next(m.id for m in client(stack, rotated).models.list()) == "hadis"
    keys.write_text(f"{rotated}\n")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            client(stack, KEY).models.list()
            time.sleep(0.2)
        except openai.AuthenticationError:
            break
    with pytest.raises(openai.AuthenticationError):
        client(stack, KEY).models.list()
    keys.write_text(f"{KEY}\n")  # back, for the other tests
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            client(stack, KEY).models.list()
            break
        except openai.AuthenticationError:
            time.sleep(0.2)


def test_logs_hold_no_key_header_or_prompt(keyed: tuple[ProcessStack, Path]) -> None:
    stack, _ = keyed
    prompt = "zq-secret-prompt a violet giraffe reading 91827364"
    wrong = "sk-hadis-leak-canary-5550123"
    good = client(stack, KEY).images.generate(prompt=prompt, n=2, response_format="b64_json")
    assert good.data is not None and len(good.data) == 2
    with pytest.raises(openai.AuthenticationError):
        client(stack, wrong).images.generate(prompt=prompt, response_format="b64_json")
    with pytest.raises(openai.BadRequestError):  # refused requests are not logged either
        client(stack, KEY).images.generate(prompt=prompt, size="7x7", response_format="b64_json")
    with pytest.raises(openai.BadRequestError):
        client(stack, KEY).images.generate(prompt=prompt + "x" * 4000, response_format="b64_json")
    time.sleep(0.5)  # the log records of those requests, if any, are written by now
    log = stack.logs["gateway"].read_text(encoding="utf-8", errors="replace")
    assert "Uvicorn running" in log and "API keys: 1 key(s) read" in log  # the log is captured
    for secret in (KEY, wrong, "zq-secret-prompt", "violet giraffe", "91827364", "Bearer", "uthorization"):
        assert secret not in log, f"{secret!r} in the gateway's log"


def test_hadis_load_sends_the_key(keyed: tuple[ProcessStack, Path], tmp_path: Path) -> None:
    """``hadis load`` against a keyed gateway: with ``--api-key`` (or ``$HADIS_API_KEY``) every
    request is served; without, every one is refused with 401 (and counted, not lost)."""
    stack, _ = keyed
    trace = tmp_path / "trace.txt"
    trace.write_text("".join(f"{i * 50},{i}\n" for i in range(6)))
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red ball\na lighthouse on a cliff at dusk\n")
    hadis = Path(sys.executable).with_name("hadis")
    base = [str(hadis), "load", "--trace", str(trace), "--prompts", str(prompts), "--url", stack.gateway]
    base += ["--size", "256x256", "--slo", "30", "--json"]
    env = {k: v for k, v in os.environ.items() if k != "HADIS_API_KEY"}

    def outcomes(extra: list[str], **more_env: str) -> tuple[int, dict[str, int]]:
        run = subprocess.run(
            base + extra, env=env | more_env, capture_output=True, text=True, timeout=120, check=True
        )
        summary = json.loads(run.stdout)
        assert summary["requests"] == 6, summary
        return summary["ok"], summary["errors"]

    assert outcomes(["--api-key", KEY]) == (6, {})
    assert outcomes([], HADIS_API_KEY=KEY) == (6, {})
    assert outcomes([]) == (0, {"invalid_api_key": 6})
