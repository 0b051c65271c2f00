"""Benchmark of the gateway's overhead (prints figures; not a test).

A zero-latency fake worker (the tests' wire-contract double) behind the gateway, both real uvicorn
servers on 127.0.0.1 in this process (so the client, gateway and worker share one interpreter:
figures are an upper bound of the overhead). Reports per-request latency p50 / p99 sent straight
to the worker and through the gateway (light path with discriminate; θ = τ = 0), sequentially and
with 16 concurrent clients, with a stand-in scorer and with the real rule-based router.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.gateway_fakes import FakeWorker, FixedThreshold, ServerThread, cascade_config, write_config

from hadis_gateway.batch_scorer import one_by_one
from hadis_gateway.scoring import default_scorer, word_count_score
from hadis_gateway.server import create_app
from hadis_gateway.settings import Settings

N_SEQ, N_CONC, CONC = 300, 800, 16
PROMPTS = [f"a photo of a red fox number {i} sitting in the snow near a lake" for i in range(N_CONC)]


def quantiles(xs: list[float]) -> str:
    q = statistics.quantiles(xs, n=100)
    return f"p50 {q[49] * 1e3:6.2f} ms  p99 {q[98] * 1e3:6.2f} ms"


def sequential(url: str, path: str, body: Callable[[int], dict[str, object]]) -> list[float]:
    out = []
    with httpx.Client(base_url=url, timeout=30) as c:
        for i in range(N_SEQ):
            t = time.perf_counter()
            c.post(path, json=body(i)).raise_for_status()
            out.append(time.perf_counter() - t)
    return out


def concurrent(url: str, path: str, body: Callable[[int], dict[str, object]]) -> tuple[list[float], float]:
    async def run() -> tuple[list[float], float]:
        lat: list[float] = []
        queue = list(range(N_CONC))
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:

            async def client() -> None:
                while queue:
                    i = queue.pop()
                    t = time.perf_counter()
                    (await c.post(path, json=body(i))).raise_for_status()
                    lat.append(time.perf_counter() - t)

            t0 = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(CONC)))
            return lat, N_CONC / (time.perf_counter() - t0)

    return asyncio.run(run())


def worker_body(i: int) -> dict[str, object]:
    return {"requestId": f"r{i}", "prompt": PROMPTS[i], "variant": "light", "deadlineUnixS": time.time() + 60,
            "discriminate": True}  # fmt: skip


def gateway_body(i: int) -> dict[str, object]:
    return {"prompt": PROMPTS[i]}


def main() -> None:
    worker = ServerThread(FakeWorker("l0", "light").app()).start()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cascade.json"
        write_config(path, cascade_config([worker.url], [worker.url], theta=0.0, tau=0.0, slo_s=60))
        print(f"direct to worker     seq  {quantiles(sequential(worker.url, '/v1/generate', worker_body))}")
        lat, qps = concurrent(worker.url, "/v1/generate", worker_body)
        print(f"direct to worker     x{CONC}  {quantiles(lat)}  {qps:7.0f} req/s")
        settings = Settings(config_path=path)
        for name, scorer in (
            ("stand-in scorer", one_by_one(word_count_score)),
            ("real router", default_scorer(settings)),
        ):
            app = create_app(settings, score_prompts=scorer, router_threshold=FixedThreshold(0.0),
                             disc_threshold=FixedThreshold(0.0))  # fmt: skip
            gw = ServerThread(app).start()
            seq = sequential(gw.url, "/v1/images/generations", gateway_body)
            print(f"gateway, {name:15s} seq  {quantiles(seq)}")
            lat, qps = concurrent(gw.url, "/v1/images/generations", gateway_body)
            print(f"gateway, {name:15s} x{CONC}  {quantiles(lat)}  {qps:7.0f} req/s")
            gw.stop()
    worker.stop()


if __name__ == "__main__":
    main()
