"""The simulator's report: SLO violations, quality, goodput, utilisation and per-step timelines.

Definitions:

* a request *violates* the SLO when it is dropped (admission) or finishes more than ``slo_s``
  after its arrival; ``slo_violation_ratio = violations / requests``;
* ``goodput_qps`` = requests finished within the SLO / trace duration;
* ``mean_fid``: for cascade policies (every allocation has a table row) the mean over time of
  the active row's FID (the profiled quality of the mixed output); for the others the mean over
  served requests of the serving variant's single-model FID (for an escalated request, the
  variant that regenerated it); for a mix of both, the mean of the FID timeline;
* ``served_fid`` is the second definition for every policy;
* ``gpu_utilisation[v]`` = busy GPU-seconds of v's workers / GPU-seconds allocated to v.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from hadis.api.allocation import Allocation
from hadis.sim.config import SimConfig
from hadis.sim.traces import Trace

FloatArray = npt.NDArray[np.float64]


@dataclass
class RunData:
    """Raw outcomes of a run: one entry per request, plus the allocations and queue visits."""

    trace: Trace
    status: npt.NDArray[np.int8]  # 1 finished, 2 dropped
    finish: FloatArray  # finish (or drop) time
    variant: npt.NDArray[np.int8]  # index into variant_names of the serving variant, -1 if dropped
    variant_names: list[str]
    hard: npt.NDArray[np.bool_]
    escalated: npt.NDArray[np.bool_]
    checked: npt.NDArray[np.bool_]
    allocations: list[tuple[float, Allocation]]
    visits: dict[str, tuple[FloatArray, FloatArray]]  # per variant: (enqueue, dequeue) times
    busy_s: dict[str, float]
    batch_log: list[tuple[str, str, float, int, int]]  # (variant, pool, start, k, batch size)
    decision_s: float


@dataclass(frozen=True)
class Timeline:
    """Per-step series (step ``step_s`` seconds, sampled over the trace's duration)."""

    step_s: float
    time_s: list[float]
    arrivals_qps: list[float]
    violations: list[int]
    fid: list[float | None]
    demand_qps: list[float]
    gpus: dict[str, list[int]]
    queue: dict[str, list[int]]


@dataclass(frozen=True)
class SimReport:
    """What a simulation run measured (JSON-serialisable with :meth:`to_json`)."""

    policy: str
    trace: str
    slo_s: float
    duration_s: float
    requests: int
    finished: int
    finished_late: int
    dropped: int
    violations: int
    slo_violation_ratio: float
    mean_fid: float | None
    served_fid: float | None
    goodput_qps: float
    latency_p50_s: float | None
    latency_p99_s: float | None
    gpu_utilisation: dict[str, float]
    router_hard_fraction: float
    escalation_fraction: float
    decisions: int
    infeasible_decisions: int
    decision_time_s: float
    wall_time_s: float
    timeline: Timeline = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _clean(asdict(self))
        return out

    def to_json(self, *, timeline: bool = True) -> str:
        d = self.to_dict()
        if not timeline:
            d.pop("timeline")
        return json.dumps(d, indent=1)


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return None if not math.isfinite(x) else x
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


def _opt(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _active(allocs: list[tuple[float, Allocation]], times: FloatArray) -> npt.NDArray[np.int64]:
    starts = np.array([t for t, _ in allocs])
    return np.maximum(np.searchsorted(starts, times, side="right") - 1, 0)


def build_report(data: RunData, cfg: SimConfig, policy_name: str | None, wall_s: float) -> SimReport:
    """Summarise a run (pure: no I/O)."""
    tr, allocs = data.trace, data.allocations
    arrival, n = tr.arrival_s, len(tr)
    finished = data.status == 1
    latency = data.finish - arrival
    late = finished & (latency > cfg.slo_s)
    dropped = int(np.count_nonzero(data.status == 2))
    violations = int(np.count_nonzero(~finished | late))
    duration = tr.duration_s
    fids = np.array([cfg.profile.variant(v).fid for v in data.variant_names])
    served_fid = float(fids[data.variant[finished]].mean()) if finished.any() else math.nan
    timeline = _timeline(data, cfg, fids, ~finished | late)
    is_row = [a.row is not None for _, a in allocs]
    if all(is_row) and allocs:
        mean_fid = _time_weighted_fid(allocs, duration)
    elif not any(is_row):
        mean_fid = served_fid
    else:
        vals = [f for f in timeline.fid if f is not None]
        mean_fid = float(np.mean(vals)) if vals else math.nan
    ok_lat = latency[finished]
    end = float(np.nanmax(data.finish)) if n else duration
    checked = int(np.count_nonzero(data.checked))
    per_alloc = np.bincount(_active(allocs, arrival), minlength=len(allocs)) if allocs else np.zeros(0)
    routed_cascade = int(
        sum(c for c, (_, a) in zip(per_alloc.tolist(), allocs, strict=True) if a.row is not None)
    )
    return SimReport(
        policy=policy_name or (allocs[0][1].policy if allocs else "?"),
        trace=tr.name,
        slo_s=cfg.slo_s,
        duration_s=duration,
        requests=n,
        finished=int(np.count_nonzero(finished)),
        finished_late=int(np.count_nonzero(late)),
        dropped=dropped,
        violations=violations,
        slo_violation_ratio=violations / n if n else 0.0,
        mean_fid=_opt(mean_fid),
        served_fid=_opt(served_fid),
        goodput_qps=int(np.count_nonzero(finished & ~late)) / duration if duration > 0 else 0.0,
        latency_p50_s=_opt(float(np.percentile(ok_lat, 50))) if ok_lat.size else None,
        latency_p99_s=_opt(float(np.percentile(ok_lat, 99))) if ok_lat.size else None,
        gpu_utilisation=_utilisation(data, cfg, max(end, duration)),
        router_hard_fraction=float(np.count_nonzero(data.hard)) / max(1, routed_cascade),
        escalation_fraction=float(np.count_nonzero(data.escalated)) / checked if checked else 0.0,
        decisions=len(allocs),
        infeasible_decisions=sum(1 for _, a in allocs if not a.feasible),
        decision_time_s=data.decision_s,
        wall_time_s=wall_s,
        timeline=timeline,
    )


def _time_weighted_fid(allocs: list[tuple[float, Allocation]], duration: float) -> float:
    total, weight = 0.0, 0.0
    for i, (t, a) in enumerate(allocs):
        end = allocs[i + 1][0] if i + 1 < len(allocs) else max(duration, t)
        span = max(0.0, min(end, duration) - t) if duration > t else (1.0 if i == len(allocs) - 1 else 0.0)
        if a.row is not None:
            total += a.row.fid * span
            weight += span
    return total / weight if weight > 0 else math.nan


def _utilisation(data: RunData, cfg: SimConfig, end: float) -> dict[str, float]:
    allocs = data.allocations
    given = dict.fromkeys(data.variant_names, 0.0)
    for i, (t, a) in enumerate(allocs):
        span = (allocs[i + 1][0] if i + 1 < len(allocs) else max(end, t + cfg.interval_s)) - t
        for v in given:
            given[v] += a.replicas(v) * span
    return {v: data.busy_s.get(v, 0.0) / g for v, g in given.items() if g > 0}


def _timeline(data: RunData, cfg: SimConfig, fids: FloatArray, violated: npt.NDArray[np.bool_]) -> Timeline:
    tr, step, allocs = data.trace, cfg.timeline_step_s, data.allocations
    bins = max(1, math.ceil(tr.duration_s / step - 1e-9))
    a_bin = np.minimum((tr.arrival_s / step).astype(np.int64), bins - 1)
    arrivals = np.bincount(a_bin, minlength=bins)
    viol = np.bincount(a_bin, weights=violated.astype(np.float64), minlength=bins)
    times = np.arange(bins, dtype=np.float64) * step
    which = _active(allocs, times) if allocs else np.zeros(bins, dtype=np.int64)
    served = data.status == 1
    fsum = np.bincount(a_bin[served], weights=fids[data.variant[served]], minlength=bins)
    fcnt = np.bincount(a_bin[served], minlength=bins)
    fid: list[float | None] = []
    for b in range(bins):
        row = allocs[int(which[b])][1].row if allocs else None
        if row is not None:
            fid.append(row.fid)
        else:
            fid.append(float(fsum[b] / fcnt[b]) if fcnt[b] else None)
    gpus: dict[str, list[int]] = {}
    for v in data.variant_names:
        per = np.array([a.replicas(v) for _, a in allocs] or [0], dtype=np.int64)
        gpus[v] = per[which].tolist()
    demand = np.array([a.demand_qps for _, a in allocs] or [0.0])[which]
    queue: dict[str, list[int]] = {}
    for v, (enq, deq) in data.visits.items():
        ein = np.bincount(np.minimum((enq / step).astype(np.int64), bins), minlength=bins + 1)[:bins]
        eout = np.bincount(np.minimum((deq / step).astype(np.int64), bins), minlength=bins + 1)[:bins]
        queue[v] = np.maximum(np.cumsum(ein) - np.cumsum(eout), 0).astype(int).tolist()
    return Timeline(
        step_s=step,
        time_s=times.tolist(),
        arrivals_qps=(arrivals / step).tolist(),
        violations=viol.astype(int).tolist(),
        fid=fid,
        demand_qps=demand.tolist(),
        gpus=gpus,
        queue=queue,
    )
