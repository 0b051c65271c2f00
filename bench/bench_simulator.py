"""Simulator benchmark: the paper's E1 for every policy, and 24 h at 1,024 GPUs (prints figures).

    .venv/bin/python bench/bench_simulator.py            # E1 + 24 h (hadis)
    .venv/bin/python bench/bench_simulator.py --e1-only
    .venv/bin/python bench/bench_simulator.py --day-policy diffserve --hours 6

E1 uses the packaged trace (the same file as ../shared/data/traces/hadis_e1_trace_10to64qps.txt).
The 24 h run needs ../shared/data/traces/azure_functions2019_hourly_shape_diffserve.csv (skipped
when missing). Wall times are split into the policy's decision time and the simulator's own time;
ratios compare against baselines measured in the same process: per-request cost of E1 vs 24 h,
and the vectorised fast path vs the plain batch loop on the same input.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hadis.api import Allocation, DecisionInput, GpuPool
from hadis.policy.registry import POLICIES
from hadis.profiles import load_profile, load_prompt_scores
from hadis.sim.config import SimConfig
from hadis.sim.engine import simulate
from hadis.sim.presets import PAPER_E1, e1_config, e1_trace
from hadis.sim.report import SimReport
from hadis.sim.trace_io import read_shape_csv
from hadis.sim.traces import Trace, paper_trace

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SHAPE = SHARED / "traces" / "azure_functions2019_hourly_shape_diffserve.csv"


def _line(r: SimReport, extra: str = "") -> str:
    sim_s = r.wall_time_s - r.decision_time_s
    fid = "  n/a" if r.mean_fid is None else f"{r.mean_fid:5.2f}"
    return (
        f"{r.policy:14s} viol {r.slo_violation_ratio:6.3f}  FID {fid}  drop {r.dropped:6d}  "
        f"wall {r.wall_time_s:6.2f}s (policy {r.decision_time_s:6.2f}s, sim {sim_s:5.2f}s){extra}"
    )


def bench_e1() -> float:
    trace = e1_trace()
    print(f"E1: {len(trace)} requests over {trace.duration_s:.0f} s, 16 L40S, SLO 6 s, latencies x0.1")
    per_request = []
    for name, policy in POLICIES.items():
        r = simulate(trace, policy, e1_config(name), policy_name=name)
        paper = PAPER_E1.get(name)
        extra = f"   paper {paper[0]:.3f}/{paper[1]:.2f}" if paper else ""
        print("  " + _line(r, extra))
        per_request.append((r.wall_time_s - r.decision_time_s) / len(trace))
    us = 1e6 * float(np.median(per_request))
    print(f"  simulator cost: {us:.1f} µs/request (median over policies)")
    return us


def day_trace(hours: float, seed: int = 0) -> Trace:
    shape = read_shape_csv(SHAPE)
    trace = paper_trace(
        shape, 40.0, 410.0, np.random.default_rng(seed), seconds_per_point=86400.0 / shape.size
    )
    return trace.head(hours * 3600.0) if hours < 24 else trace


def day_config() -> SimConfig:
    return SimConfig(
        profile=load_profile(),
        pools=(GpuPool(name="l40s", gpu_type="L40S", count=1024),),
        slo_s=60.0,
        scores=load_prompt_scores(),
        timeline_step_s=60.0,
    )


def bench_day(policy_name: str, hours: float, e1_us: float) -> None:
    if not SHAPE.exists():
        print(f"24 h: skipped ({SHAPE} not found)")
        return
    tic = time.perf_counter()
    trace = day_trace(hours)
    gen_s = time.perf_counter() - tic
    print(
        f"{hours:g} h: {len(trace):,} requests ({trace.mean_qps:.0f} QPS mean, 40..410), 1,024 L40S, "
        "SLO 60 s, "
        f"interval 50 s; trace generated in {gen_s:.1f} s"
    )
    cfg = day_config()
    r = simulate(trace, POLICIES[policy_name], cfg, policy_name=policy_name)
    print("  " + _line(r))
    sim_us = 1e6 * (r.wall_time_s - r.decision_time_s) / len(trace)
    print(f"  simulator cost: {sim_us:.2f} µs/request = {sim_us / e1_us:.2f}x E1's per-request cost")
    print(f"  GPU utilisation: {', '.join(f'{v} {u:.2f}' for v, u in r.gpu_utilisation.items())}")
    # baseline: the plain batch loop (fast path off) on the busiest hour, with the same decisions
    busy = int(np.argmax(trace.rate_per_second(3600.0)))
    hour = _window(trace, busy * 3600.0, 3600.0)
    decisions = _record(hour, cfg, policy_name)
    fast = simulate(hour, _replay(decisions), cfg)
    slow = simulate(hour, _replay(decisions), dataclasses.replace(cfg, fast_path=False))
    assert (fast.violations, fast.dropped) == (slow.violations, slow.dropped)
    f_s, s_s = fast.wall_time_s - fast.decision_time_s, slow.wall_time_s - slow.decision_time_s
    print(
        f"  busiest hour ({len(hour):,} requests): fast path {f_s:.2f} s vs batch loop only {s_s:.2f} s "
        f"({s_s / f_s:.1f}x), identical outcomes"
    )


def _window(trace: Trace, start: float, length: float) -> Trace:
    lo, hi = np.searchsorted(trace.arrival_s, [start, start + length])
    return Trace(trace.arrival_s[lo:hi] - start, trace.prompt_id[lo:hi], trace.name, length)


def _record(trace: Trace, cfg: SimConfig, policy_name: str) -> list[Allocation]:
    decisions: list[Allocation] = []
    policy = POLICIES[policy_name]

    def record(inp: DecisionInput) -> Allocation:
        decisions.append(policy(inp))
        return decisions[-1]

    simulate(trace, record, cfg)
    return decisions


def _replay(decisions: list[Allocation]) -> Callable[[DecisionInput], Allocation]:
    """Recorded decisions, replayed in order (so only the simulator is timed)."""
    it = iter(decisions)
    return lambda inp: next(it)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--e1-only", action="store_true")
    ap.add_argument("--day-policy", default="hadis", choices=list(POLICIES))
    ap.add_argument("--hours", type=float, default=24.0)
    args = ap.parse_args()
    e1_us = bench_e1()
    if not args.e1_only:
        bench_day(args.day_policy, args.hours, e1_us)


if __name__ == "__main__":
    main()
