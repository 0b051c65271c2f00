"""Issue 7: no prompt text in a worker process's log at the default level.

A real ``python -m hadis_worker`` (the emulated engine, and the diffusers engine on the tiny CPU
pipelines) serves requests whose prompt and negative prompt carry a distinctive marker, including
one longer than the text encoder's 77 tokens (diffusers would warn quoting the cut-off text) and
ones the worker refuses (bad field, wrong variant); its whole stdout/stderr must not contain the
marker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from hadis.local.processes import free_port

# letters only: a tokenizer may cut digits apart when it decodes (the marker must stay findable)
MARKER = "zebracorn" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:8])
# > 77 CLIP tokens, the marker past the cut: the truncation warning would quote it
LONG_PROMPT = " ".join(["a watercolour painting of a lighthouse"] * 20 + [f"{MARKER} at dawn"] * 5)


def _post(port: int, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/generate",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return dict(json.loads(r.read()))
    except urllib.error.HTTPError as e:
        return dict(json.loads(e.read()))


def _ready(port: int, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"worker not ready after {timeout_s} s:\n{log.read_text(errors='replace')[-3000:]}")


def _serve_and_log(env: dict[str, str], variant: str, tmp_path: Path, ready_s: float) -> str:
    """Start the worker, send the marked requests, stop it; its whole log."""
    port = free_port()
    log = tmp_path / "worker.log"
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HADIS_")},
        **env,
        "HADIS_WORKER_VARIANT": variant,
        "HADIS_WORKER_HOST": "127.0.0.1",
        "HADIS_WORKER_PORT": str(port),
        "HADIS_WORKER_DRAIN_S": "5",
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hadis_worker"], env=full_env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _ready(port, proc, log, ready_s)
        base = {"variant": variant, "deadlineUnixS": time.time() + 600, "width": 64, "height": 64}
        served = _post(
            port,
            {**base, "requestId": "long", "prompt": LONG_PROMPT, "negativePrompt": f"blurry {MARKER}"},
        )
        assert "imageB64" in served, {k: v for k, v in served.items() if k != "imageB64"}
        short = _post(port, {**base, "requestId": "short", "prompt": f"a {MARKER}", "discriminate": True})
        assert "imageB64" in short, short
        bad = _post(port, {**base, "requestId": "bad", "prompt": f"a {MARKER}", "width": 1})
        assert bad["code"] == "bad_request", bad
        wrong = _post(port, {**base, "requestId": "wrong", "prompt": f"a {MARKER}", "variant": "other"})
        assert wrong["code"] == "wrong_variant", wrong
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return log.read_text(errors="replace")


def test_the_emulated_worker_logs_no_prompt(tmp_path: Path) -> None:
    text = _serve_and_log(
        {"HADIS_ENGINE": "emulated", "HADIS_TIME_SCALE": "0.001"}, "sdxl-lightning", tmp_path, 60
    )
    assert "ready" in text  # it did log (at the default level)
    assert MARKER not in text and "zebracorn" not in text, text


def test_the_diffusers_worker_logs_no_prompt_even_when_it_is_truncated(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    env = {
        "HF_HUB_OFFLINE": "1",
        "HADIS_ENGINE": "diffusers",
        "HADIS_PROFILE": str(tiny_models["profile"]),
        "HADIS_MODEL": str(tiny_models["sd"]),
        "HADIS_DISCRIMINATOR_CLIP": str(tiny_models["clip"]),
        "HADIS_DISCRIMINATOR_HEAD": str(tiny_models["head"]),
        "HADIS_DEVICE": "cpu",
        "HADIS_STEPS": "1",
    }
    text = _serve_and_log(env, "tiny-sd", tmp_path, 180)
    assert "loaded" in text
    # the pipeline did cut the long prompt and said so, without its text
    assert "was truncated (its text is not logged)" in text, text[-3000:]
    assert MARKER not in text and "zebracorn" not in text, text
