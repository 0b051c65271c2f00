"""The emulated stack the dashboard tests scrape, the load they send, and the panel check.

``running_stack`` starts ``python -m hadis_gateway`` and two emulated ``python -m hadis_worker``
processes (the paper's L40S latencies × 0.1) with a fixed cascade row (θ 0.3, τ 0.3), a 0.5 s SLO
(admission factor 1) and a 16-request gateway queue. ``send_load`` runs cascade traffic (model
``hadis``) for ~16 s with a 30-request burst every 3 s, so there are router-hard prompts,
escalations, 429s (queue_full) and deadline drops. ``panel_failures`` substitutes the dashboard's
template variables (``$namespace``/``$service`` → ``.*``, ``$__rate_interval`` → ``30s``), runs
every panel target through Prometheus' /api/v1/query and names each one that errs or is empty.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hadis.dashboards.overview import build_dashboard
from tests.prometheus_local import LocalPrometheus, Target

LIGHT, HEAVY = "sdxl-lightning", "sd35-large-turbo"
LOOPBACK = "127.0.0.1"
QUEUE_CAPACITY = 16
LOAD_S, QPS, BURST, BURST_EVERY_S = 16.0, 8.0, 30, 3.0
PROMPTS = (
    "a red ball",
    "a lighthouse on a cliff at dusk",
    "three astronauts playing chess with a Victorian ghost under a stained-glass dome, oil painting",
    "an abstract allegory of time melting over a baroque cityscape beside the Eiffel Tower at night",
)
SUBSTITUTIONS = {"$namespace": ".*", "$service": ".*", "$__rate_interval": "30s"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def service_spec(name: str, namespace: str, **extra: Any) -> dict[str, Any]:
    """A HadisService over the stack's two variants on 16 emulated L40S (what the operator decides for)."""
    spec: dict[str, Any] = {
        "engine": "emulated",
        "variants": [{"name": LIGHT}, {"name": HEAVY}],
        "sloSeconds": 6,
        "gpuPools": [{"name": "l40s", "gpuType": "L40S", "count": 16}],
        "profile": {"builtin": "hadis-paper-l40s"},
        **extra,
    }
    return {
        "apiVersion": "hadis.io/v1alpha1",
        "kind": "HadisService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


@dataclass
class Stack:
    gateway: str
    workers: list[str]

    def targets(self, namespace: str, service: str) -> list[Target]:
        """Scrape targets labelled as the Kubernetes pod scrape job would label the pods."""
        labels = {"namespace": namespace, "app_kubernetes_io_instance": service}
        return [Target.of(u, **labels) for u in (self.gateway, *self.workers)]


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout_s} s:\n{log.read_text()[-3000:]}")


@contextmanager
def running_stack(tmp: Path) -> Iterator[Stack]:
    ports = {"gateway": free_port(), LIGHT: free_port(), HEAVY: free_port()}
    urls = {k: f"http://{LOOPBACK}:{p}" for k, p in ports.items()}
    config: dict[str, Any] = {
        "generation": 1,
        "row": {"light": LIGHT, "heavy": HEAVY, "theta": 0.3, "tau": 0.3, "p": 0.51, "fid": 25.5},
        "variants": {v: {"batchSize": 4, "endpoints": [urls[v]]} for v in (LIGHT, HEAVY)},
        "sloS": 0.5,
        "admissionFactor": 1.0,
        "timeScale": 0.1,
    }
    config_path = tmp / "cascade.json"
    config_path.write_text(json.dumps(config))
    base = {**os.environ, "HADIS_CONFIG_PATH": str(config_path), "HADIS_CONFIG_POLL_S": "0.2"}
    specs = [
        (v, "hadis_worker", {"HADIS_WORKER_VARIANT": v, "HADIS_WORKER_HOST": LOOPBACK}, "HADIS_WORKER_PORT")
        for v in (LIGHT, HEAVY)
    ]
    gateway_env = {"HADIS_GATEWAY_HOST": LOOPBACK, "HADIS_QUEUE_CAPACITY": str(QUEUE_CAPACITY)}
    specs.append(("gateway", "hadis_gateway", gateway_env, "HADIS_GATEWAY_PORT"))
    procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    try:
        for name, module, env, port_var in specs:
            log = tmp / f"{name}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", module],
                    env={**base, **env, port_var: str(ports[name])},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            procs.append((name, proc, log))
        for name, proc, log in procs:
            _wait_ready(urls[name], proc, log)
        yield Stack(urls["gateway"], [urls[LIGHT], urls[HEAVY]])
    finally:
        for _, proc, _ in procs:
            proc.terminate()
        for _, proc, _ in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


async def _load(url: str) -> Counter[int]:
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(base_url=url, timeout=15, limits=limits) as c:

        async def one(i: int) -> None:
            body = {"prompt": f"{PROMPTS[i % len(PROMPTS)]}, {i}", "model": "hadis", "seed": i}
            statuses[(await c.post("/v1/images/generations", json=body)).status_code] += 1

        tasks: list[asyncio.Task[None]] = []
        t0, sent, next_burst = time.monotonic(), 0, 1.0
        while (now := time.monotonic() - t0) < LOAD_S:
            if now >= next_burst:
                tasks += [asyncio.create_task(one(100_000 + sent + k)) for k in range(BURST)]
                next_burst += BURST_EVERY_S
            tasks.append(asyncio.create_task(one(sent)))
            sent += 1
            await asyncio.sleep(max(t0 + sent / QPS - time.monotonic(), 0))
        await asyncio.gather(*tasks)
    return statuses


def send_load(gateway: str) -> Counter[int]:
    """Steady cascade traffic at ``QPS`` plus bursts; the responses counted by HTTP status."""
    return asyncio.run(_load(gateway))


def executable(expr: str) -> str:
    for variable, value in SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    if "$" in expr:
        raise AssertionError(f"an unsubstituted template variable in {expr}")
    return expr


def panel_failures(prom: LocalPrometheus) -> list[str]:
    """Every panel target that fails or returns no series, as ``title [refId]: expr`` and why."""
    failed: list[str] = []
    for panel in build_dashboard()["panels"]:
        for target in panel["targets"]:
            where = f"{panel['title']} [{target['refId']}]"
            expr = executable(target["expr"])
            try:
                result = prom.query(expr)
            except Exception as e:  # Prometheus answers a bad query with 400 and its error
                failed.append(f"{where}: {expr}\n    error: {e}")
                continue
            shown = [(r["metric"], r["value"][1]) for r in result][:4]
            print(f"{where} {target['legendFormat']!r}: {shown}")
            if not result:
                failed.append(f"{where}: {expr}\n    no data")
    return failed
