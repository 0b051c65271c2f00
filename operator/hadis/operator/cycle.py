"""One control cycle's decisions, without I/O: what the operator remembers per HadisService, when a
cycle is due, the demand estimate, and the status, conditions and Events a cycle's results give.

The kopf module (:mod:`hadis.operator`) does the I/O (read the spec and profile, query Prometheus,
solve, apply the objects) and hands the results to :func:`conclude`, which returns the next memory,
the status to write (``None`` when the object already has it: a restart writes nothing) and the
Events to post.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from hadis.api.allocation import Allocation
from hadis.api.base import describe_validation_error
from hadis.api.service import Condition, HadisServiceSpec, HadisServiceStatus
from hadis.policy.demand import DemandEstimate

EventType = Literal["Normal", "Warning"]

#: reasons of a cycle that deployed nothing new: the spec or its profile cannot be served
SPEC_REASONS = ("InvalidSpec", "UnusableSpec", "ProfileUnavailable")


class FieldProblem(Protocol):
    """A problem with one field of the spec (``hadis.reconcile.usability.Problem`` is one)."""

    @property
    def field(self) -> str: ...

    @property
    def message(self) -> str: ...


@dataclass(frozen=True)
class SpecProblem:
    field: str
    message: str


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Memory:
    """What the operator keeps between cycles of one HadisService (rebuilt from status on restart)."""

    demand: DemandEstimate | None = None
    allocation: Allocation | None = None  # the last allocation applied to the cluster
    allocated_at: str | None = None  # when it last changed (status.lastAllocationTime)
    last_good: float | None = None  # monotonic time of the last successful observation
    last_cycle: float | None = None  # monotonic time of the last cycle
    generation: int | None = None  # the spec generation of the last cycle
    deployed: bool = False  # the objects of ``allocation`` were applied


@dataclass(frozen=True)
class Outcome:
    memory: Memory
    status: dict[str, Any] | None  # the status to write; None: the object already has it
    events: list[Event] = field(default_factory=list)
    allocation_changed: bool = False


# --- parsing --------------------------------------------------------------------------------------


def parse_spec(spec: Mapping[str, Any]) -> HadisServiceSpec | list[SpecProblem]:
    """The spec as the model, or the problems naming each invalid field (schema-valid specs the
    models refuse, e.g. a fixedPair naming a variant the spec does not list)."""
    try:
        return HadisServiceSpec.model_validate(dict(spec))
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            problems.append(SpecProblem(f"spec.{loc}" if loc else "spec", msg))
        return problems or [SpecProblem("spec", describe_validation_error(e, "spec"))]


def seed_memory(status: Mapping[str, Any] | None, spec: HadisServiceSpec) -> Memory:
    """Memory after an operator restart: the last allocation and demand from the object's status, so
    that the first cycle re-decides from where the previous process left (and writes nothing when
    nothing changed)."""
    if not status:
        return Memory()
    try:
        st = HadisServiceStatus.model_validate(dict(status))
    except ValidationError:
        return Memory()
    demand = None
    if st.demand_qps is not None:
        op = spec.allocation.over_provisioning
        demand = DemandEstimate(spec.allocation.ewma_alpha, op, st.demand_qps / op)
    ready = next((c for c in st.conditions if c.type == "Ready"), None)
    return Memory(
        demand=demand,
        allocation=st.allocation,
        allocated_at=st.last_allocation_time,
        deployed=st.allocation is not None and ready is not None and ready.status == "True",
    )


# --- scheduling and demand ------------------------------------------------------------------------


def is_due(memory: Memory, generation: int, now: float, interval_s: float) -> bool:
    """A cycle is due on the first tick, when the spec changed, and every ``interval_s`` seconds."""
    return (
        memory.last_cycle is None or memory.generation != generation or now - memory.last_cycle >= interval_s
    )


def next_demand(memory: Memory, spec: HadisServiceSpec, observed_qps: float | None) -> DemandEstimate:
    """The EWMA after this cycle's observation (``None``: none, keep the estimate). Before the first
    observation the estimate is 0 QPS, so a new service still deploys (at the policy's minimum)."""
    settings = spec.allocation
    est = memory.demand
    if est is None or (est.alpha, est.over_provisioning) != (settings.ewma_alpha, settings.over_provisioning):
        est = DemandEstimate(
            settings.ewma_alpha, settings.over_provisioning, est.smoothed_qps if est else None
        )
    if observed_qps is None:
        return est
    return est.observe(max(0.0, observed_qps))


# --- allocations ----------------------------------------------------------------------------------


def allocation_key(alloc: Allocation | None) -> tuple[Any, ...] | None:
    """What the cluster sees of an allocation: routing, replicas and batch sizes (not solve time or
    the demand it was solved for)."""
    if alloc is None:
        return None
    return (
        alloc.policy,
        None if alloc.row is None else alloc.row.key,
        tuple(sorted(alloc.split.items())),
        tuple(sorted((v.variant, v.pool, v.replicas, v.batch_size) for v in alloc.variants if v.replicas)),
        alloc.feasible,
        alloc.shed,
    )


def same_allocation(a: Allocation | None, b: Allocation | None) -> bool:
    return allocation_key(a) == allocation_key(b)


def describe_allocation(alloc: Allocation) -> str:
    if alloc.row is not None:
        r = alloc.row
        route = f"{r.light} -> {r.heavy} theta={r.theta:g} tau={r.tau:g}"
    else:
        route = "split " + ", ".join(f"{v} {p:.2f}" for v, p in sorted(alloc.split.items()))
    workers = ", ".join(
        f"{v.variant}@{v.pool} x{v.replicas} (batch {v.batch_size})" for v in alloc.variants if v.replicas
    )
    text = f"{alloc.policy}: {route}; {alloc.gpus_used} GPU(s): {workers or 'none'}; "
    text += f"demand {alloc.demand_qps:.2f} QPS, expected FID {alloc.expected_fid:.2f}"
    if alloc.shed:
        text += f"; shedding {alloc.shed_qps:.2f} QPS"
    return text


# --- status ---------------------------------------------------------------------------------------


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    old: Sequence[Condition], new: Sequence[Condition], now: str, generation: int
) -> list[Condition]:
    """``new`` with lastTransitionTime kept from ``old`` unless the condition's status flipped."""
    before = {c.type: c for c in old}
    merged = []
    for c in new:
        prev = before.get(c.type)
        since = prev.last_transition_time if prev is not None and prev.status == c.status else None
        merged.append(
            c.model_copy(update={"last_transition_time": since or now, "observed_generation": generation})
        )
    return merged


