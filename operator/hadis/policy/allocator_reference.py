"""Exhaustive reference for the HADIS MILP on one GPU pool: a loop over rows and batch sizes.

Not used to decide anything; the tests and the allocator benchmark cross-check the MILP's optimum
against it. On a single pool the minimum number of GPUs of a stage for a given batch size is
simply ``max(1, ⌈demand share / throughput⌉)``, so enumerating every row and every batch size of
its stages finds the best feasible FID exactly. It deliberately shares only the cascade definitions
(:func:`shares`, :func:`paths`) with the MILP, none of its pre-filtering.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from hadis.api.allocation import DecisionInput
from hadis.api.profile import CascadeRow
from hadis.policy.allocator_model import backlog_drain
from hadis.policy.cascade_plan import paths, shares


@dataclass(frozen=True)
class ReferencePlan:
    """The best row the enumeration found, with one minimum-GPU way to serve it."""

    row: CascadeRow
    index: int
    batches: dict[str, int]
    gpus: dict[str, int]


def enumerate_best(
    inp: DecisionInput,
    table: Sequence[CascadeRow],
    batch_wait_factor: float = 1.0,
    drain_backlog: bool = False,
) -> ReferencePlan | None:
    """The lowest-FID feasible row (ties: lower cost_s, then earlier in ``table``), or None.

    ``drain_backlog``: each stage also needs the throughput of
    :func:`hadis.policy.allocator_model.backlog_drain` (the backlog's *rule* is shared with the
    MILP; the search is not), dropped again when no row can meet it.
    Only for inputs with exactly one pool (raises ``ValueError`` otherwise).
    """
    if len(inp.pools) != 1:
        raise ValueError("the reference enumeration handles exactly one GPU pool")
    pool = inp.pools[0]
    best: tuple[tuple[float, float, int], ReferencePlan] | None = None
    for i, r in enumerate(table):
        sh = shares(r)
        if not sh:
            continue
        extra = backlog_drain(inp, r, sh) if drain_backlog else {}
        choices = []
        for v in sh:
            var = inp.profile.variant(v)
            if not var.has_gpu(pool.gpu_type):
                break
            perf = var.perf_on(pool.gpu_type)
            choices.append([p for p in perf.batches if perf.fits_memory(p.batch)])
        else:
            for combo in itertools.product(*choices):
                stage = {
                    v: batch_wait_factor * p.latency_s + inp.queueing_delay_s(v)
                    for v, p in zip(sh, combo, strict=True)
                }
                if any(sum(stage[v] for v in path) > inp.slo_s for path in paths(r)):
                    continue
                gpus = {
                    v: max(
                        1, math.ceil((inp.demand_qps * s + extra.get(v, 0.0)) * p.latency_s / p.batch - 1e-9)
                    )
                    for (v, s), p in zip(sh.items(), combo, strict=True)
                }
                if sum(gpus.values()) > pool.count:
                    continue
                key = (r.fid, r.cost_s or 0.0, i)
                if best is None or key < best[0]:
                    batches = {v: p.batch for v, p in zip(sh, combo, strict=True)}
                    best = (key, ReferencePlan(r, i, batches, gpus))
    if best is None and drain_backlog:
        return enumerate_best(inp, table, batch_wait_factor)
    return None if best is None else best[1]
