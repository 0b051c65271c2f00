"""`hadis up examples/local-tiny-diffusers.yaml`: the shipped example on the tiny models, real processes."""

from __future__ import annotations

import base64
import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
openai = pytest.importorskip("openai")
pytest.importorskip("diffusers")

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ("tiny-sd", "tiny-sdxl-lightning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_up_serves_the_tiny_diffusers_example(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    from PIL import Image

    port = free_port()
    text = (ROOT / "examples" / "local-tiny-diffusers.yaml").read_text()
    spec = tmp_path / "tiny.yaml"
    spec.write_text(text.replace("out/tiny", str(tiny_models["profile"].parent)))
    workdir = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HADIS_DEVICE": "cpu"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hadis.cli.main",
            "up",
            str(spec),
            "--workdir",
            str(workdir),
            "--port",
            str(port),
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, "hadis up exited early:\n" + "".join(lines)
            lines.append(line)
            if line.startswith("ready:"):
                break
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="local", timeout=120, max_retries=0
        )
        result = client.images.generate(
            model="hadis", prompt="a lighthouse on a cliff", n=2, size="256x256", response_format="b64_json"
        )
        assert result.data is not None and len(result.data) == 2
        for image in result.data:
            png = base64.b64decode(image.b64_json or "")
            assert Image.open(io.BytesIO(png)).size == (256, 256)
            assert (image.model_extra or {})["x_hadis"]["variant"] in VARIANTS
        logs = [p for p in (workdir / "logs").iterdir() if not p.name.startswith("gateway")]
        assert len(logs) == 2  # one diffusers worker per CPU "GPU"
        assert all("warm-up done" in p.read_text() for p in logs)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    assert code == 0, "".join(lines)