def _cond(type_: Literal["Ready", "Allocated", "Degraded"], ok: bool, reason: str, message: str) -> Condition:
    return Condition(type=type_, status="True" if ok else "False", reason=reason, message=message[:1000])


def problems_message(problems: Sequence[FieldProblem]) -> str:
    return "; ".join(f"{p.field}: {p.message}" for p in problems)


def conclude(
    memory: Memory,
    current_status: Mapping[str, Any] | None,
    *,
    generation: int,
    now: datetime,
    now_mono: float,
    problems: Sequence[FieldProblem] = (),
    problem_reason: str = "UnusableSpec",
    demand: DemandEstimate | None = None,
    allocation: Allocation | None = None,
    applied: bool = False,
    metrics_error: str | None = None,
    error_reason: str | None = None,
    error: str | None = None,
) -> Outcome:
    """The memory, status and Events after one cycle.

    ``problems``: the spec cannot be served (nothing was applied; the last allocation, if any, keeps
    running). Otherwise ``allocation`` is this cycle's decision and ``applied`` whether its objects
    were written; ``metrics_error`` says why no load was observed (the decision then used the last
    estimate); ``error_reason``/``error`` a failure of the decision or of the apply.
    """
    now_s = iso(now)
    events: list[Event] = []
    old = _current(current_status)
    prev_degraded = next((c for c in old.conditions if c.type == "Degraded"), None)
    mem = replace(memory, last_cycle=now_mono, generation=generation)
    if demand is not None:
        mem = replace(mem, demand=demand)
    if metrics_error is None and demand is not None and not problems:
        mem = replace(mem, last_good=now_mono)

    changed = False
    if problems:
        reason, msg = problem_reason, problems_message(problems)
        allocated = _cond("Allocated", False, reason, msg)
        degraded = _cond("Degraded", True, reason, msg)
    elif allocation is None or not applied:
        reason = error_reason or "ReconcileFailed"
        msg = error or "no allocation"
        allocated = _cond("Allocated", allocation is not None, reason, msg)
        degraded = _cond("Degraded", True, reason, msg)
    else:
        changed = not same_allocation(allocation, memory.allocation) or not memory.deployed
        if changed:
            mem = replace(mem, allocation=allocation, allocated_at=now_s, deployed=True)
        kept = mem.allocation or allocation
        allocated = _cond("Allocated", True, "Allocated", describe_allocation(kept))
        if metrics_error is not None:
            degraded = _cond(
                "Degraded", True, "MetricsUnavailable", f"{metrics_error}; keeping the last allocation"
            )
        elif allocation.shed:
            degraded = _cond(
                "Degraded", True, "LoadShedding", allocation.reason or describe_allocation(allocation)
            )
        else:
            degraded = _cond("Degraded", False, "AsExpected", "")
        if changed:
            events.append(Event("Normal", "Allocated", describe_allocation(allocation)))
    ready = (
        _cond("Ready", True, "Deployed", "the objects of the allocation are applied")
        if mem.deployed
        else _cond("Ready", False, degraded.reason, degraded.message)
    )
    if degraded.status == "True" and (
        prev_degraded is None
        or prev_degraded.status != "True"
        or (prev_degraded.reason, prev_degraded.message) != (degraded.reason, degraded.message)
    ):
        events.append(Event("Warning", degraded.reason, degraded.message))

    conditions = merge_conditions(old.conditions, [ready, allocated, degraded], now_s, generation)
    status = HadisServiceStatus(
        observed_generation=generation,
        conditions=conditions,
        demand_qps=None if mem.demand is None else round(mem.demand.demand_qps, 3),
        gpus=None if mem.allocation is None else mem.allocation.gpus_used,
        allocation=mem.allocation,
        last_allocation_time=mem.allocated_at,
    )
    wire = status.to_wire()
    return Outcome(
        memory=mem,
        status=None if wire == old.to_wire() else wire,
        events=events,
        allocation_changed=changed,
    )


def merge_patch(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """``new`` as a JSON merge patch over ``old``: keys ``new`` no longer has are set to null (a
    merge patch of ``new`` alone would leave e.g. a cascade row beside a new split)."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = (old or {}).get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            patch[key] = merge_patch(before, value)
        else:
            patch[key] = value
    for key in old or {}:
        if key not in new:
            patch[key] = None
    return patch


def _current(status: Mapping[str, Any] | None) -> HadisServiceStatus:
    """The object's status as the model (empty when missing or unreadable: then it is rewritten)."""
    try:
        return HadisServiceStatus.model_validate(dict(status or {}))
    except ValidationError:
        return HadisServiceStatus()
