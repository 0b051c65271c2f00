"""The discrete-event simulator of the whole cascade, driven by a policy's control loop.

Time advances one control interval at a time. At the start of interval [T, T+I) the control loop
observes the last interval's arrivals, updates the demand estimate (EWMA × over-provisioning),
calls the policy and applies its allocation (workers added or removed per variant and pool;
queues of variants left without workers are re-dispatched). The interval's arrivals are then
routed, and the variants are simulated one after the other, lightest first, batch by batch
(:mod:`hadis.sim.station`): the light stage produces escalations, which join the heavy variant's
queue at their discriminator time with their original deadline, before the heavy variant runs.
Batches that would start at or after T+I wait for the next interval. After the last interval the
simulation drains: it runs until every request has finished or been dropped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hadis.api.allocation import Allocation, DecisionInput
from hadis.policy.pareto import build_pareto_table
from hadis.sim.cascade import CascadeDraws, escalation_target, final_target, split_weights
from hadis.sim.config import SimConfig, batch_latencies
from hadis.sim.report import RunData, SimReport, build_report
from hadis.sim.station import Station
from hadis.sim.traces import Trace
from hadis.sim.workers import PassResult, WorkerGroup

Policy = Callable[[DecisionInput], Allocation]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

PENDING, FINISHED, DROPPED = 0, 1, 2


@dataclass(frozen=True)
class SimResult:
    """The report plus per-request outcomes (for tests and analysis)."""

    report: SimReport
    data: RunData


def simulate(trace: Trace, policy: Policy, config: SimConfig, *, policy_name: str | None = None) -> SimReport:
    """Simulate ``trace`` under ``policy`` and return the report."""
    return simulate_detailed(trace, policy, config, policy_name=policy_name).report


def simulate_detailed(
    trace: Trace, policy: Policy, config: SimConfig, *, policy_name: str | None = None
) -> SimResult:
    """Like :func:`simulate`, also returning every request's outcome and the allocations."""
    wall = time.perf_counter()
    engine = _Engine(trace, policy, config)
    engine.run()
    data = engine.data()
    report = build_report(data, config, policy_name, time.perf_counter() - wall)
    return SimResult(report, data)


