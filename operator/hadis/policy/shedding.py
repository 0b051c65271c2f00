"""The explicit load-shedding plan: what every cascade policy returns when no table row is feasible.

Instead of raising, a policy that cannot meet the SLO for the whole demand serves as much as it can
with the cheapest configuration: the lightest allowed variant on every GPU that can run it, each
worker at the largest profiled batch whose latency meets the SLO (batch 1 if none does). The
demand beyond that capacity is reported as ``shed_qps``; the gateway's admission control answers
those requests with an explicit error instead of letting them time out. Only workers whose batch
latency meets the SLO count as capacity: a worker that cannot finish a batch in time serves nobody
in time (the same convention as the non-cascade baselines).
"""

from __future__ import annotations

from hadis.api.allocation import Allocation, DecisionInput, VariantAllocation
from hadis.api.profile import GpuPerf, Variant


def lightest_allowed(inp: DecisionInput) -> Variant:
    """The allowed variant with the smallest batch-1 latency on the reference GPU (ties: worse FID)."""
    ref = inp.profile.reference_gpu_type
    variants = [inp.profile.variant(n) for n in inp.allowed_variants]
    return min(variants, key=lambda v: (v.perf_on(ref).latency(1), -v.fid, v.name))


def slo_batch(perf: GpuPerf, slo_s: float) -> int:
    """The largest profiled batch that fits memory with L(b) ≤ SLO; else the smallest profiled one (1)."""
    ok = [p.batch for p in perf.batches if p.latency_s <= slo_s and perf.fits_memory(p.batch)]
    return max(ok) if ok else perf.batches[0].batch


def shedding_plan(inp: DecisionInput, policy: str, reason: str) -> Allocation:
    """The lightest allowed variant on every GPU of every pool whose GPU type it has latencies for.

    ``reason`` says why no cascade row was feasible; the plan's capacity, the shed demand and the
    SLO check are appended to it. Never raises for a valid :class:`DecisionInput`.
    """
    v = lightest_allowed(inp)
    allocs: list[VariantAllocation] = []
    for pool in inp.pools:
        if pool.count <= 0 or not v.has_gpu(pool.gpu_type):
            continue
        perf = v.perf_on(pool.gpu_type)
        b = slo_batch(perf, inp.slo_s)
        lat = perf.latency(b)
        allocs.append(
            VariantAllocation(
                variant=v.name,
                pool=pool.name,
                replicas=pool.count,
                batch_size=b,
                latency_s=lat,
                throughput_qps=pool.count * b / lat,
            )
        )
    capacity = sum(a.throughput_qps for a in allocs if a.latency_s <= inp.slo_s)  # in-time capacity only
    shed = max(0.0, inp.demand_qps - capacity)
    gpus = sum(a.replicas for a in allocs)
    where = ", ".join(f"{a.replicas}×{a.pool} batch {a.batch_size} (L={a.latency_s:.3g} s)" for a in allocs)
    plan = (
        f"Load-shedding plan: every query goes to the lightest variant {v.name} (FID {v.fid:g}) on "
        f"{gpus} GPU(s) [{where or 'no pool has its GPU type'}]; capacity {capacity:.4g} qps vs demand "
        f"{inp.demand_qps:.4g} qps, so {shed:.4g} qps are shed (SLO {inp.slo_s:g} s)."
    )
    return Allocation(
        policy=policy,
        row=None,
        split={v.name: 1.0},
        variants=allocs,
        demand_qps=inp.demand_qps,
        expected_fid=v.fid,
        feasible=False,
        shed=True,
        shed_qps=shed,
        solver_status="n/a",
        reason=f"{reason.rstrip('. ')}. {plan}",
    )
