"""Building and solving the HADIS MILP (see :mod:`hadis.policy.allocator` for the model).

The model is first solved over the few rows that can win: the best rows by objective (FID plus the
row tie-break) that a cheap necessary check cannot rule out. Its optimum is the full model's
whenever no row left out could beat it, which the bounds on the tie-break terms decide
(:func:`solve_milp`); otherwise the full model is solved. Both use the same coefficients, so the
answer is the full MILP's. A model of two or three rows is built in a fraction of the time and CBC,
whose run time grows with the model, solves it faster.

Expressions are built as coefficient lists (:class:`pulp.LpAffineExpression`), not with pulp's
operators, which copy an expression per ``+``: the MPS file CBC reads is the same as with the
operator form.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pulp

from hadis.api.allocation import DecisionInput
from hadis.api.profile import CascadeRow
from hadis.policy.cascade_plan import StageOption, row_shape

#: The objective is multiplied by this so the tie-break terms stay far above CBC's tolerances.
OBJECTIVE_SCALE = 1000.0
EPS_ROW, EPS_GPU, EPS_CAPACITY, EPS_LATENCY = 1e-3, 1e-4, 1e-5, 1e-6
#: A fixed branch-and-cut seed (CBC's default, -1, seeds from the clock) so the same input always
#: gives the same answer. CBC is run *without* ``-threads``: it is single-threaded by default, and
#: ``-threads 1`` switches on its threaded tree search, whose main thread sometimes misses the
#: worker's wake-up and sleeps out a 10 s timed wait (measured on the bundled CBC: ~1 solve in 250
#: took 10.01 s instead of 20 ms; "Thread 0 ... waiting to start 10.000259" in CBC's log).
CBC_OPTIONS = ["randomCbcSeed 20250901"]
#: Slack given to the necessary check (CBC accepts constraints violated by its tolerances, ~1e-7).
_CHECK_RTOL, _CHECK_ATOL = 1e-6, 1e-6

Options = dict[tuple[str, str], list[StageOption]]
Key = tuple[str, str, int]
Solution = tuple[CascadeRow | None, dict[str, int], dict[tuple[str, str], int], str]


@dataclass(frozen=True)
class Milp:
    """The data of the full MILP over the kept rows; restricted models share its coefficients."""

    inp: DecisionInput
    rows: list[CascadeRow]
    shares: list[Mapping[str, float]]
    paths: list[tuple[tuple[str, ...], ...]]
    term: list[float]  # FID + the row tie-break: each row's objective coefficient (unscaled)
    fastest: dict[str, float]  # smallest stage latency of each variant over all its options
    options: Options  # the options any kept row leaves room for
    variants: list[str]
    counts: dict[str, int]
    total: int
    wait: dict[str, float]
    lmax: dict[str, float]
    best: dict[str, float]
    factor: float
    drain: list[dict[str, float]]  # per row: extra throughput (qps) each variant needs for the backlog


#: A variant's waiting requests must drain within this fraction of the SLO (see :func:`backlog_drain`).
DRAIN_SLO_FRACTION = 1.0


def backlog_drain(inp: DecisionInput, row: CascadeRow, shares: Mapping[str, float]) -> dict[str, float]:
    """The throughput (qps) each stage of ``row`` needs, beyond its share of the demand, to serve
    the requests already waiting in time: every waiting request within ``DRAIN_SLO_FRACTION`` × SLO.

    Waiting requests stay with their variant if the row uses it; a variant the row drops hands its
    waiting requests to the row's stage of the same role (the gateway re-routes them: light stage →
    light, heavy stage → heavy; the other stage if that one has no share). Without this the
    allocator could cut a variant's GPUs while a backlog sat there (Little's law on the *observed*
    arrival rate says little once the rate changes): in the E1 emulation sd35-medium went from 15
    to 9 GPUs with ~30 requests waiting, and they were served late.
    """
    queues = {v: q for v, q in inp.queue_lengths.items() if q > 0}
    if not queues or not shares:
        return {}
    prev = inp.previous.row if inp.previous is not None else None
    light = row.light if row.light in shares else row.heavy
    heavy = row.heavy if row.heavy in shares else row.light
    out: dict[str, float] = {}
    for v, q in queues.items():
        if v in shares:
            target: str | None = v
        elif prev is not None and v == prev.heavy:
            target = heavy
        elif prev is not None and v == prev.light:
            target = light
        else:
            target = None  # a split's variant: the gateway re-routes it within the new split
        if target is not None:
            out[target] = out.get(target, 0.0) + q / (DRAIN_SLO_FRACTION * inp.slo_s)
    return out


def stage_limits(
    slo_s: float, row_paths: Iterable[tuple[tuple[str, ...], ...]], fastest: dict[str, float]
) -> dict[str, float]:
    """Per variant, the largest stage latency any of the rows' paths leave room for."""
    limit: dict[str, float] = {}
    for ps in row_paths:
        for v in {u for p in ps for u in p}:
            room = min(slo_s - sum(fastest[u] for u in p if u != v) for p in ps if v in p)
            limit[v] = max(limit.get(v, -math.inf), room)
    return limit


