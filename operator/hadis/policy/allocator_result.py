"""From the MILP's solution to an :class:`Allocation`: spare GPUs, the plan check and the explanation."""

from __future__ import annotations

import time

from hadis.api.allocation import Allocation, DecisionInput, VariantAllocation
from hadis.api.profile import CascadeRow
from hadis.policy.cascade_plan import StageOption, check_allocation, path_latency, paths, shares
from hadis.policy.shedding import shedding_plan

Replicas = dict[tuple[str, str], int]


def add_spares(
    inp: DecisionInput,
    row: CascadeRow,
    batches: dict[str, int],
    replicas: Replicas,
    options: dict[tuple[str, str], list[StageOption]],
) -> Replicas:
    """Give the GPUs the MILP leaves idle to the row's stages, as headroom for load spikes.

    Pools are filled in input order. With a reconfiguration cost and a previous allocation, spare
    GPUs first go back to the (variant, pool) pairs that had more replicas before (no flapping);
    the rest go one at a time to the stage with the highest utilisation (demand share / capacity;
    ties: light first). A stage only gets GPUs of a pool where its batch size is profiled, fits
    memory and keeps every path of the row within the SLO.

    Incremental: the stages a pool can take change only when a stage latency grows, which happens
    at most once per stage and pool, so the candidates are re-checked only then.
    """
    out = dict(replicas)
    sh = shares(row)
    order = list(sh)
    row_paths = paths(row)
    chosen: dict[tuple[str, str], StageOption] = {}
    for (v, g), opts in options.items():
        if v in sh:
            o = next((o for o in opts if o.batch == batches[v]), None)
            if o is not None:
                chosen[(v, g)] = o
    stage: dict[str, float] = {}
    cap: dict[str, float] = dict.fromkeys(sh, 0.0)
    for (v, g), k in out.items():
        o = chosen.get((v, g))
        if o is not None:
            stage[v] = max(stage.get(v, 0.0), o.stage_s)
            cap[v] += k * o.thr_qps
    before: Replicas = {}
    if inp.previous is not None and inp.reconfiguration_cost > 0:
        before = {(a.variant, a.pool): a.replicas for a in inp.previous.variants}

    def usable(pool: str) -> dict[str, StageOption]:
        """Stages that can take one more GPU of ``pool`` with every path still within the SLO."""
        found: dict[str, StageOption] = {}
        for v in order:
            o = chosen.get((v, pool))
            if o is None:
                continue
            trial = {**stage, v: max(stage.get(v, 0.0), o.stage_s)}
            if all(sum(trial.get(u, 0.0) for u in p) <= inp.slo_s for p in row_paths):
                found[v] = o
        return found

    def add(v: str, o: StageOption, k: int) -> bool:
        """Add k GPUs of o's pool to v; True when v's stage latency grew."""
        out[(v, o.pool)] = out.get((v, o.pool), 0) + k
        cap[v] += k * o.thr_qps
        grew = o.stage_s > stage.get(v, 0.0)
        stage[v] = max(stage.get(v, 0.0), o.stage_s)
        return grew

    def utilisation(u: str) -> tuple[float, int]:
        return (sh[u] / cap[u] if cap[u] > 0 else float("inf"), -order.index(u))

    for pool in inp.pools:
        spare = pool.count - sum(k for (_, g), k in out.items() if g == pool.name)
        for v in order:  # restore the previous allocation first
            o = usable(pool.name).get(v)
            k = min(spare, max(0, before.get((v, pool.name), 0) - out.get((v, pool.name), 0)))
            if o is not None and k > 0:
                add(v, o, k)
                spare -= k
        cands = usable(pool.name) if spare > 0 else {}
        while spare > 0 and cands:
            v = max(cands, key=utilisation)
            o = cands[v]
            if add(v, o, 1):
                spare -= 1
                cands = usable(pool.name)
                continue
            spare -= 1
            # v keeps the GPUs while it stays the most utilised: the others' keys do not change
            rival = max((utilisation(u) for u in cands if u != v), default=None)
            idx, thr, given = -order.index(v), o.thr_qps, 0
            c = cap[v]
            while spare > 0:
                key = (sh[v] / c if c > 0 else float("inf"), idx)
                if rival is not None and key < rival:
                    break
                c += 1 * thr
                given += 1
                spare -= 1
            cap[v] = c
            out[(v, pool.name)] += given
    return out