class _Engine:
    def __init__(self, trace: Trace, policy: Policy, cfg: SimConfig) -> None:
        self.trace, self.policy, self.cfg = trace, policy, cfg
        profile = cfg.profile
        ref = profile.reference_gpu_type
        self.order = sorted(profile.variant_names, key=lambda v: profile.variant(v).perf_on(ref).latency(1))
        self.code = {v: i for i, v in enumerate(profile.variant_names)}
        self.stations = {
            v: Station(v, fast_path=cfg.fast_path, record_batches=cfg.record_batches) for v in self.order
        }
        n = len(trace)
        self.deadline = trace.arrival_s + cfg.admission_window_s
        self.status = np.zeros(n, dtype=np.int8)
        self.finish = np.full(n, np.nan)
        self.variant = np.full(n, -1, dtype=np.int8)
        self.hard = np.zeros(n, dtype=np.bool_)
        self.escalated = np.zeros(n, dtype=np.bool_)
        self.esc_after = np.zeros(n, dtype=np.bool_)  # rejected by the discriminator once served on light
        self.stage0 = np.zeros(n, dtype=np.bool_)  # queued on light with a discriminator check to come
        self.checked = np.zeros(n, dtype=np.bool_)  # served on light with a discriminator check
        self.draws = CascadeDraws(trace.prompt_id, cfg.scores, np.random.default_rng(cfg.seed))
        self.n_int = max(1, math.ceil(trace.duration_s / cfg.interval_s - 1e-9))
        self.enq_counts = {v: np.zeros(self.n_int + 1, dtype=np.int64) for v in self.order}
        self.visits: dict[str, list[tuple[FloatArray, FloatArray]]] = {v: [] for v in self.order}
        self.allocations: list[tuple[float, Allocation]] = []
        self.batch_log: list[tuple[str, str, float, int, int]] = []
        self.decision_s = 0.0
        self.replicas: dict[str, int] = {}
        self.busy_s = dict.fromkeys(self.order, 0.0)  # busy GPU-seconds of removed worker groups
        self.lat_cache: dict[tuple[str, str, int], list[float]] = {}
        table = list(cfg.table) if cfg.table is not None else build_pareto_table(profile.sweep)
        self.base_input = DecisionInput(
            profile=profile,
            table=table,
            demand_qps=0.0,
            slo_s=cfg.slo_s,
            pools=list(cfg.pools),
            variants=list(cfg.variants) if cfg.variants else None,
            reconfiguration_cost=cfg.reconfiguration_cost,
            time_limit_s=cfg.time_limit_s,
            fixed_pair=cfg.fixed_pair,
        )

    # --- the control loop ------------------------------------------------------------------------

    def run(self) -> None:
        cfg, arrival, interval = self.cfg, self.trace.arrival_s, self.cfg.interval_s
        first = int(np.searchsorted(arrival, interval, side="left")) / min(
            interval, self.trace.duration_s or 1.0
        )
        ewma = cfg.initial_qps if cfg.initial_qps is not None else first
        step = cfg.observe_step_s
        observed_until = 0.0
        for k in range(self.n_int):
            t0 = k * interval
            last = k == self.n_int - 1
            while observed_until + step <= t0 + 1e-9:  # one EWMA update per observation window
                lo = np.searchsorted(arrival, observed_until, side="left")
                observed_until += step
                rate = (np.searchsorted(arrival, observed_until, side="left") - lo) / step
                ewma = cfg.ewma_alpha * rate + (1 - cfg.ewma_alpha) * ewma
            alloc = self._decide(k, t0, ewma * cfg.over_provisioning)
            self._apply(alloc, t0, ready=t0 + (cfg.swap_s if k > 0 else 0.0))
            lo_i = int(np.searchsorted(arrival, t0, side="left"))
            hi_i = arrival.size if last else int(np.searchsorted(arrival, t0 + interval, side="left"))
            ids = np.arange(lo_i, hi_i, dtype=np.int64)
            self._route(ids, arrival[lo_i:hi_i], alloc)
            self._advance(t0, math.inf if last else t0 + interval, alloc)

    def _decide(self, k: int, t0: float, demand: float) -> Allocation:
        update: dict[str, object] = {"demand_qps": max(0.0, demand)}
        if self.allocations:
            update["previous"] = self.allocations[-1][1]
            update["queue_lengths"] = {v: float(s.queued_at(t0)) for v, s in self.stations.items()}
            update["arrival_qps"] = {
                v: float(c[k - 1]) / self.cfg.interval_s for v, c in self.enq_counts.items()
            }
        tic = time.perf_counter()
        alloc = self.policy(self.base_input.model_copy(update=update))
        self.decision_s += time.perf_counter() - tic
        self.allocations.append((t0, alloc))
        return alloc

    def _apply(self, alloc: Allocation, now: float, ready: float) -> None:
        """Resize the worker groups to the allocation; re-dispatch queues left without workers."""
        wanted: dict[str, dict[str, tuple[int, int]]] = {v: {} for v in self.order}
        for a in alloc.variants:
            if a.variant not in wanted:
                raise ValueError(f"allocation: unknown variant {a.variant!r}; the profile has {self.order}")
            if a.replicas > 0:
                pool = self.cfg.pool(a.pool)
                r, b = wanted[a.variant].get(pool.name, (0, a.batch_size))
                wanted[a.variant][pool.name] = (r + a.replicas, max(b, a.batch_size))
        for v, station in self.stations.items():
            groups = {g.pool: g for g in station.groups}
            for g in station.groups:
                if g.pool not in wanted[v]:
                    self.busy_s[v] += g.busy_s
            new: list[WorkerGroup] = []
            for pool_name, (replicas, batch) in wanted[v].items():
                lat = self._latencies(v, pool_name, batch)
                g = groups.get(pool_name) or WorkerGroup(pool_name, batch, lat, [])
                g.batch, g.lat = batch, lat
                g.resize(replicas, now, ready)
                new.append(g)
            station.groups = new
            self.replicas[v] = station.replicas
        for station in self.stations.values():
            if station.replicas == 0 and station.pending:
                ids, enq, _ = station.take_all()
                self.visits[station.name].append((enq, np.full(enq.size, now)))
                enq = np.maximum(enq, now)
                again = self.escalated[ids]
                self._route(ids[~again], enq[~again], alloc)
                self._send_final(ids[again], enq[again], alloc, now)

    def _latencies(self, variant: str, pool_name: str, batch: int) -> list[float]:
        gpu = self.cfg.pool(pool_name).gpu_type
        key = (variant, gpu, batch)
        if key not in self.lat_cache:
            v = self.cfg.profile.variant(variant)
            if not v.has_gpu(gpu):
                raise ValueError(
                    f"allocation puts {variant!r} on pool {pool_name!r} ({gpu}): no latency profile"
                )
            self.lat_cache[key] = batch_latencies(v.perf_on(gpu), batch)
        return self.lat_cache[key]

    # --- routing ---------------------------------------------------------------------------------

    def _route(self, ids: IntArray, enq: FloatArray, alloc: Allocation) -> None:
        """Route fresh requests under ``alloc``: cascade (router + light with a check) or split."""
        if ids.size == 0:
            return
        self.esc_after[ids] = False
        self.stage0[ids] = False
        row, rep = alloc.row, self.replicas
        if row is not None and rep.get(row.light, 0) > 0 and rep.get(row.heavy, 0) > 0:
            hard = self.draws.hard(ids, row.theta)
            self.hard[ids] = hard
            self._enqueue(row.heavy, ids[hard], enq[hard])
            light = ids[~hard]
            self.esc_after[light] = self.draws.escalate(light, row.light, row.tau, row.theta)
            self.stage0[light] = True
            self._enqueue(row.light, light, enq[~hard])
            return
        if row is not None:
            weights = {v: 1.0 for v in (row.light, row.heavy) if rep.get(v, 0) > 0}
        else:
            weights = split_weights(alloc, rep)
        if not weights:
            weights = split_weights(alloc.model_copy(update={"split": {}}), rep)
        if not weights:
            self._drop(ids, enq)
            return
        pos = np.arange(ids.size)
        for v, sel in self.draws.split(pos, weights).items():
            self._enqueue(v, ids[sel], enq[sel])

    def _send_final(self, ids: IntArray, enq: FloatArray, alloc: Allocation, now: float) -> None:
        target = final_target(alloc, self.replicas, self.cfg.profile)
        if target is None:
            self._drop(ids, np.full(ids.size, now))
        else:
            self._enqueue(target, ids, enq)

    def _enqueue(self, variant: str, ids: IntArray, enq: FloatArray) -> None:
        if ids.size == 0:
            return
        self.stations[variant].push(ids, enq, self.deadline[ids])
        slot = np.minimum((enq / self.cfg.interval_s).astype(np.int64), self.n_int)
        self.enq_counts[variant] += np.bincount(slot, minlength=self.n_int + 1)

    def _drop(self, ids: IntArray, at: FloatArray) -> None:
        self.status[ids] = DROPPED
        self.finish[ids] = at

    # --- running the stations --------------------------------------------------------------------

    def _advance(self, t0: float, t_end: float, alloc: Allocation) -> None:
        """Run every variant, lightest first; with ``t_end = inf`` until all work is done."""
        for _ in range(len(self.order) + 2):
            for v in self.order:
                station = self.stations[v]
                if station.pending and station.replicas:
                    self._account(v, station.run(t0, t_end), alloc)
            if math.isfinite(t_end) or not any(s.pending for s in self.stations.values()):
                return
        raise RuntimeError("simulator: work left after draining (a routing cycle?)")

    def _account(self, v: str, res: PassResult, alloc: Allocation) -> None:
        self.visits[v].append((res.enq, res.start))
        if self.cfg.record_batches:
            self.batch_log.extend((v, *b) for b in res.batch_log)
        self._drop(res.ids[~res.served], res.start[~res.served])
        ids, fin = res.ids[res.served], res.finish[res.served]
        esc = self.esc_after[ids]
        self.esc_after[ids] = False
        self.checked[ids[self.stage0[ids]]] = True
        self.stage0[ids] = False
        target = escalation_target(alloc, self.replicas, self.cfg.profile, v) if esc.any() else None
        if target is not None:
            self.escalated[ids[esc]] = True
            self._enqueue(target, ids[esc], fin[esc])
            done, fin_done = ids[~esc], fin[~esc]
        else:
            done, fin_done = ids, fin
        self.status[done] = FINISHED
        self.finish[done] = fin_done
        self.variant[done] = self.code[v]

    def data(self) -> RunData:
        return RunData(
            trace=self.trace,
            status=self.status,
            finish=self.finish,
            variant=self.variant,
            variant_names=list(self.code),
            hard=self.hard,
            escalated=self.escalated,
            checked=self.checked,
            allocations=self.allocations,
            visits={v: _concat(vs) for v, vs in self.visits.items()},
            busy_s={v: self.busy_s[v] + sum(g.busy_s for g in s.groups) for v, s in self.stations.items()},
            batch_log=self.batch_log,
            decision_s=self.decision_s,
        )


def _concat(parts: list[tuple[FloatArray, FloatArray]]) -> tuple[FloatArray, FloatArray]:
    if not parts:
        return np.empty(0), np.empty(0)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