def _within(options: Options, limit: dict[str, float]) -> Options:
    out = {
        k: [o for o in os if o.stage_s <= limit[k[0]] + 1e-12] for k, os in options.items() if k[0] in limit
    }
    return {k: os for k, os in out.items() if os}


def prepare(
    inp: DecisionInput,
    kept: list[tuple[int, CascadeRow]],
    all_options: Options,
    fastest: dict[str, float],
    factor: float,
    *,
    drain: bool = True,
) -> Milp:
    rows = [r for _, r in kept]
    shape = [row_shape(r) for r in rows]
    sh = [s for s, _ in shape]
    ps = [p for _, p in shape]
    options = _within(all_options, stage_limits(inp.slo_s, ps, fastest))
    present = {v for v, _ in options}
    variants = [v for v in inp.allowed_variants if v in present]
    wait = {v: inp.queueing_delay_s(v) for v in variants}
    lmax = {v: -math.inf for v in variants}
    best = {v: -math.inf for v in variants}
    for (v, _), os in options.items():
        for o in os:
            lmax[v] = max(lmax[v], o.stage_s - wait[v])
            best[v] = max(best[v], o.thr_qps)
    order = sorted(range(len(rows)), key=lambda i: (rows[i].cost_s or 0.0, kept[i][0]))
    rank = {i: k for k, i in enumerate(order)}
    term = [r.fid + EPS_ROW * rank[i] / len(rows) for i, r in enumerate(rows)]
    counts = {p.name: p.count for p in inp.pools}
    backlog = [backlog_drain(inp, rows[i], sh[i]) if drain else {} for i in range(len(rows))]
    return Milp(
        inp,
        rows,
        sh,
        ps,
        term,
        fastest,
        options,
        variants,
        counts,
        max(1, inp.total_gpus),
        wait,
        lmax,
        best,
        factor,
        backlog,
    )


def may_be_feasible(m: Milp, i: int) -> bool:
    """False only if row i is infeasible whatever the allocation (exact on one pool).

    For each choice of one batch size per stage: every path within the SLO at the fastest pool's
    stage latency, and the GPUs each stage needs at the best pool's throughput within the budget.
    """
    per_stage: list[list[tuple[int, float, float]]] = []
    for v in m.shares[i]:
        by_batch: dict[int, tuple[float, float]] = {}
        for (u, _), os in m.options.items():
            if u == v:
                for o in os:
                    lat, thr = by_batch.get(o.batch, (math.inf, 0.0))
                    by_batch[o.batch] = (min(lat, o.stage_s), max(thr, o.thr_qps))
        if not by_batch:
            return False
        per_stage.append([(b, lat, thr) for b, (lat, thr) in by_batch.items()])
    names = list(m.shares[i])
    demand = m.inp.demand_qps
    for combo in itertools.product(*per_stage):
        stage = {v: c[1] for v, c in zip(names, combo, strict=True)}
        if any(sum(stage[v] for v in p) > m.inp.slo_s + _CHECK_ATOL for p in m.paths[i]):
            continue
        gpus = 0
        for v, (_, _, thr) in zip(names, combo, strict=True):
            need = demand * m.shares[i][v] / thr * (1 - _CHECK_RTOL) - _CHECK_ATOL
            gpus += max(1, math.ceil(need))
        if gpus <= m.total:
            return True
    return False


