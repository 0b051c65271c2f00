"""Proteus baseline: a MILP over per-variant workers and batch sizes, without a cascade.

The reference is the HADIS artifact's ``solve_proteus_milp``. Variables: integer workers
``n[v,p,b]`` of variant v on pool p at batch b, with one batch size per (variant, pool) (binary
``y[v,p,b]``, ``n ≤ count_p · y``). Constraints:

* GPUs: ``Σ_{v,b} n[v,p,b] ≤ count_p`` for every pool;
* latency: an option (v, p, b) exists only when ``L_p(b) · (1 + Q) ≤ SLO`` and the batch fits memory.
  ``Q`` is the artifact's queue factor read as a ratio: ``Q = 1.2 · W_v / L_p(b)``, where ``W_v`` is
  the queueing delay of v by Little's law (:meth:`DecisionInput.queueing_delay_s`, 0 without an
  observed queue) and 1.2 the artifact's safety factor — i.e. ``L_p(b) + 1.2 · W_v ≤ SLO``;
* demand: ``Σ n · b / L_p(b) ≥ 1.25 · D`` (total throughput with 25 % headroom).

Objective: maximise ``Σ normq_v · n`` with ``normq_v = (FIDmax − FID_v) / (FIDmax − FIDmin)`` over
the allowed variants (1 for all when their FIDs are equal), plus two tiny deterministic tie-breaks:
every worker used (so the lightest variant, normq 0, still gets otherwise idle GPUs) and, among equal
mixes, the batch with the higher throughput for its (variant, pool).

Queries are assigned best quality first, as Proteus's query assignment does: the best variant takes
as much of the demand as its throughput serves, the next best the rest up to its throughput, and so
on (``split_v = assigned_v / D``). The 25 % headroom of the MILP is thus spare capacity of the light
end of the mix. The artifact splits by worker count (``workers_v / Σ workers``); with a heavy
variant 20× slower than the light one, that sends the heavy workers several times the queries they
can serve (0.53 SLO violations on E1 against the paper's 0.095), so HADIS does not reproduce that
choice. Demand left over after every variant is full is reported as shed (``feasible=False``).

When no allocation reaches 1.25 · D, Proteus falls back to every GPU on the lightest allowed variant
(largest batch within the SLO); the plan is feasible when that still covers D, else it sheds the
uncovered demand. The reconfiguration cost is ignored (Proteus does not model it).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import pulp

from hadis.api.allocation import Allocation, DecisionInput, GpuPool, VariantAllocation
from hadis.api.profile import Variant
from hadis.policy.allocator import CBC_OPTIONS
from hadis.policy.common import (
    allowed_by_weight,
    expected_fid,
    fmt,
    perf_in_pool,
    runnable_by_weight,
    single_variant_plan,
    variant_allocation,
)

#: Required total throughput as a multiple of the demand.
HEADROOM = 1.25
#: The artifact's safety factor on the Little's-law queueing delay.
QUEUE_SAFETY = 1.2
#: Objective bonus per worker used, and per worker × (relative throughput) — tie-breaks only.
EPS_WORKER = 1e-3
EPS_THROUGHPUT = 1e-4


@dataclass(frozen=True)
class _Option:
    """One admissible (variant, pool, batch) with its per-worker throughput."""

    variant: Variant
    pool: GpuPool
    batch: int
    throughput: float


def normalised_quality(variants: list[Variant]) -> dict[str, float]:
    """``(FIDmax − FID) / (FIDmax − FIDmin)`` per variant (1 for every variant when all FIDs are equal)."""
    fids = [v.fid for v in variants]
    lo, hi = min(fids), max(fids)
    if hi - lo < 1e-12:
        return {v.name: 1.0 for v in variants}
    return {v.name: (hi - v.fid) / (hi - lo) for v in variants}


def _options(inp: DecisionInput, variants: list[Variant]) -> list[_Option]:
    out: list[_Option] = []
    for v in variants:
        wait = QUEUE_SAFETY * inp.queueing_delay_s(v.name)
        for pool in inp.pools:
            perf = perf_in_pool(v, pool)
            if perf is None:
                continue
            for pt in perf.batches:
                if perf.fits_memory(pt.batch) and pt.latency_s + wait <= inp.slo_s:
                    out.append(_Option(v, pool, pt.batch, pt.batch / pt.latency_s))
    return out


def _max_throughput(inp: DecisionInput, options: list[_Option]) -> float:
    """Upper bound on the total throughput: every GPU of each pool on its best option."""
    return sum(
        pool.count * max((o.throughput for o in options if o.pool.name == pool.name), default=0.0)
        for pool in inp.pools
    )


def _solve(inp: DecisionInput, options: list[_Option], normq: dict[str, float]) -> tuple[dict[int, int], str]:
    """Solve the MILP; worker count per option index (empty when no solution) and the solver status."""
    prob = pulp.LpProblem("proteus", pulp.LpMaximize)
    n = {
        i: prob.add_variable(f"n_{i}", lowBound=0, upBound=o.pool.count, cat="Integer")
        for i, o in enumerate(options)
    }
    y = {i: prob.add_variable(f"y_{i}", cat="Binary") for i in n}
    groups: dict[tuple[str, str], list[int]] = {}
    for i, o in enumerate(options):
        groups.setdefault((o.variant.name, o.pool.name), []).append(i)
        prob += n[i] <= o.pool.count * y[i]
    best = {key: max(options[i].throughput for i in idx) for key, idx in groups.items()}
    prob += pulp.lpSum(
        (
            normq[o.variant.name]
            + EPS_WORKER
            + EPS_THROUGHPUT * o.throughput / best[(o.variant.name, o.pool.name)]
        )
        * n[i]
        for i, o in enumerate(options)
    )
    for idx in groups.values():
        prob += pulp.lpSum(y[i] for i in idx) <= 1
    for pool in inp.pools:
        prob += pulp.lpSum(n[i] for i, o in enumerate(options) if o.pool.name == pool.name) <= pool.count
    prob += pulp.lpSum(o.throughput * n[i] for i, o in enumerate(options)) >= HEADROOM * inp.demand_qps
    with warnings.catch_warnings():  # PuLP 3.3 warns that the bundled CBC goes away in PuLP 4
        warnings.simplefilter("ignore", DeprecationWarning)
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=inp.time_limit_s, options=CBC_OPTIONS)
    try:
        prob.solve(solver)
    except (pulp.PulpSolverError, OSError) as e:
        return {}, f"solver error: {e}"
    if prob.sol_status == pulp.LpSolutionIntegerFeasible:
        status = "Feasible (time limit)"
    else:
        status = str(pulp.LpStatus.get(prob.status, prob.status))
    if prob.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        return {}, status
    workers = {i: round(v.value() or 0.0) for i, v in n.items()}
    return {i: w for i, w in workers.items() if w > 0}, status


def _allocation(
    inp: DecisionInput, options: list[_Option], workers: dict[int, int], status: str, elapsed: float
) -> Allocation:
    allocs: list[VariantAllocation] = [
        variant_allocation(options[i].variant, options[i].pool, w, options[i].batch)
        for i, w in sorted(workers.items())
    ]
    total = sum(workers.values())
    per_variant: dict[str, int] = {}
    for a in allocs:
        per_variant[a.variant] = per_variant.get(a.variant, 0) + a.replicas
    thr = sum(a.throughput_qps for a in allocs)
    split = _quality_first_split(inp, allocs, per_variant, total)
    mix = ", ".join(
        f"{a.replicas}×{a.variant}@{a.pool} b={a.batch_size} (L={fmt(a.latency_s)} s)" for a in allocs
    )
    reason = (
        f"proteus: MILP ({status}) maximises normalised quality × workers: {mix}; "
        f"throughput {fmt(thr)} qps ≥ {HEADROOM}·demand {fmt(HEADROOM * inp.demand_qps)} qps"
    )
    overflow = {
        name: share * inp.demand_qps - _cap(allocs, name)
        for name, share in split.items()
        if share * inp.demand_qps > _cap(allocs, name) + 1e-9
    }
    shed_qps = sum(overflow.values())
    if overflow:
        reason += "; but " + "; ".join(
            f"{name} gets {fmt(split[name] * inp.demand_qps)} qps, {fmt(over)} qps over its capacity"
            for name, over in overflow.items()
        )
        reason += f": {fmt(shed_qps)} qps shed"
    return Allocation(
        policy="proteus",
        split=split,
        variants=allocs,
        demand_qps=inp.demand_qps,
        expected_fid=expected_fid(inp.profile, split),
        feasible=not overflow,
        shed=bool(overflow),
        shed_qps=shed_qps,
        solver_status=status,
        solve_time_s=elapsed,
        reason=reason,
    )


def _quality_first_split(
    inp: DecisionInput, allocs: list[VariantAllocation], per_variant: dict[str, int], total: int
) -> dict[str, float]:
    """Shares of the demand: best FID first, each variant up to its throughput, the rest to the lightest."""
    if inp.demand_qps <= 0:
        return {name: w / total for name, w in per_variant.items()}
    order = sorted(per_variant, key=lambda v: (inp.profile.variant(v).fid, v))
    left = inp.demand_qps
    assigned: dict[str, float] = {}
    for name in order:
        take = min(left, _cap(allocs, name))
        if take > 0:
            assigned[name] = take
        left -= take
    if left > 0:  # over capacity: the excess stays with the last (lightest) variant and shows as shed
        assigned[order[-1]] = assigned.get(order[-1], 0.0) + left
    # every variant with workers stays in the split (share 0 when better variants take everything)
    return {name: assigned.get(name, 0.0) / inp.demand_qps for name in order}


def _cap(allocs: list[VariantAllocation], name: str) -> float:
    return sum(a.throughput_qps for a in allocs if a.variant == name)


def decide_proteus(inp: DecisionInput) -> Allocation:
    """Proteus's variant mix for the demand (see the module docstring); never raises."""
    start = time.perf_counter()
    variants = allowed_by_weight(inp)
    options = _options(inp, variants)
    need = HEADROOM * inp.demand_qps
    status = "not solved"
    if not options:
        why = "no (variant, pool, batch) meets the SLO with the observed queues"
    elif _max_throughput(inp, options) < need:
        why = f"no allocation reaches {HEADROOM}·demand = {fmt(need)} qps"
    else:
        workers, status = _solve(inp, options, normalised_quality(variants))
        if workers:
            return _allocation(inp, options, workers, status, time.perf_counter() - start)
        why = f"the MILP found no solution ({status})"
    plan = single_variant_plan(
        inp,
        "proteus",
        runnable_by_weight(inp)[0],
        f"proteus: {why}; fallback to the lightest variant",
        solver_status=status,
    )
    return plan.model_copy(update={"solve_time_s": time.perf_counter() - start})
