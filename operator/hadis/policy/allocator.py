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
CBC runs single-threaded with a fixed seed and a time limit (see :data:`CBC_OPTIONS`), so the same
input gives the same allocation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import pulp

from hadis.api.allocation import Allocation, DecisionInput
from hadis.api.profile import CascadeRow
from hadis.policy.allocator_result import build_allocation
from hadis.policy.cascade_plan import StageOption, paths, shares, stage_options
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
#: The objective is multiplied by this so the tie-break terms stay far above CBC's tolerances.
OBJECTIVE_SCALE = 1000.0
EPS_ROW, EPS_GPU, EPS_CAPACITY, EPS_LATENCY = 1e-3, 1e-4, 1e-5, 1e-6
#: A fixed branch-and-cut seed (CBC's default, -1, seeds from the clock) so the same input always
#: gives the same answer. CBC is run *without* ``-threads``: it is single-threaded by default, and
#: ``-threads 1`` switches on its threaded tree search, whose main thread sometimes misses the
#: worker's wake-up and sleeps out a 10 s timed wait (measured on the bundled CBC: ~1 solve in 250
#: took 10.01 s instead of 20 ms; "Thread 0 ... waiting to start 10.000259" in CBC's log).
CBC_OPTIONS = ["randomCbcSeed 20250901"]


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
        sh = shares(r)
        if not sh or any(v not in fastest for v in sh):
            continue
        if any(sum(fastest[v] for v in p) > inp.slo_s for p in paths(r)):
            continue
        need = sum(max(1, math.ceil(inp.demand_qps * s / best_thr[v] - 1e-9)) for v, s in sh.items())
        if need <= total:
            kept.append((i, r))
    return kept


def _stage_limits(
    inp: DecisionInput, rows: Sequence[CascadeRow], fastest: dict[str, float]
) -> dict[str, float]:
    """Per variant, the largest stage latency any kept row's paths leave room for."""
    limit: dict[str, float] = {}
    for r in rows:
        for v in shares(r):
            room = min(inp.slo_s - sum(fastest[u] for u in p if u != v) for p in paths(r) if v in p)
            limit[v] = max(limit.get(v, -math.inf), room)
    return limit