def build_allocation(
    inp: DecisionInput,
    policy: str,
    row: CascadeRow,
    batches: dict[str, int],
    replicas: Replicas,
    options: dict[tuple[str, str], list[StageOption]],
    *,
    solver_status: str,
    n_rows: tuple[int, int, int],
    batch_wait_factor: float,
    use_spare_gpus: bool,
    started: float,
) -> Allocation:
    """The allocation of the MILP's row, batches and replicas (checked; shedding plan if the check fails)."""
    minimal = sum(replicas.values())
    if use_spare_gpus:
        replicas = add_spares(inp, row, batches, replicas, options)
    allocs: list[VariantAllocation] = []
    for v in shares(row):
        for pool in inp.pools:
            k = replicas.get((v, pool.name), 0)
            if k > 0:
                lat = inp.profile.variant(v).perf_on(pool.gpu_type).latency(batches[v])
                allocs.append(
                    VariantAllocation(
                        variant=v,
                        pool=pool.name,
                        replicas=k,
                        batch_size=batches[v],
                        latency_s=lat,
                        throughput_qps=k * batches[v] / lat,
                    )
                )
    alloc = Allocation(
        policy=policy,
        row=row,
        variants=allocs,
        demand_qps=inp.demand_qps,
        expected_fid=row.fid,
        solver_status=solver_status,
    )
    problems = check_allocation(inp, alloc, batch_wait_factor)
    if problems:
        why = f"The solver's plan for {row.label} failed the constraint check ({'; '.join(problems)})"
        plan = shedding_plan(inp, policy, why)
        return plan.model_copy(
            update={"solver_status": solver_status, "solve_time_s": time.perf_counter() - started}
        )
    reason = explain(inp, alloc, n_rows, minimal, batch_wait_factor)
    return alloc.model_copy(update={"reason": reason, "solve_time_s": time.perf_counter() - started})


def gpus_started(previous: Allocation | None, alloc: Allocation) -> int:
    """Replicas ``alloc`` starts that ``previous`` did not have, per (variant, pool)."""
    before = {(a.variant, a.pool): a.replicas for a in previous.variants} if previous else {}
    return sum(max(0, a.replicas - before.get((a.variant, a.pool), 0)) for a in alloc.variants)


def explain(
    inp: DecisionInput,
    alloc: Allocation,
    n_rows: tuple[int, int, int],
    minimal: int,
    batch_wait_factor: float,
) -> str:
    """One paragraph: the row, each stage's demand vs capacity, the path latency vs SLO, and why.

    ``n_rows`` is (rows in the table, rows left after the pre-filter, rows with a lower FID).
    """
    assert alloc.row is not None
    row = alloc.row
    parts = []
    stage_s: dict[str, float] = {}
    for v, share in shares(row).items():
        role = "light" if v == row.light else "heavy"
        mine = [a for a in alloc.variants if a.variant == v]
        lat = max(a.latency_s for a in mine)
        wait = inp.queueing_delay_s(v)
        stage_s[v] = batch_wait_factor * lat + wait
        parts.append(
            f"{role} {v} gets {share:.0%} of the load = {inp.demand_qps * share:.4g} qps vs capacity "
            f"{alloc.capacity_qps(v):.4g} qps on {alloc.replicas(v)} GPU(s) at batch {alloc.batch_size(v)} "
            f"(L={lat:.3g} s, queueing {wait:.3g} s)"
        )
    worst = path_latency(row, stage_s)
    used = alloc.gpus_used
    text = (
        f"Row {row.label} (FID {row.fid:g}, p={row.p:.2f}) is the best-quality row of the {n_rows[1]} "
        f"candidate rows ({n_rows[0]} in the table) that meets the SLO at {inp.demand_qps:.4g} qps: "
        f"{'; '.join(parts)}. Worst path latency {worst:.3g} s ≤ SLO {inp.slo_s:g} s "
        f"(batch-wait factor {batch_wait_factor:g}). {used} of {inp.total_gpus} GPU(s) used, "
        f"{used - minimal} of them spare headroom beyond the {minimal} the demand needs. "
    )
    if n_rows[2] == 0:
        text += "No row of the table has a lower FID"
    else:
        text += (
            f"The {n_rows[2]} row(s) with a lower FID need more GPUs than the budget or break the SLO "
            "at this load"
        )
    if inp.previous is not None and inp.reconfiguration_cost > 0:
        text += (
            f" (or is not worth the reconfiguration cost of {inp.reconfiguration_cost:g} FID per GPU moved; "
            f"this plan starts {gpus_started(inp.previous, alloc)} replica(s))"
        )
    if "time limit" in alloc.solver_status:
        text += f"; CBC stopped at the {inp.time_limit_s:g} s time limit, so this is the best row found"
    return text + "."
