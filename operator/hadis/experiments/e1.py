"""E1 in emulation: the paper's end-to-end experiment on the real local stack.

For one policy: write the E1 HadisService (the simulator's E1 preset as a spec: 16 emulated L40S,
every latency × 0.1, SLO 6 s, re-plan every 5 s), start ``hadis up`` on it as a child process, wait
for its gateway, replay the trace open-loop against it and summarise every request's outcome. The
simulator's E1 runs on exactly these inputs, so the two modes can be compared row by row.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

from hadis.api.allocation import GpuPool
from hadis.api.service import (
    AllocationSettings,
    GatewaySettings,
    HadisService,
    HadisServiceSpec,
    ObjectMeta,
    ProfileRef,
    VariantSpec,
)
from hadis.errors import UserError
from hadis.loadgen.runner import ProgressFn, replay
from hadis.loadgen.summary import Outcome
from hadis.profiles import DEFAULT_PROFILE, load_profile
from hadis.sim import presets
from hadis.sim.traces import Trace

Say = Callable[[str], None]


def e1_service(policy: str, port: int) -> HadisService:
    """The E1 preset as a HadisService spec for ``policy`` (pure)."""
    profile = load_profile(DEFAULT_PROFILE)
    return HadisService(
        metadata=ObjectMeta(name=f"e1-{policy}"),
        spec=HadisServiceSpec(
            engine="emulated",
            variants=[VariantSpec(name=v.name) for v in profile.variants],
            slo_seconds=presets.E1_SLO_S,
            admission_factor=presets.ARTIFACT_ADMISSION_FACTORS.get(policy, 1.5),
            gpu_pools=[GpuPool(name="l40s", gpu_type="L40S", count=presets.E1_GPUS)],
            policy=policy,  # checked by the model (PolicyName)
            profile=ProfileRef(builtin=DEFAULT_PROFILE, time_scale=presets.E1_TIME_SCALE),
            allocation=AllocationSettings(
                interval_seconds=presets.E1_INTERVAL_S,
                ewma_alpha=presets.ARTIFACT_EWMA_ALPHA,
                over_provisioning=presets.ARTIFACT_OVER_PROVISIONING,
            ),
            gateway=GatewaySettings(port=port),
        ),
    )


def initial_qps(trace: Trace, interval_s: float = presets.E1_INTERVAL_S) -> float:
    """The first interval's arrival rate: what the simulator's first decision provisions for."""
    n = int(np.searchsorted(trace.arrival_s, interval_s, side="left"))
    return n / min(interval_s, trace.duration_s or 1.0)


def truncate(trace: Trace, n: int | None) -> Trace:
    """The first ``n`` requests of ``trace`` (all of them for ``None``)."""
    if n is None or n >= len(trace):
        return trace
    return Trace(trace.arrival_s[:n], trace.prompt_id[:n], name=trace.name)


@dataclass(frozen=True)
class EmulatedRun:
    """Every request's outcome, when the replay started, and what the config routed by when."""

    outcomes: list[Outcome]
    start_unix: float
    routing: list[dict[str, Any]]  # the control loop's routing.jsonl records, in order


def time_weighted_fid(routing: Sequence[Mapping[str, Any]], start: float, end: float) -> float | None:
    """The simulator's ``mean_fid`` of a cascade policy: the active row's FID averaged over
    [start, end]; ``None`` when some decision in that span had no row (a split policy)."""
    total = weight = 0.0
    for i, rec in enumerate(routing):
        lo = max(float(rec["t_unix"]), start)
        hi = min(float(routing[i + 1]["t_unix"]) if i + 1 < len(routing) else end, end)
        if hi <= lo:
            continue
        if rec.get("row") is None:
            return None
        total += float(rec["row"]["fid"]) * (hi - lo)
        weight += hi - lo
    return total / weight if weight > 0 else None


def run_emulated(
    policy: str,
    trace: Trace,
    prompts: Sequence[str],
    workdir: Path,
    port: int,
    say: Say,
    *,
    ready_timeout_s: float = 180.0,
    progress: ProgressFn | None = None,
) -> EmulatedRun:
    """Start the local stack for ``policy``, replay ``trace`` against it, stop it."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path = workdir / "hadisservice.yaml"
    spec_path.write_text(yaml.safe_dump(e1_service(policy, port).to_wire(), sort_keys=False))
    log_path = workdir / "up.log"
    cmd = [sys.executable, "-m", "hadis.cli.main", "up", str(spec_path), "--workdir", str(workdir / "run")]
    cmd += ["--initial-qps", f"{initial_qps(trace):.3f}", "--ready-timeout", str(ready_timeout_s)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    try:
        _wait_ready(proc, f"http://127.0.0.1:{port}", ready_timeout_s, log_path)
        say(f"  {policy}: stack ready, replaying {len(trace)} requests over {trace.duration_s:.0f} s")
        start = time.time()
        outcomes = asyncio.run(
            replay(
                f"http://127.0.0.1:{port}",
                trace.arrival_s.tolist(),
                trace.prompt_id.tolist(),
                prompts,
                timeout_s=presets.E1_SLO_S * 10,
                progress=progress,
            )
        )
        return EmulatedRun(outcomes, start, _read_routing(workdir / "run" / "routing.jsonl"))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise UserError(f"hadis up exited with code {proc.returncode}; {log}:\n{tail}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise UserError(f"the E1 stack was not ready after {timeout_s:g} s; see {log}")


def _read_routing(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read the control loop's routing log: {e}") from None