def solve_cascade(
    inp: DecisionInput,
    table: Sequence[CascadeRow],
    policy: str,
    *,
    batch_wait_factor: float = BATCH_WAIT_FACTOR,
    use_spare_gpus: bool = True,
) -> Allocation:
    """The MILP over ``table``; the explicit load-shedding plan when no row is feasible. Never raises.

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
        chosen, batches, replicas, status = _solve(inp, kept, options, batch_wait_factor)
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


def _variable(
    prob: pulp.LpProblem, name: str, low: float | None, up: float | None, cat: str
) -> pulp.LpVariable:
    """A variable of ``prob`` (pulp ≥ 3.3 attaches it to the model; older pulp builds it standalone)."""
    add = getattr(prob, "add_variable", None)
    if add is not None:
        return add(name, low, up, cat=cat)
    return pulp.LpVariable(name, low, up, cat=cat)


def _solve(
    inp: DecisionInput,
    kept: list[tuple[int, CascadeRow]],
    all_options: dict[tuple[str, str], list[StageOption]],
    factor: float,
) -> tuple[CascadeRow | None, dict[str, int], dict[tuple[str, str], int], str]:
    """Build and solve the MILP; the chosen row, batch per variant, GPUs per (variant, pool), status."""
    rows = [r for _, r in kept]
    limit = _stage_limits(inp, rows, fastest_stage(all_options))
    options = {
        k: [o for o in os if o.stage_s <= limit[k[0]] + 1e-12]
        for k, os in all_options.items()
        if k[0] in limit
    }
    options = {k: os for k, os in options.items() if os}
    variants = sorted({v for v, _ in options}, key=inp.allowed_variants.index)
    counts = {p.name: p.count for p in inp.pools}
    total = max(1, inp.total_gpus)
    wait = {v: inp.queueing_delay_s(v) for v in variants}

    prob = pulp.LpProblem("hadis", pulp.LpMinimize)
    x = [_variable(prob, f"x{i}", 0, 1, "Binary") for i in range(len(rows))]
    vi = {v: i for i, v in enumerate(variants)}
    gi = {p.name: i for i, p in enumerate(inp.pools)}
    batch_set = {
        v: sorted({o.batch for (u, _), os in options.items() if u == v for o in os}) for v in variants
    }
    y = {(v, b): _variable(prob, f"y{vi[v]}_{b}", 0, 1, "Binary") for v in variants for b in batch_set[v]}
    z, n = {}, {}
    for (v, g), os in options.items():
        for o in os:
            z[(v, g, o.batch)] = _variable(prob, f"z{vi[v]}_{gi[g]}_{o.batch}", 0, 1, "Binary")
            n[(v, g, o.batch)] = _variable(prob, f"n{vi[v]}_{gi[g]}_{o.batch}", 0, counts[g], "Integer")
    lmax = {
        v: max(o.stage_s - wait[v] for (u, _), os in options.items() if u == v for o in os) for v in variants
    }
    lat = {v: _variable(prob, f"L{vi[v]}", 0, lmax[v], "Continuous") for v in variants}

    prob += pulp.lpSum(x) == 1
    for v in variants:
        prob += pulp.lpSum(y[(v, b)] for b in batch_set[v]) <= 1
    for (v, g), os in options.items():
        for o in os:
            key = (v, g, o.batch)
            prob += z[key] <= y[(v, o.batch)]
            prob += n[key] <= counts[g] * z[key]
            prob += z[key] <= n[key]
            prob += lat[v] >= factor * o.latency_s * z[key]
    for g in counts:
        prob += pulp.lpSum(n[k] for k in n if k[1] == g) <= counts[g]
    thr = {(v, g, o.batch): o.thr_qps for (v, g), os in options.items() for o in os}
    for v in variants:
        gpus_v = pulp.lpSum(n[k] for k in n if k[0] == v)
        share_v = [(x[i], shares(r).get(v, 0.0)) for i, r in enumerate(rows)]
        prob += pulp.lpSum(n[k] * thr[k] for k in n if k[0] == v) >= inp.demand_qps * pulp.lpSum(
            xi * s for xi, s in share_v
        )
        prob += gpus_v >= pulp.lpSum(xi for xi, s in share_v if s > 0)
        prob += gpus_v <= total * pulp.lpSum(xi for xi, s in share_v if s > 0)
    for i, r in enumerate(rows):
        for p in paths(r):
            big_m = sum(lmax[v] + wait[v] for v in p) - inp.slo_s
            if big_m > 0:
                prob += pulp.lpSum(lat[v] + wait[v] for v in p) <= inp.slo_s + big_m * (1 - x[i])

    order = sorted(range(len(rows)), key=lambda i: (rows[i].cost_s or 0.0, kept[i][0]))
    rank = {i: k for k, i in enumerate(order)}
    objective = pulp.lpSum((r.fid + EPS_ROW * rank[i] / len(rows)) * x[i] for i, r in enumerate(rows))
    objective += EPS_GPU / total * pulp.lpSum(n.values())
    best = {v: max(thr[k] for k in thr if k[0] == v) for v in variants}
    objective -= EPS_CAPACITY / total * pulp.lpSum(n[k] * thr[k] / best[k[0]] for k in n)
    objective += EPS_LATENCY / (len(variants) * inp.slo_s) * pulp.lpSum(lat.values())
    if inp.previous is not None and inp.reconfiguration_cost > 0:
        before = {(a.variant, a.pool): a.replicas for a in inp.previous.variants}
        moved = []
        for v, g in options:
            m = _variable(prob, f"m{vi[v]}_{gi[g]}", 0, None, "Continuous")
            prob += m >= pulp.lpSum(n[k] for k in n if k[:2] == (v, g)) - before.get((v, g), 0)
            moved.append(m)
        objective += inp.reconfiguration_cost * pulp.lpSum(moved)
    prob += OBJECTIVE_SCALE * objective

    solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=inp.time_limit_s, options=CBC_OPTIONS)
    prob.solve(solver)
    status = pulp.LpStatus[prob.status]
    if prob.status != pulp.LpStatusOptimal or prob.sol_status not in (
        pulp.LpSolutionOptimal,
        pulp.LpSolutionIntegerFeasible,
    ):
        return None, {}, {}, status
    if prob.sol_status == pulp.LpSolutionIntegerFeasible:
        status = "Feasible (time limit)"
    pick = max(range(len(rows)), key=lambda i: (x[i].value() or 0.0, -i))
    chosen = rows[pick]
    replicas: dict[tuple[str, str], int] = {}
    batches: dict[str, int] = {}
    for (v, g, b), var in n.items():
        k = round(var.value() or 0.0)
        if k > 0 and v in shares(chosen):
            replicas[(v, g)] = replicas.get((v, g), 0) + k
            batches[v] = b
    return chosen, batches, replicas, status
