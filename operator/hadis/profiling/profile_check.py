"""Checks that a measured profile and its Pareto table are complete and usable by the planner.

``hadis profile all`` runs these on what it wrote (read back through the planning core's loaders):

* latencies: every variant has measured latencies on the GPU type for the requested batch sizes
  (all of them, or the smallest ones up to the first that ran out of memory);
* sweep: every ordered (light, heavy) pair has exactly one row per (θ, τ) of the grid, with a cost;
* table: the Pareto table of the sweep (non-dominated rows, sorted by cost ascending);
* allocation: the allocator decides a feasible allocation on them (:func:`check_allocation`).

Each check raises :class:`ProfileCheckError` naming the file part and what is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hadis.api import Allocation, DecisionInput
from hadis.api.allocation import GpuPool
from hadis.api.profile import CascadeRow, Profile
from hadis.errors import UserError
from hadis.policy.pareto import build_pareto_table, dominates
from hadis.policy.registry import decide
from hadis.profiling.sweep import ordered_pairs

#: the check's load, relative to the variants' latencies (see :func:`check_allocation`)
SLO_FACTOR = 4.0
DEMAND_FACTOR = 0.25


class ProfileCheckError(UserError):
    """A profile, sweep or table that is incomplete or inconsistent (the message says which and why)."""


def check_latencies(
    profile: Profile, variants: Sequence[str], batches: Sequence[int], gpu_type: str
) -> dict[str, list[int]]:
    """The measured batch sizes per variant; each must be ``batches`` or its smallest ones (out of memory)."""
    want = sorted(set(batches))
    out: dict[str, list[int]] = {}
    for name in variants:
        if name not in profile.variant_names:
            raise ProfileCheckError(f"profile: no variant {name!r} (it has {profile.variant_names})")
        try:
            perf = profile.variant(name).perf_on(gpu_type)
        except KeyError:
            raise ProfileCheckError(
                f"profile: variant {name!r} has no latencies on GPU type {gpu_type!r}"
            ) from None
        got = [p.batch for p in perf.batches]
        if not got or got != want[: len(got)]:
            raise ProfileCheckError(
                f"profile: variant {name!r} on {gpu_type} has batch sizes {got}; expected {want} "
                "(or the smallest of them, up to the first that ran out of memory)"
            )
        unmeasured = [p.batch for p in perf.batches if p.source != "measured"]
        if unmeasured:
            raise ProfileCheckError(
                f"profile: variant {name!r} on {gpu_type}: batch sizes {unmeasured} not measured"
            )
        out[name] = got
    return out


def lightest_first(profile: Profile, variants: Sequence[str], gpu_type: str) -> list[str]:
    """``variants`` by batch-1 latency on ``gpu_type`` (ties in the given order), as the sweep pairs them."""
    return sorted(
        variants, key=lambda n: (profile.variant(n).perf_on(gpu_type).latency(1), list(variants).index(n))
    )


def check_sweep(rows: Sequence[CascadeRow], variants: Sequence[str], grid: Sequence[float]) -> int:
    """Each ordered pair of ``variants`` (lightest first) × θ × τ of ``grid`` once; returns the count."""
    want = {
        (light, heavy, t, u) for light, heavy in ordered_pairs(list(variants)) for t in grid for u in grid
    }
    got = [r.key for r in rows]
    dupes = sorted({k for k in got if got.count(k) > 1})
    if dupes:
        raise ProfileCheckError(f"sweep: {len(dupes)} (light, heavy, θ, τ) cell(s) twice, e.g. {dupes[0]}")
    missing, extra = sorted(want - set(got)), sorted(set(got) - want)
    if missing:
        raise ProfileCheckError(f"sweep: {len(missing)} of {len(want)} cells missing, e.g. {missing[0]}")
    if extra:
        raise ProfileCheckError(f"sweep: {len(extra)} cell(s) outside the pairs and grid, e.g. {extra[0]}")
    no_cost = [r.label for r in rows if r.cost_s is None]
    if no_cost:
        raise ProfileCheckError(f"sweep: {len(no_cost)} row(s) without a cost per query, e.g. {no_cost[0]}")
    return len(rows)


def check_table(table: Sequence[CascadeRow], sweep: Sequence[CascadeRow]) -> int:
    """``table`` is the sweep's Pareto table: its rows, non-dominated, sorted by cost; returns its size."""
    if not table:
        raise ProfileCheckError("table: no rows")
    for a in table:
        for b in table:
            if dominates(a, b):
                raise ProfileCheckError(f"table: row {a.label} dominates row {b.label}")
    costs = [r.cost_s or 0.0 for r in table]
    if costs != sorted(costs):
        raise ProfileCheckError("table: rows not sorted by cost per query")
    want = [r.key for r in build_pareto_table(sweep)]
    got = [r.key for r in table]
    if got != want:
        diff = next(
            (i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w), min(len(got), len(want))
        )
        raise ProfileCheckError(
            f"table: not the sweep's Pareto table ({len(got)} rows, it has {len(want)}; "
            f"row {diff} differs: {[*got, None][diff]} vs {[*want, None][diff]})"
        )
    return len(table)


@dataclass(frozen=True)
class AllocationCheck:
    """The load the allocator was asked to serve and its decision."""

    gpus: int
    demand_qps: float
    slo_s: float
    allocation: Allocation


def check_allocation(
    profile: Profile, table: Sequence[CascadeRow], variants: Sequence[str], gpu_type: str
) -> AllocationCheck:
    """The allocator's decision for a load every variant can serve alone on one GPU.

    One GPU per variant of ``gpu_type``; demand DEMAND_FACTOR / (the slowest batch-1 latency) QPS;
    SLO SLO_FACTOR × the slowest latency of any measured batch. The decision must be feasible.
    """
    perfs = [profile.variant(n).perf_on(gpu_type) for n in variants]
    slowest_1 = max(p.latency(1) for p in perfs)
    slowest = max(b.latency_s for p in perfs for b in p.batches)
    demand, slo = DEMAND_FACTOR / slowest_1, SLO_FACTOR * slowest
    inp = DecisionInput(
        profile=profile,
        table=list(table),
        demand_qps=demand,
        slo_s=slo,
        pools=[GpuPool(name="check", gpu_type=gpu_type, count=len(variants))],
        variants=list(variants),
    )
    alloc = decide("hadis", inp)
    if not alloc.feasible:
        raise ProfileCheckError(
            f"allocation: infeasible for {demand:.3g} QPS within {slo:.3g} s on {len(variants)} × {gpu_type} "
            f"({alloc.reason or 'no reason given'})"
        )
    return AllocationCheck(gpus=len(variants), demand_qps=demand, slo_s=slo, allocation=alloc)
