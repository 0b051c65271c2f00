"""INFaaS (accuracy-first) baseline: one variant on every GPU, stepped one quality level at a time.

The reference is the HADIS artifact's ``solve_infaas_accuracy`` (quality bias 0.5). Every decision:

1. The *ladder* is the allowed variants, lightest to heaviest by batch-1 latency on the reference
   GPU, that can meet the SLO with some batch on at least one pool.
2. The *current* variant is the one ``inp.previous`` routed every query to (share 1). With no such
   previous decision, INFaaS starts from the heaviest variant whose all-GPU in-time throughput
   covers the demand, or the lightest variant when none does. A previous variant that is no longer
   on the ladder (not allowed, or it cannot meet the SLO) is replaced by the heaviest ladder
   variant not heavier than it (a forced step down), else by the start variant.
3. Expected latency ``E = L(b) + 0.225 · queue / throughput`` for the current variant, with L(b) the
   latency of its chosen batch (the slowest pool's), ``queue`` the total observed queue (the sum of
   ``inp.queue_lengths``: all queued queries wait for the one variant) and ``throughput`` its
   in-time throughput on all GPUs.
4. queue > 60 → jump to the lightest; E > SLO → step down one level; E < 0.89 · SLO → step up one
   level, **unless** the heavier variant's all-GPU throughput is below the demand (an addition to
   the artifact, which would step up into certain overload); otherwise hold.

The chosen variant then gets every GPU that can run it, at its largest batch within the SLO.
"""

from __future__ import annotations

from hadis.api.allocation import Allocation, DecisionInput
from hadis.api.profile import Variant
from hadis.policy.common import (
    SHARE_EPS,
    all_gpus_on,
    allowed_by_weight,
    fmt,
    perf_in_pool,
    single_variant_plan,
    slo_batch,
    slo_capacity,
    weight_key,
)

#: Weight of the queueing term in the expected latency (artifact: 0.40 − 0.35 · 0.5).
QUEUE_WEIGHT = 0.225
#: Step down when the expected latency exceeds this × SLO.
STEP_DOWN = 1.0
#: Step up when the expected latency is below this × SLO.
STEP_UP = 0.89
#: Jump straight to the lightest variant when the total queue exceeds this many queries.
CRITICAL_QUEUE = 60.0


def _ladder(inp: DecisionInput) -> list[Variant]:
    """Allowed variants, lightest first, that meet the SLO with some batch on some pool."""
    return [
        v
        for v in allowed_by_weight(inp)
        if any((perf := perf_in_pool(v, p)) is not None and slo_batch(perf, inp.slo_s) for p in inp.pools)
    ]


def _throughput(inp: DecisionInput, v: Variant) -> float:
    """In-time throughput (qps) of ``v`` on every GPU that can run it."""
    return slo_capacity(all_gpus_on(inp, v), inp.slo_s)


def _previous_variant(inp: DecisionInput) -> str | None:
    """The variant the previous decision sent every query to, if it was a single-variant decision."""
    prev = inp.previous
    if prev is None or prev.row is not None:
        return None
    full = [name for name, share in prev.split.items() if share >= 1.0 - SHARE_EPS]
    return full[0] if len(full) == 1 else None


def _start(inp: DecisionInput, ladder: list[Variant]) -> tuple[int, str]:
    """Index of the heaviest ladder variant that covers the demand (else the lightest), and why."""
    for i in range(len(ladder) - 1, -1, -1):
        if _throughput(inp, ladder[i]) >= inp.demand_qps:
            return i, f"start at the heaviest variant covering the demand, {ladder[i].name}"
    return 0, f"start at the lightest variant {ladder[0].name} (no variant covers the demand)"


def _current(inp: DecisionInput, ladder: list[Variant]) -> tuple[int, str]:
    """Index of the current variant on the ladder, and how it was found."""
    prev = _previous_variant(inp)
    if prev is None:
        return _start(inp, ladder)
    names = [v.name for v in ladder]
    if prev not in inp.profile.variant_names:
        i, why = _start(inp, ladder)
        return i, f"previous {prev} is not in the profile; {why}"
    if prev in names:
        return names.index(prev), f"current {prev}"
    key = weight_key(inp.profile, inp.profile.variant(prev))
    lighter = [i for i, v in enumerate(ladder) if weight_key(inp.profile, v) <= key]
    if lighter:
        return lighter[-1], f"previous {prev} cannot serve now: forced down to {ladder[lighter[-1]].name}"
    i, why = _start(inp, ladder)
    return i, f"previous {prev} cannot serve now; {why}"


def _step(inp: DecisionInput, ladder: list[Variant], cur: int) -> tuple[int, str]:
    """Apply the INFaaS switching rule to the current ladder index."""
    v = ladder[cur]
    allocs = [a for a in all_gpus_on(inp, v) if a.latency_s <= inp.slo_s]
    thr = slo_capacity(allocs, inp.slo_s)
    lat = max(a.latency_s for a in allocs)
    queue = sum(max(0.0, q) for q in inp.queue_lengths.values())
    expected = lat + QUEUE_WEIGHT * queue / thr
    state = f"E = {fmt(lat)} + {QUEUE_WEIGHT}·{fmt(queue)}/{fmt(thr)} = {fmt(expected)} s"
    if queue > CRITICAL_QUEUE:
        return 0, f"queue {fmt(queue)} > {CRITICAL_QUEUE:g}: jump to the lightest {ladder[0].name}"
    if expected > STEP_DOWN * inp.slo_s:
        if cur == 0:
            return cur, f"{state} > SLO but {v.name} is already the lightest: hold"
        return cur - 1, f"{state} > SLO: step down to {ladder[cur - 1].name}"
    if expected < STEP_UP * inp.slo_s:
        if cur == len(ladder) - 1:
            return cur, f"{state} < {STEP_UP}·SLO, {v.name} is already the heaviest: hold"
        up = ladder[cur + 1]
        up_thr = _throughput(inp, up)
        if up_thr < inp.demand_qps:
            return cur, (
                f"{state} < {STEP_UP}·SLO but {up.name} would only serve {fmt(up_thr)} qps "
                f"of {fmt(inp.demand_qps)}: hold"
            )
        return cur + 1, f"{state} < {STEP_UP}·SLO: step up to {up.name}"
    return cur, f"{state} within [{STEP_UP}, {STEP_DOWN}]·SLO: hold"


def decide_infaas(inp: DecisionInput) -> Allocation:
    """One variant on every GPU, chosen by the INFaaS step rule (see the module docstring)."""
    ladder = _ladder(inp)
    if not ladder:
        v = allowed_by_weight(inp)[0]
        why = "infaas: no allowed variant meets the SLO on any pool; serving with the lightest"
        return single_variant_plan(inp, "infaas", v, f"{why} {v.name}")
    cur, found = _current(inp, ladder)
    nxt, rule = _step(inp, ladder, cur)
    return single_variant_plan(inp, "infaas", ladder[nxt], f"infaas: {found}; {rule}")
