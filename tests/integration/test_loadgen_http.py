"""``hadis load`` against a real HTTP server: open-loop sending, every outcome recorded."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from hadis.cli.main import main

ANSWER_S = 0.4


def fake_gateway() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/images/generations")
    async def generate(request: Request) -> JSONResponse:
        body = await request.json()
        await asyncio.sleep(ANSWER_S)
        if body["seed"] % 5 == 0:
            err = {
                "error": {"message": "queue full", "type": "rate_limit", "param": None, "code": "overloaded"}
            }
            return JSONResponse(err, status_code=429, headers={"Retry-After": "1"})
        variant = "sd35-medium" if body["seed"] % 2 else "sd35-large-turbo"
        meta = {"variant": variant, "escalated": variant == "sd35-medium", "router_score": 0.1}
        return JSONResponse({"created": 0, "data": [{"b64_json": "iVBORw0KGgo=", "x_hadis": meta}]})

    return app


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(fake_gateway(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)


def test_open_loop_replay_records_every_outcome(
    gateway_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "trace.txt"
    trace.write_text("".join(f"{50 * i},{i}\n" for i in range(20)))  # 20 QPS for 1 s
    code = main(
        ["load", "--trace", str(trace), "--url", gateway_url, "--slo", "1", "--json", "--out", str(tmp_path)]
    )
    out, err = capsys.readouterr()
    s = json.loads(out)
    assert code == 0 and s["requests"] == 20
    assert s["ok"] == 16 and s["errors"] == {"overloaded": 4}
    assert s["violations"] == 4 and s["slo_violation_ratio"] == pytest.approx(0.2)
    # open loop: each answer takes 0.4 s, yet every request left (nearly) on time
    assert s["max_send_lag_s"] < ANSWER_S / 2
    assert s["served_mix"] == {"sd35-large-turbo": 0.5, "sd35-medium": 0.5}
    assert s["mean_fid"] == pytest.approx((25.23 + 20.61) / 2)
    assert s["escalation_fraction"] == pytest.approx(0.5)
    assert "20/20 answered" in err
    assert len(json.loads((tmp_path / "outcomes.json").read_text())) == 20
    assert (tmp_path / "latency.png").stat().st_size > 0


def test_unreachable_gateway_gives_explicit_outcomes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    trace = tmp_path / "trace.txt"
    trace.write_text("0,1\n10,2\n")
    code = main(["load", "--trace", str(trace), "--url", f"http://127.0.0.1:{port}", "--slo", "1", "--json"])
    s = json.loads(capsys.readouterr().out)
    assert code == 0 and s["requests"] == 2 and s["ok"] == 0 and s["errors"] == {"connect_error": 2}


def test_bad_url_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "trace.txt"
    trace.write_text("0,1\n")
    assert main(["load", "--trace", str(trace), "--url", "localhost:8000", "--slo", "1"]) == 2
    assert "--url 'localhost:8000'" in capsys.readouterr().err
