"""The HADIS allocator: one MILP (pulp + bundled CBC) that picks the cascade row, GPUs and batch sizes.

Decision variables, for the rows that survive a cheap pre-filter (:func:`prefilter`):

* ``x_r`` ∈ {0,1}: row r is chosen; Σ x_r = 1.
* ``y_{v,b}`` ∈ {0,1}: variant v runs batch b (one batch size per variant, Σ_b y ≤ 1).
* ``n_{v,g,b}`` ∈ ℕ GPUs of pool g running v at batch b, ``z_{v,g,b}`` ∈ {0,1} "used":
  ``z ≤ n ≤ count_g · z``, ``z ≤ y_{v,b}``. Only (v, g, b) that fit memory, that v has latencies for
  on g's GPU type, and whose stage latency alone meets the SLO exist.
* ``L_v`` ≥ batch_wait_factor · L_{v,g,b} · z_{v,g,b}: the stage's batch latency (its slowest pool).

Constraints: Σ_{v,b} n_{v,g,b} ≤ count_g per pool; capacity Σ n·b/L(b) ≥ D · Σ_r x_r · share_r(v)
(light gets (1−θ)·D, heavy p·D); at least one GPU for each stage of the chosen row and none for
variants outside it; for every path of each row (see :mod:`hadis.policy.cascade_plan`)
Σ_{v ∈ path} (L_v + W_v) ≤ SLO + M_r (1 − x_r), where W_v is the Little's-law queueing delay.

Objective (FID units): Σ_r FID_r x_r + reconfiguration_cost · (GPUs started vs the previous
allocation) + tie-breaks. Tie-breaks are tiny and deterministic: ≤ 1e-3 for the row's position in
(cost_s, table order), ≤ 1e-4 for the number of GPUs, −1e-5 for the capacity they give (so among
equally many GPUs the batch sizes with more headroom win), ≤ 1e-6 for the stage latencies. FID
differences of 1e-3 or more always decide; among equal-FID rows the cheaper, earlier row wins.
CBC runs single-threaded with a fixed seed and a time limit (see
:data:`hadis.policy.allocator_model.CBC_OPTIONS`), so the same input gives the same allocation.
The model is built and solved in :mod:`hadis.policy.allocator_model`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence

import pulp

from hadis.api.allocation import Allocation, DecisionInput
from hadis.api.profile import CascadeRow
from hadis.policy.allocator_model import CBC_OPTIONS as CBC_OPTIONS
from hadis.policy.allocator_model import prepare, solve_milp
from hadis.policy.allocator_result import build_allocation
from hadis.policy.cascade_plan import StageOption, row_shape, stage_options
from hadis.policy.pareto import table_for
from hadis.policy.shedding import shedding_plan

#: Multiplies every profiled batch latency in the SLO constraint. With dynamic batching a query
#: that arrives just after its worker started a batch waits for that batch first, so a stage's
#: worst case is 2 × L(b), not the L(b) of the paper's constraint (:data:`PAPER_BATCH_WAIT_FACTOR`).
#: HADIS provisions for the worst case: on the paper's E1 it cut SLO violations from 0.0084 to 0 for
#: a mean FID of 22.44 instead of 22.39 (measured with ``hadis simulate --e1``; factors 1.25 / 1.5
#: gave 0.0023 / 0.0005). The observed queueing delay W (Little's law) is added on top either way.
BATCH_WAIT_FACTOR = 2.0
#: The paper's form: one batch latency per stage (used by the DiffServe baseline).
PAPER_BATCH_WAIT_FACTOR = 1.0


def solve_hadis(
    inp: DecisionInput, *, batch_wait_factor: float = BATCH_WAIT_FACTOR, use_spare_gpus: bool = True
) -> Allocation:
    """Policy ``hadis``: the MILP over ``inp.table`` (else the Pareto table), allowed variants only."""
    allowed = set(inp.allowed_variants)
    if inp.table:
        table = [r for r in inp.table if r.light in allowed and r.heavy in allowed]
    else:
        table = table_for(inp.profile, variants=inp.allowed_variants)
    return solve_cascade(
        inp, table, "hadis", batch_wait_factor=batch_wait_factor, use_spare_gpus=use_spare_gpus
    )


def fastest_stage(options: dict[tuple[str, str], list[StageOption]]) -> dict[str, float]:
    """Per variant, its smallest stage latency over all pools and batch sizes."""
    out: dict[str, float] = {}
    for (v, _), opts in options.items():
        out[v] = min(out.get(v, math.inf), *(o.stage_s for o in opts))
    return out


def drop_dominated(
    options: dict[tuple[str, str], list[StageOption]],
) -> dict[tuple[str, str], list[StageOption]]:
    """Remove batch sizes another batch size beats on every pool of the variant.

    Batch b' beats b when, on each pool the variant can run on, b' is available with at least
    b's throughput and at most its latency (strictly better somewhere). The batch size is shared
    by a variant's pools, so dominance must hold on all of them. Removing dominated batches never
    changes the optimum's FID and shrinks the model (for rule-based latencies, L(b) = b·L(1)·0.9,
    every batch above 2 is dominated by 2).
    """
    by_variant: dict[str, dict[str, dict[int, StageOption]]] = {}
    for (v, g), opts in options.items():
        by_variant.setdefault(v, {})[g] = {o.batch: o for o in opts}
    keep: dict[str, set[int]] = {}
    for v, pools in by_variant.items():
        batches = set().union(*(set(m) for m in pools.values()))

        def beats(a: int, b: int, pools: dict[str, dict[int, StageOption]] = pools) -> bool:
            pairs = [(m.get(a), m[b]) for m in pools.values() if b in m]
            if any(oa is None or oa.thr_qps < ob.thr_qps or oa.stage_s > ob.stage_s for oa, ob in pairs):
                return False
            return any(
                oa is not None and (oa.thr_qps > ob.thr_qps or oa.stage_s < ob.stage_s) for oa, ob in pairs
            )

        keep[v] = {b for b in batches if not any(beats(a, b) for a in batches if a != b)}
    return {k: [o for o in opts if o.batch in keep[k[0]]] for k, opts in options.items()}


def prefilter(
    inp: DecisionInput, table: Sequence[CascadeRow], options: dict[tuple[str, str], list[StageOption]]
) -> list[tuple[int, CascadeRow]]:
    """(index, row) of the rows that might be feasible; the others cannot be, whatever the allocation.

    A row is dropped when a stage with traffic has no option on any pool, when a path exceeds the
    SLO even with every stage at its fastest option, or when even the highest per-GPU throughput
    needs more GPUs than the budget.
    """
    fastest = fastest_stage(options)
    best_thr: dict[str, float] = {}
    for (v, _), opts in options.items():
        best_thr[v] = max(best_thr.get(v, 0.0), *(o.thr_qps for o in opts))
    total = inp.total_gpus
    kept: list[tuple[int, CascadeRow]] = []
    for i, r in enumerate(table):
        sh, row_paths = row_shape(r)
        if not sh or any(v not in fastest for v in sh):
            continue
        if any(sum(fastest[v] for v in p) > inp.slo_s for p in row_paths):
            continue
        need = sum(max(1, math.ceil(inp.demand_qps * s / best_thr[v] - 1e-9)) for v, s in sh.items())
        if need <= total:
            kept.append((i, r))
    return kept


def solve_cascade(
    inp: DecisionInput,
    table: Sequence[CascadeRow],
    policy: str,
    *,
    batch_wait_factor: float = BATCH_WAIT_FACTOR,
    use_spare_gpus: bool = True,
    drain_backlog: bool = True,
) -> Allocation:
    """The MILP over ``table``; the explicit load-shedding plan when no row is feasible. Never raises.

    ``drain_backlog`` adds each stage's backlog to its capacity need (see
    :func:`hadis.policy.allocator_model.backlog_drain`), dropped again when no row can meet it.

    ``use_spare_gpus`` gives the GPUs the MILP leaves idle to the chosen row's stages (headroom
    for load spikes between re-allocations, see :func:`hadis.policy.allocator_result.add_spares`).
    """
    start = time.perf_counter()
    options = drop_dominated(stage_options(inp, batch_wait_factor))
    kept = prefilter(inp, table, options)
    if not kept:
        why = (
            f"No row of the {len(table)}-row table can serve {inp.demand_qps:.4g} qps within the "
            f"{inp.slo_s:g} s SLO on {inp.total_gpus} GPU(s), even at its fastest batch and best throughput"
        )
        plan = shedding_plan(inp, policy, why)
        return plan.model_copy(
            update={"solver_status": "Infeasible", "solve_time_s": time.perf_counter() - start}
        )
    try:
        milp = prepare(inp, kept, options, fastest_stage(options), batch_wait_factor, drain=drain_backlog)
        chosen, batches, replicas, status = solve_milp(milp)
        if chosen is None and any(milp.drain):
            # the backlog cannot drain in time under any row: still serve the demand, best effort
            milp = dataclasses.replace(milp, drain=[{} for _ in milp.drain])
            chosen, batches, replicas, status = solve_milp(milp)
    except (pulp.PulpError, OSError) as e:  # CBC crashed, or no writable temp dir
        plan = shedding_plan(inp, policy, f"The MILP solver failed ({e})")
        return plan.model_copy(update={"solver_status": "Error", "solve_time_s": time.perf_counter() - start})
    if chosen is None:
        why = f"The MILP found no feasible row among {len(kept)} candidate rows (CBC status {status})"
        plan = shedding_plan(inp, policy, why)
        return plan.model_copy(update={"solver_status": status, "solve_time_s": time.perf_counter() - start})
    return build_allocation(
        inp,
        policy,
        chosen,
        batches,
        replicas,
        options,
        solver_status=status,
        n_rows=(len(table), len(kept), sum(r.fid < chosen.fid for r in table)),
        batch_wait_factor=batch_wait_factor,
        use_spare_gpus=use_spare_gpus,
        started=start,
    )
