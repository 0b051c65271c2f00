"""Every panel query of the generated Grafana dashboard, run against a real Prometheus scraping the
real emulated stack: each must succeed and return data.

The stack: ``python -m hadis_gateway`` and two emulated ``python -m hadis_worker`` processes (the
paper's L40S latencies × 0.1), scraped every second with the labels Kubernetes would give them, and
the operator's metrics server (``hadis.operator.metrics``) in this process, fed by the real control
path: every 2 s the load is read from Prometheus (``query_load``), smoothed (``estimate_demand``)
and handed to the HADIS policy; the allocation is recorded as the operator records it. Cascade
traffic (model ``hadis``) runs for ~16 s with a 30-request burst every 3 s into a 16-request
gateway queue and a 0.5 s SLO, so there are router-hard prompts, escalations, 429s (queue_full)
and deadline drops. Then the dashboard's template variables are substituted (``$namespace`` and
``$service`` → ``.*``, ``$__rate_interval`` → ``30s``) and every target goes to /api/v1/query.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.prometheus_local import LocalPrometheus, Target

from hadis.api.service import HadisService
from hadis.dashboards.overview import build_dashboard
from hadis.observe.load import estimate_demand
from hadis.observe.prometheus import MetricsUnavailable, query_load
from hadis.operator.metrics import OperatorMetrics, start_metrics_server
from hadis.policy.demand import DemandEstimate
from hadis.policy.inputs import build_decision_input
from hadis.policy.pareto import table_for
from hadis.policy.registry import get_policy
from hadis.profiles import load_profile

pytestmark = pytest.mark.integration

LIGHT, HEAVY = "sdxl-lightning", "sd35-large-turbo"
NS, SVC = "imaging", "dash"
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
SPEC = {
    "apiVersion": "hadis.io/v1alpha1",
    "kind": "HadisService",
    "metadata": {"name": SVC, "namespace": NS},
    "spec": {
        "engine": "emulated",
        "variants": [{"name": LIGHT}, {"name": HEAVY}],
        "sloSeconds": 6,
        "gpuPools": [{"name": "l40s", "gpuType": "L40S", "count": 16}],
        "profile": {"builtin": "hadis-paper-l40s"},
    },
}
StartPrometheus = Callable[..., LocalPrometheus]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


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


@dataclass
class Stack:
    gateway: str
    workers: list[str]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("dashboard")
    ports = {"gateway": _free_port(), LIGHT: _free_port(), HEAVY: _free_port()}
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


class ControlLoop:
    """The operator's observe → decide → record path every ``interval_s``, in a thread."""

    def __init__(self, prom_url: str, metrics: OperatorMetrics, interval_s: float = 2.0) -> None:
        self.svc = HadisService.model_validate(SPEC)
        self.profile = load_profile("hadis-paper-l40s")
        self.table = table_for(self.profile, variants=[LIGHT, HEAVY])
        self.prom_url, self.metrics, self.interval_s = prom_url, metrics, interval_s
        self.demand: DemandEstimate | None = None
        self.decisions = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def step(self) -> None:
        spec = self.svc.spec
        try:
            obs = query_load(self.prom_url, namespace=NS, service=SVC, rate_window="5s")
        except MetricsUnavailable:
            self.metrics.record_error(SVC, NS, "MetricsUnavailable")
        else:
            self.metrics.record_observation(SVC, NS, obs)
            self.demand = estimate_demand(self.demand, obs, spec.allocation)
        qps = 0.0 if self.demand is None else self.demand.demand_qps
        inp = build_decision_input(spec, self.profile, self.table, qps)
        self.metrics.record_allocation(SVC, NS, get_policy(spec.policy)(inp))
        self.decisions += 1

    def _run(self) -> None:
        while not self.stop.wait(self.interval_s):
            self.step()

    def __enter__(self) -> ControlLoop:
        self.step()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


async def _load(url: str) -> Counter[int]:
    """Steady cascade traffic at ``QPS`` plus a burst of ``BURST`` every ``BURST_EVERY_S``."""
    statuses: Counter[int] = Counter()
    async with httpx.AsyncClient(base_url=url, timeout=15, limits=httpx.Limits(max_connections=200)) as c:

        async def one(i: int) -> None:
            prompt = f"{PROMPTS[i % len(PROMPTS)]}, {i}"
            body = {"prompt": prompt, "model": "hadis", "seed": i}
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


def _executable(expr: str) -> str:
    for variable, value in SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"an unsubstituted template variable in {expr}"
    return expr


def test_every_panel_query_returns_data(stack: Stack, start_prometheus: StartPrometheus) -> None:
    t0 = time.monotonic()
    metrics = OperatorMetrics()
    server = start_metrics_server(0, host=LOOPBACK, metrics=metrics)
    try:
        labels = {"namespace": NS, "app_kubernetes_io_instance": SVC}
        targets = [Target.of(u, **labels) for u in (stack.gateway, *stack.workers)]
        # the operator's own series carry namespace/service: scraped with honor_labels semantics
        targets.append(Target.of(f"{LOOPBACK}:{server.port}"))
        prom = start_prometheus(targets)
        with ControlLoop(prom.url, metrics) as loop:
            statuses = asyncio.run(_load(stack.gateway))
            time.sleep(2.5)  # the last counters scraped
        print(f"responses by status: {dict(statuses)}; {loop.decisions} decisions")
        assert statuses[200] and statuses[429] and statuses[504], f"want answers, 429s and drops: {statuses}"

        failed: list[str] = []
        for panel in build_dashboard()["panels"]:
            for target in panel["targets"]:
                expr = _executable(target["expr"])
                try:
                    result = prom.query(expr)
                except Exception as e:  # a bad query: Prometheus answers 400 with its error
                    failed.append(f"{panel['title']} [{target['refId']}]: {expr}\n    error: {e}")
                    continue
                shown = [(r["metric"], r["value"][1]) for r in result][:4]
                print(f"{panel['title']} [{target['refId']}] {target['legendFormat']!r}: {shown}")
                if not result:
                    failed.append(f"{panel['title']} [{target['refId']}]: {expr}\n    no data")
        assert not failed, "panel queries without data:\n" + "\n".join(failed)
    finally:
        server.stop()
    print(f"took {time.monotonic() - t0:.1f} s after the stack was up")
