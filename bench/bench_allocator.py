"""Benchmark of the HADIS MILP allocator (prints figures; not a test).

Scenarios (solve time of one decision, p50 / p99 over a sweep of demands):

* E1: the packaged profile × 0.1 time scale, SLO 6 s, 16 GPUs, its 52-row Pareto table;
* 128 GPUs, same profile and table, demand × 8;
* 1,024 GPUs in 4 pools of different GPU types (the L40S latencies copied and scaled; the small
  GPU cannot hold sd35-large, and one type lacks sd35-medium), demand × 64.

Baselines in the same process: the naive "one solve per row" loop (the same MILP restricted to one
row, best FID kept) and, on one pool, the exhaustive enumeration of
:mod:`hadis.policy.allocator_reference`; both also cross-check the MILP's optimum.
Targets: p50 ≤ 50 ms at 16 GPUs × 52 rows; p50 ≤ 1 s at 1,024 GPUs × 4 pools.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from hadis.api import DecisionInput, GpuPerf, GpuPool, Profile
from hadis.api.allocation import Allocation
from hadis.policy.allocator import BATCH_WAIT_FACTOR, solve_cascade
from hadis.policy.allocator_reference import enumerate_best
from hadis.policy.pareto import table_for
from hadis.profiles import load_profile

#: (GPU type, latency factor vs L40S, memory GiB or None, variants without a profile there)
GPU_TYPES = [
    ("l40s", 1.0, None, ()),
    ("h100", 0.55, 80.0, ()),
    ("a10", 2.2, 24.0, ()),
    ("t4", 4.0, 16.0, ("sd35-medium",)),
]


def multi_gpu_profile(base: Profile) -> Profile:
    """``base`` with its reference-GPU perf copied to the types of :data:`GPU_TYPES`, latencies scaled."""
    variants = []
    for v in base.variants:
        ref = v.perf_on(base.reference_gpu_type)
        perf = [ref]
        for name, factor, mem, missing in GPU_TYPES[1:]:
            if v.name in missing:
                continue
            batches = [b.model_copy(update={"latency_s": b.latency_s * factor}) for b in ref.batches]
            perf.append(GpuPerf(gpu_type=name, gpu_memory_gib=mem, batches=batches))
        variants.append(v.model_copy(update={"perf": perf}))
    return base.model_copy(update={"variants": variants})


def timed(fn: Callable[[], Allocation]) -> tuple[float, Allocation]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def loop_per_row(inp: DecisionInput) -> Allocation | None:
    """The naive baseline: one MILP per row, keep the best feasible FID (ties: table order)."""
    best: Allocation | None = None
    for r in inp.table:
        a = solve_cascade(inp, [r], "loop", use_spare_gpus=False)
        if a.feasible and (best is None or a.expected_fid < best.expected_fid):
            best = a
    return best


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def scenario(name: str, profile: Profile, pools: list[GpuPool], demands: list[float], loops: int) -> None:
    table = table_for(profile)
    inputs = [
        DecisionInput(profile=profile, table=table, demand_qps=d, slo_s=6.0, pools=pools, time_limit_s=10)
        for d in demands
    ]
    solve_cascade(inputs[0], table, "hadis")  # warm-up (imports, CBC binary in page cache)
    times, shed, mismatches, limited = [], 0, 0, 0
    slowest = (0.0, 0.0, "")
    for inp in inputs * 3:
        dt, a = timed(lambda inp=inp: solve_cascade(inp, inp.table, "hadis"))  # type: ignore[misc]
        times.append(dt)
        shed += a.shed
        limited += "time limit" in a.solver_status
        slowest = max(slowest, (dt, inp.demand_qps, a.solver_status))
    ref_times, loop_times = [], []
    for inp in inputs[:: max(1, len(inputs) // loops)]:
        _, a = timed(lambda inp=inp: solve_cascade(inp, inp.table, "hadis"))  # type: ignore[misc]
        t = time.perf_counter()
        best = loop_per_row(inp)
        loop_times.append(time.perf_counter() - t)
        if (best.expected_fid if best else None) != (a.expected_fid if a.feasible else None):
            mismatches += 1
        if len(pools) == 1:
            t = time.perf_counter()
            ref = enumerate_best(inp, table, batch_wait_factor=BATCH_WAIT_FACTOR)
            ref_times.append(time.perf_counter() - t)
            mismatches += (ref.row.fid if ref else None) != (a.expected_fid if a.feasible else None)
    gpus = sum(p.count for p in pools)
    p50, p99 = statistics.median(times), pct(times, 0.99)
    print(
        f"\n{name}: {gpus} GPUs in {len(pools)} pool(s), {len(table)} rows, {len(times)} solves ({shed} shed)"
    )
    worst = max(times)
    print(
        f"  MILP solve time      p50 {p50 * 1e3:8.1f} ms   p99 {p99 * 1e3:8.1f} ms  max {worst * 1e3:7.1f} ms"
    )
    print(
        f"  slowest {slowest[0] * 1e3:.1f} ms at {slowest[1]:g} qps ({slowest[2]}); {limited} at time limit"
    )
    lp50 = statistics.median(loop_times)
    print(f"  loop-per-row (CBC)   p50 {lp50 * 1e3:8.1f} ms   ratio loop/MILP {lp50 / p50:6.1f}×")
    if ref_times:
        rp50 = statistics.median(ref_times)
        print(f"  exhaustive (Python)  p50 {rp50 * 1e3:8.1f} ms   ratio enum/MILP {rp50 / p50:6.2f}×")
    print(f"  optimum cross-check: {mismatches} mismatch(es) over {len(loop_times)} demand(s)")


def main() -> None:
    e1 = load_profile().time_scaled(0.1)
    base = [2.0, 5, 10, 15, 20, 25, 32, 40, 48, 56, 64, 72, 80, 96, 110, 130, 160, 200, 300, 500]
    scenario("E1 (x0.1, SLO 6 s)", e1, [GpuPool(name="l40s", gpu_type="L40S", count=16)], base, 5)
    scenario("128 GPUs", e1, [GpuPool(name="l40s", gpu_type="L40S", count=128)], [d * 8 for d in base], 5)
    multi = multi_gpu_profile(e1)
    pools = [
        GpuPool(name=f"pool-{t}", gpu_type="L40S" if t == "l40s" else t, count=256) for t, *_ in GPU_TYPES
    ]
    scenario("1,024 GPUs x 4 GPU types", multi, pools, [d * 64 for d in base[::2]], 3)


if __name__ == "__main__":
    main()
