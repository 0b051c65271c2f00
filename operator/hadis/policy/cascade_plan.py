"""The cascade model shared by the HADIS MILP, its brute-force reference and the plan checks.

Terms (all pure functions of a :class:`DecisionInput`):

* **Share** of a stage: light generates for ``1 − θ`` of the queries, heavy for ``p = θ + (1−θ)τ``.
  A stage with share 0 (e.g. heavy of a θ = τ = 0 row) receives no traffic and gets no GPUs.
* **Stage latency** of a variant: ``batch_wait_factor · L(b) + W``, where ``L(b)`` is the profiled
  full-batch latency (the slowest pool the variant runs on) and ``W`` the Little's-law queueing
  delay of :meth:`DecisionInput.queueing_delay_s`.
* **Paths** of a row: light only (θ < 1), heavy only (θ > 0, router-sent) and light → heavy
  (θ < 1 and τ > 0, escalated). Every existing path must finish within the SLO. For τ > 0 the
  escalated path dominates, which is the paper's constraint; a τ = 0 row has no escalated path,
  so its light and heavy stages are only bounded separately.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from hadis.api.allocation import Allocation, DecisionInput, GpuPool
from hadis.api.profile import CascadeRow

#: Shares below this are treated as zero (a stage that receives no traffic).
SHARE_EPS = 1e-9
#: Relative slack allowed when checking capacity ≥ demand (solver round-off).
CAPACITY_RTOL = 1e-6


@dataclass(frozen=True)
class StageOption:
    """One way to run a variant on a pool: a batch size that fits memory and the SLO on its own."""

    variant: str
    pool: str
    batch: int
    latency_s: float  # profiled full-batch latency L(b)
    stage_s: float  # batch_wait_factor · L(b) + W
    thr_qps: float  # one GPU: b / L(b)


def shares(row: CascadeRow) -> dict[str, float]:
    """Share of queries each stage of ``row`` generates an image for (stages with share 0 left out)."""
    out = {row.light: 1.0 - row.theta, row.heavy: row.p}
    return {v: s for v, s in out.items() if s > SHARE_EPS}


def paths(row: CascadeRow) -> list[tuple[str, ...]]:
    """The request paths that exist in ``row`` (see the module docstring)."""
    sh = shares(row)
    out: list[tuple[str, ...]] = []
    if row.light in sh:
        out.append((row.light,))
    if row.heavy in sh and row.theta > SHARE_EPS:
        out.append((row.heavy,))
    if row.light in sh and row.heavy in sh and row.tau > SHARE_EPS:
        out.append((row.light, row.heavy))
    return out


@functools.lru_cache(maxsize=4096)
def row_shape(row: CascadeRow) -> tuple[Mapping[str, float], tuple[tuple[str, ...], ...]]:
    """:func:`shares` and :func:`paths` of ``row``, cached (rows are immutable; read-only results).

    The allocator looks at every row of the table on every decision.
    """
    return MappingProxyType(shares(row)), tuple(paths(row))


def path_latency(row: CascadeRow, stage_s: dict[str, float]) -> float:
    """The worst path latency of ``row`` given each stage's latency (missing stages count 0)."""
    return max((sum(stage_s.get(v, 0.0) for v in path) for path in paths(row)), default=0.0)


def stage_options(inp: DecisionInput, batch_wait_factor: float) -> dict[tuple[str, str], list[StageOption]]:
    """Per (variant, pool): the batch sizes that fit memory and whose stage latency alone meets the SLO.

    Pools whose GPU type the variant has no latencies for, and empty pools, get no entry.
    """
    out: dict[tuple[str, str], list[StageOption]] = {}
    for name in inp.allowed_variants:
        v = inp.profile.variant(name)
        wait = inp.queueing_delay_s(name)
        for pool in inp.pools:
            if pool.count <= 0 or not v.has_gpu(pool.gpu_type):
                continue
            perf = v.perf_on(pool.gpu_type)
            opts = [
                StageOption(
                    name,
                    pool.name,
                    b.batch,
                    b.latency_s,
                    batch_wait_factor * b.latency_s + wait,
                    b.batch / b.latency_s,
                )
                for b in perf.batches
                if perf.fits_memory(b.batch) and batch_wait_factor * b.latency_s + wait <= inp.slo_s
            ]
            if opts:
                out[(name, pool.name)] = opts
    return out


def pool_by_name(inp: DecisionInput) -> dict[str, GpuPool]:
    return {p.name: p for p in inp.pools}


def stage_latencies(inp: DecisionInput, alloc: Allocation, batch_wait_factor: float) -> dict[str, float]:
    """Stage latency of every allocated variant: its slowest pool's batch latency, scaled, plus W."""
    out: dict[str, float] = {}
    for a in alloc.variants:
        if a.replicas > 0:
            s = batch_wait_factor * a.latency_s + inp.queueing_delay_s(a.variant)
            out[a.variant] = max(out.get(a.variant, 0.0), s)
    return out


def check_allocation(inp: DecisionInput, alloc: Allocation, batch_wait_factor: float = 1.0) -> list[str]:
    """Every constraint of the cascade model that ``alloc`` violates (empty when it satisfies them all).

    Checks: GPUs per pool ≤ the pool's count, batch sizes fit memory and are profiled on the
    pool's GPU type, capacity ≥ demand for each stage of the row, and every path within the SLO.
    """
    problems: list[str] = []
    pools = pool_by_name(inp)
    for p in inp.pools:
        used = alloc.gpus_in_pool(p.name)
        if used > p.count:
            problems.append(f"pool {p.name}: {used} GPUs > {p.count}")
    for a in alloc.variants:
        pool = pools.get(a.pool)
        var = inp.profile.variant(a.variant)
        if pool is None or not var.has_gpu(pool.gpu_type):
            problems.append(f"{a.variant} on {a.pool}: no latency profile for that pool")
        elif not var.perf_on(pool.gpu_type).fits_memory(a.batch_size):
            problems.append(f"{a.variant} on {a.pool}: batch {a.batch_size} does not fit memory")
    if alloc.row is None:
        return problems
    for v, share in shares(alloc.row).items():
        need, cap = inp.demand_qps * share, alloc.capacity_qps(v)
        if cap < need * (1 - CAPACITY_RTOL) or alloc.replicas(v) < 1:
            problems.append(f"{v}: capacity {cap:.4g} qps < demand {need:.4g} qps (or no replica)")
    lat = path_latency(alloc.row, stage_latencies(inp, alloc, batch_wait_factor))
    if lat > inp.slo_s + 1e-9:
        problems.append(f"path latency {lat:.4g} s > SLO {inp.slo_s:.4g} s")
    return problems
