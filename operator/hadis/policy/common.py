"""Small pure helpers shared by the non-cascade baselines (Clipper, INFaaS, Proteus).

Conventions used by every baseline:

* Only ``inp.allowed_variants`` are considered, and on a pool only variants with latencies for the
  pool's GPU type and whose batch fits the GPU memory (:meth:`GpuPerf.fits_memory`).
* "Lighter" means a smaller batch-1 latency on the profile's reference GPU (ties: worse FID first),
  the same order as :meth:`Profile.lightest`; "heavier" the opposite.
* Capacity counts only workers whose full-batch latency meets the SLO: a worker that cannot finish
  a batch in time serves nobody in time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hadis.api.allocation import Allocation, DecisionInput, GpuPool, VariantAllocation
from hadis.api.profile import GpuPerf, Profile, Variant

#: Shares below this are dropped from a split (rounding noise from solver values).
SHARE_EPS = 1e-9


def weight_key(profile: Profile, v: Variant) -> tuple[float, float]:
    """Sort key from lightest to heaviest: batch-1 latency on the reference GPU, then worse FID first."""
    return (v.perf_on(profile.reference_gpu_type).latency(1), -v.fid)


def allowed_by_weight(inp: DecisionInput) -> list[Variant]:
    """The allowed variants, lightest first (see :func:`weight_key`)."""
    variants = [inp.profile.variant(n) for n in inp.allowed_variants]
    return sorted(variants, key=lambda v: (*weight_key(inp.profile, v), v.name))


def runnable_by_weight(inp: DecisionInput) -> list[Variant]:
    """Allowed variants, lightest first, that at least one pool can run (all allowed ones if none can)."""
    ordered = allowed_by_weight(inp)
    runnable = [v for v in ordered if any(perf_in_pool(v, p) is not None for p in inp.pools)]
    return runnable or ordered


def perf_in_pool(v: Variant, pool: GpuPool) -> GpuPerf | None:
    """The variant's profile on the pool's GPU type, or None when it cannot run there at all.

    It cannot run when the pool is empty, the profile has no latencies for that GPU type, or not
    even the smallest profiled batch fits the GPU memory.
    """
    if pool.count <= 0 or not v.has_gpu(pool.gpu_type):
        return None
    perf = v.perf_on(pool.gpu_type)
    if not any(perf.fits_memory(p.batch) for p in perf.batches):
        return None
    return perf


def slo_batch(perf: GpuPerf, limit_s: float) -> int | None:
    """The largest profiled batch that fits memory and whose latency is ≤ ``limit_s`` (None if none)."""
    ok = [p.batch for p in perf.batches if p.latency_s <= limit_s and perf.fits_memory(p.batch)]
    return max(ok) if ok else None


def smallest_batch(perf: GpuPerf) -> int | None:
    """The smallest profiled batch that fits memory (None if none does)."""
    ok = [p.batch for p in perf.batches if perf.fits_memory(p.batch)]
    return min(ok) if ok else None


def variant_allocation(v: Variant, pool: GpuPool, replicas: int, batch: int) -> VariantAllocation:
    """Workers of ``v`` on ``pool`` with their profiled batch latency and throughput."""
    latency = v.perf_on(pool.gpu_type).latency(batch)
    return VariantAllocation(
        variant=v.name,
        pool=pool.name,
        replicas=replicas,
        batch_size=batch,
        latency_s=latency,
        throughput_qps=replicas * batch / latency,
    )


def all_gpus_on(inp: DecisionInput, v: Variant) -> list[VariantAllocation]:
    """Every GPU of every pool that can run ``v``, each at its largest batch within the SLO.

    A pool where no batch meets the SLO still gets its workers, at the smallest batch that fits
    memory (they contribute no in-time capacity, see :func:`slo_capacity`).
    """
    out: list[VariantAllocation] = []
    for pool in inp.pools:
        perf = perf_in_pool(v, pool)
        if perf is None:
            continue
        batch = slo_batch(perf, inp.slo_s) or smallest_batch(perf)
        if batch is not None:
            out.append(variant_allocation(v, pool, pool.count, batch))
    return out


def slo_capacity(allocs: Iterable[VariantAllocation], slo_s: float, variant: str | None = None) -> float:
    """Throughput (qps) of the workers whose batch latency meets the SLO (optionally of one variant)."""
    return sum(
        a.throughput_qps for a in allocs if a.latency_s <= slo_s and (variant is None or a.variant == variant)
    )


def expected_fid(profile: Profile, split: Mapping[str, float]) -> float:
    """Share-weighted mean of the single-model FIDs of the variants in ``split``."""
    return sum(share * profile.variant(name).fid for name, share in split.items())


def fmt(x: float) -> str:
    """A number for a human-readable reason: at most 3 significant digits after the point."""
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def single_variant_plan(
    inp: DecisionInput, policy: str, v: Variant, why: str, *, solver_status: str = "n/a"
) -> Allocation:
    """All GPUs that can run ``v`` on ``v``; every query routed to it; shedding when short of capacity.

    ``why`` is the policy-specific first sentence of the reason; this adds the plan and the
    capacity check. ``feasible`` is true when the in-time capacity covers the demand; otherwise
    ``shed`` is true and ``shed_qps`` is the uncovered demand.
    """
    allocs = all_gpus_on(inp, v)
    cap = slo_capacity(allocs, inp.slo_s)
    uncovered = max(0.0, inp.demand_qps - cap)
    feasible = uncovered <= 1e-9
    gpus = sum(a.replicas for a in allocs)
    if not allocs:
        plan = f"no GPU pool can run {v.name} (no GPUs of a profiled type with enough memory)"
    else:
        parts = [f"{a.replicas}×{a.pool} at batch {a.batch_size} (L={fmt(a.latency_s)} s)" for a in allocs]
        plan = f"{gpus} GPU(s) run {v.name} (FID {v.fid:g}): {', '.join(parts)}"
    check = f"in-time capacity {fmt(cap)} qps {'≥' if feasible else '<'} demand {fmt(inp.demand_qps)} qps"
    if not feasible:
        check += f"; {fmt(uncovered)} qps shed"
    return Allocation(
        policy=policy,
        split={v.name: 1.0},
        variants=allocs,
        demand_qps=inp.demand_qps,
        expected_fid=v.fid,
        feasible=feasible,
        shed=not feasible,
        shed_qps=0.0 if feasible else uncovered,
        solver_status=solver_status,
        reason=f"{why}; {plan}; {check} (SLO {fmt(inp.slo_s)} s)",
    )