def solve_milp(m: Milp) -> Solution:
    """The full MILP's solution, from a restricted model when that provably gives the same optimum."""
    inp = m.inp
    if inp.previous is not None and inp.reconfiguration_cost > 0:
        return _solve(m, list(range(len(m.rows))))[0]  # reconfiguration terms are not bounded here
    by_term = sorted(range(len(m.rows)), key=lambda i: (m.term[i], i))
    checked: dict[int, bool] = {}

    def possible(i: int) -> bool:
        if i not in checked:
            checked[i] = may_be_feasible(m, i)
        return checked[i]

    first = next((i for i in by_term if possible(i)), None)
    if first is None:
        return _solve(m, list(range(len(m.rows))))[0]
    # a feasible first candidate scores at most term + EPS_GPU + EPS_LATENCY; any other row at
    # least term - EPS_CAPACITY (see the objective), so rows beyond this reach cannot win
    reach = m.term[first] + EPS_GPU + EPS_LATENCY + EPS_CAPACITY + 1e-9
    subset = sorted(i for i in by_term if m.term[i] <= reach and possible(i))
    if len(subset) < len(m.rows):
        sol, value = _solve(m, subset)
        if sol[0] is not None and sol[3] == "Optimal":
            inside = set(subset)
            rivals = (i for i in by_term if i not in inside and m.term[i] - EPS_CAPACITY <= value + 1e-9)
            if not any(possible(i) for i in rivals):
                return sol
    return _solve(m, list(range(len(m.rows))))[0]


def _variable(
    prob: pulp.LpProblem, name: str, low: float | None, up: float | None, cat: str
) -> pulp.LpVariable:
    """A variable of ``prob`` (pulp ≥ 3.3 attaches it to the model; older pulp builds it standalone)."""
    add = getattr(prob, "add_variable", None)
    if add is not None:
        return add(name, low, up, cat=cat)
    return pulp.LpVariable(name, low, up, cat=cat)


def _add(prob: pulp.LpProblem, terms: list[tuple[pulp.LpVariable, float]], sense: int, rhs: float) -> None:
    prob.addConstraint(pulp.LpConstraint(pulp.LpAffineExpression(terms), sense, rhs=rhs))


