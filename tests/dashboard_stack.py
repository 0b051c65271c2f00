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
import time
from collections import Counter
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx

from hadis.dashboards.overview import build_dashboard
from tests import process_stack
from tests.prometheus_local import LocalPrometheus

LIGHT, HEAVY = "sdxl-lightning", "sd35-large-turbo"
LOOPBACK = process_stack.LOOPBACK
Stack = process_stack.ProcessStack
QUEUE_CAPACITY = 16
LOAD_S, QPS, BURST, BURST_EVERY_S = 16.0, 8.0, 30, 3.0
PROMPTS = (
    "a red ball",
    "a lighthouse on a cliff at dusk",
    "three astronauts playing chess with a Victorian ghost under a stained-glass dome, oil painting",
    "an abstract allegory of time melting over a baroque cityscape beside the Eiffel Tower at night",
)
SUBSTITUTIONS = {"$namespace": ".*", "$service": ".*", "$__rate_interval": "30s"}


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


def running_stack(tmp: Path) -> AbstractContextManager[Stack]:
    row = {"light": LIGHT, "heavy": HEAVY, "theta": 0.3, "tau": 0.3, "p": 0.51, "fid": 25.5}
    return process_stack.running_stack(
        tmp,
        row,
        slo_s=0.5,
        time_scale=0.1,
        config={"admissionFactor": 1.0},
        gateway_env={"HADIS_QUEUE_CAPACITY": str(QUEUE_CAPACITY)},
    )


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
