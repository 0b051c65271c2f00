"""``hadis up``: the whole local stack (gateway, emulated workers, control loop) as real processes."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from openai import OpenAI

SPEC = """
apiVersion: hadis.io/v1alpha1
kind: HadisService
metadata: {{name: tiny}}
spec:
  engine: emulated
  variants: [{{name: sd35-large-turbo}}, {{name: sd35-medium}}]
  sloSeconds: 6
  gpuPools: [{{name: l40s, gpuType: L40S, count: 3}}]
  profile: {{builtin: hadis-paper-l40s, timeScale: 0.02}}
  allocation: {{intervalSeconds: 2}}
  gateway: {{port: {port}}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_up_serves_the_openai_client_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC.format(port=port))
    workdir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["operator", "gateway", "worker"])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hadis.cli.main", "up", str(spec), "--workdir", str(workdir)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, "hadis up exited early:\n" + "".join(lines)
            lines.append(line)
            if line.startswith("ready:"):
                break
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="local")
        for prompt in ("a red ball sits in the grass on a green field", "the sail is white", "a cat"):
            img = client.images.generate(model="hadis", prompt=prompt, response_format="b64_json")
            assert img.data and base64.b64decode(img.data[0].b64_json or "")[:8] == b"\x89PNG\r\n\x1a\n"
            meta = (img.data[0].model_extra or {})["x_hadis"]
            assert meta["variant"] in ("sd35-large-turbo", "sd35-medium")
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert "hadis_gateway_requests_total" in metrics
        worker_logs = [p for p in (workdir / "logs").iterdir() if not p.name.startswith("gateway")]
        assert len(worker_logs) == 3 * 2  # emulated: a warm worker per GPU for each of the 2 variants
        cfg = json.loads((workdir / "cascade.json").read_text())
        listed = [u for v in cfg["variants"].values() for u in v["endpoints"]]
        assert 1 <= len(listed) <= 3 and len(set(listed)) == len(listed)  # only the allocated GPUs serve
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    rest = proc.stderr.read() if proc.stderr else ""
    assert code == 0 and "stopped" in rest
    # nothing keeps listening: the gateway and every worker are gone
    assert wait_for(lambda: _closed(port), 10)


def _closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0