def _solve(m: Milp, subset: list[int]) -> tuple[Solution, float]:
    """Solve the MILP over the rows ``subset`` (indices into ``m.rows``); also the unscaled optimum."""
    inp, LE, GE = m.inp, pulp.LpConstraintLE, pulp.LpConstraintGE
    if len(subset) == len(m.rows):
        options = m.options
    else:
        options = _within(m.options, stage_limits(inp.slo_s, (m.paths[i] for i in subset), m.fastest))
    present = {v for v, _ in options}
    variants = [v for v in m.variants if v in present]
    vi = {v: i for i, v in enumerate(m.variants)}
    gi = {p.name: i for i, p in enumerate(inp.pools)}
    counts, total, wait, lmax, factor = m.counts, m.total, m.wait, m.lmax, m.factor

    prob = pulp.LpProblem("hadis", pulp.LpMinimize)
    x = {i: _variable(prob, f"x{i}", 0, 1, "Binary") for i in subset}
    batch_set: dict[str, list[int]] = {v: [] for v in variants}
    for (v, _), os in options.items():
        batch_set[v].extend(o.batch for o in os)
    batch_set = {v: sorted(set(bs)) for v, bs in batch_set.items()}
    y = {(v, b): _variable(prob, f"y{vi[v]}_{b}", 0, 1, "Binary") for v in variants for b in batch_set[v]}
    z: dict[Key, pulp.LpVariable] = {}
    n: dict[Key, pulp.LpVariable] = {}
    thr: dict[Key, float] = {}
    for (v, g), os in options.items():
        for o in os:
            key = (v, g, o.batch)
            z[key] = _variable(prob, f"z{vi[v]}_{gi[g]}_{o.batch}", 0, 1, "Binary")
            n[key] = _variable(prob, f"n{vi[v]}_{gi[g]}_{o.batch}", 0, counts[g], "Integer")
            thr[key] = o.thr_qps
    lat = {v: _variable(prob, f"L{vi[v]}", 0, lmax[v], "Continuous") for v in variants}

    _add(prob, [(x[i], 1) for i in subset], pulp.LpConstraintEQ, 1)
    for v in variants:
        _add(prob, [(y[(v, b)], 1) for b in batch_set[v]], LE, 1)
    for (v, g), os in options.items():
        for o in os:
            key = (v, g, o.batch)
            _add(prob, [(z[key], 1), (y[(v, o.batch)], -1)], LE, 0)
            _add(prob, [(n[key], 1), (z[key], -counts[g])], LE, 0)
            _add(prob, [(z[key], 1), (n[key], -1)], LE, 0)
            _add(prob, [(lat[v], 1), (z[key], -(factor * o.latency_s))], GE, 0)
    for g in counts:
        _add(prob, [(var, 1) for k, var in n.items() if k[1] == g], LE, counts[g])
    for v in variants:
        mine = [(k, var) for k, var in n.items() if k[0] == v]
        share_v = [(x[i], m.shares[i].get(v, 0.0)) for i in subset]
        used = [xi for xi, s in share_v if s > 0]
        need = [
            (x[i], -(m.shares[i].get(v, 0.0) * inp.demand_qps + m.drain[i].get(v, 0.0)))
            for i in subset
            if m.shares[i].get(v, 0.0) * inp.demand_qps + m.drain[i].get(v, 0.0) != 0
        ]
        _add(prob, [(var, thr[k] * 1) for k, var in mine] + need, GE, 0)
        _add(prob, [(var, 1) for _, var in mine] + [(xi, -1) for xi in used], GE, 0)
        _add(prob, [(var, 1) for _, var in mine] + [(xi, -total) for xi in used], LE, 0)
    for i in subset:
        for p in m.paths[i]:
            big_m = sum(lmax[v] + wait[v] for v in p) - inp.slo_s
            if big_m > 0:
                const = 0.0
                for v in p:
                    const += wait[v]
                terms = [(lat[v], 1.0) for v in p] + [(x[i], big_m)]
                _add(prob, terms, LE, -(const - (big_m + inp.slo_s)))

    obj: dict[pulp.LpVariable, float] = {x[i]: m.term[i] * 1 for i in subset}
    gpu_c, cap_c = EPS_GPU / total, EPS_CAPACITY / total
    for k, var in n.items():
        obj[var] = gpu_c * 1 + cap_c * (thr[k] * 1 / m.best[k[0]]) * -1
    lat_c = EPS_LATENCY / (len(m.variants) * inp.slo_s)
    for v in variants:
        obj[lat[v]] = lat_c * 1
    if inp.previous is not None and inp.reconfiguration_cost > 0:
        before = {(a.variant, a.pool): a.replicas for a in inp.previous.variants}
        for v, g in options:
            mv = _variable(prob, f"m{vi[v]}_{gi[g]}", 0, None, "Continuous")
            terms = [(mv, 1)] + [(var, -1) for k, var in n.items() if k[:2] == (v, g)]
            _add(prob, terms, GE, -before.get((v, g), 0))
            obj[mv] = inp.reconfiguration_cost * 1
    prob.setObjective(pulp.LpAffineExpression({var: OBJECTIVE_SCALE * c for var, c in obj.items()}))

    solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=inp.time_limit_s, options=CBC_OPTIONS)
    prob.solve(solver)
    status = pulp.LpStatus[prob.status]
    if prob.status != pulp.LpStatusOptimal or prob.sol_status not in (
        pulp.LpSolutionOptimal,
        pulp.LpSolutionIntegerFeasible,
    ):
        return (None, {}, {}, status), math.inf
    if prob.sol_status == pulp.LpSolutionIntegerFeasible:
        status = "Feasible (time limit)"
    pick = max(subset, key=lambda i: (x[i].value() or 0.0, -i))
    chosen = m.rows[pick]
    replicas: dict[tuple[str, str], int] = {}
    batches: dict[str, int] = {}
    for (v, g, b), var in n.items():
        gpus = round(var.value() or 0.0)
        if gpus > 0 and v in m.shares[pick]:
            replicas[(v, g)] = replicas.get((v, g), 0) + gpus
            batches[v] = b
    value = sum(OBJECTIVE_SCALE * c * (var.value() or 0.0) for var, c in obj.items()) / OBJECTIVE_SCALE
    return (chosen, batches, replicas, status), value
