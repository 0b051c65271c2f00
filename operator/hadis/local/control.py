"""The local control loop: observe the gateway → decide → start/stop workers → write the config."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from hadis.api.allocation import Allocation
from hadis.api.profile import Profile
from hadis.api.service import HadisService
from hadis.errors import UserError
from hadis.local.metrics_text import parse_gateway_metrics
from hadis.local.processes import Child, ProcessGroup
from hadis.local.worker_env import diffusers_env
from hadis.policy.demand import DemandEstimate
from hadis.policy.inputs import build_decision_input
from hadis.policy.pareto import table_for
from hadis.policy.registry import get_policy
from hadis.profiles import load_profile
from hadis.reconcile.cascade_config import build_cascade_config

Say = Callable[[str], None]


@dataclass
class LocalService:
    """One HadisService running on this machine. ``run`` blocks until ``should_stop`` returns True."""

    svc: HadisService
    workdir: Path
    gateway_port: int
    say: Say
    observe_s: float = 1.0
    group: ProcessGroup = field(init=False)
    profile: Profile = field(init=False)
    switch_timeout_s: float = 30.0
    #: keep a warm standby worker per GPU for every variant (default: when every engine is emulated)
    keep_warm: bool | None = None
    allocation: Allocation | None = field(default=None, init=False)  # the latest decision
    routing: Allocation | None = field(default=None, init=False)  # the decision the config routes by
    pending_since: float = field(default=0.0, init=False)
    generation: int = field(default=0, init=False)
    written: str = field(default="", init=False)
    written_at: float = field(default=0.0, init=False)
    initial_qps: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        spec = self.svc.spec
        if spec.profile.config_map is not None:
            raise UserError(
                "spec.profile.configMap: local mode reads built-in profiles or files (spec.profile.builtin)"
            )
        self.profile = load_profile(spec.profile.builtin or "").time_scaled(spec.profile.time_scale)
        self.table = table_for(self.profile, variants=[v.name for v in spec.variants])
        base = {"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "HADIS_CONFIG_POLL_S": "0.25"}
        self.group = ProcessGroup(self.workdir / "logs", base)  # config changes apply within 0.25 s
        self.config_path = self.workdir / "cascade.json"
        spec_engine = {v.name: v.engine or spec.engine for v in spec.variants}
        self.engines = spec_engine
        if self.keep_warm is None:
            self.keep_warm = all(e == "emulated" for e in spec_engine.values())

    # --- decide and reconcile -------------------------------------------------------------------

    def decide(
        self, demand_qps: float, queues: dict[str, float], arrivals: dict[str, float] | None = None
    ) -> Allocation:
        """The policy's decision; ``queues`` (waiting per variant) over ``arrivals`` (per-variant
        arrival rates of the last interval) is the Little's-law queueing delay the allocator adds."""
        spec = self.svc.spec
        inp = build_decision_input(
            spec,
            self.profile,
            self.table,
            demand_qps,
            previous=self.allocation,
            queue_lengths=queues,
            arrival_qps=arrivals,
        )
        return get_policy(spec.policy)(inp)

    def _worker_env(self, variant: str, pool: str, port: int) -> dict[str, str]:
        gpu = next(p.gpu_type for p in self.svc.spec.gpu_pools if p.name == pool)
        env = {
            "HADIS_WORKER_VARIANT": variant,
            "HADIS_CONFIG_PATH": str(self.config_path),
            "HADIS_ENGINE": self.engines[variant],
            "HADIS_PROFILE": self.svc.spec.profile.builtin or "",
            "HADIS_GPU_TYPE": gpu,
            "HADIS_WORKER_HOST": "127.0.0.1",
            "HADIS_WORKER_PORT": str(port),
            "HADIS_TIME_SCALE": str(self.svc.spec.profile.time_scale),
        }
        if self.engines[variant] == "diffusers":
            env |= diffusers_env(self.svc.spec, self.profile, variant)
        return env

    def apply(self, alloc: Allocation) -> None:
        """Make before break: start the workers ``alloc`` needs now; route by it once they are ready."""
        changed = (
            self.allocation is None
            or alloc.row != self.allocation.row
            or alloc.split != self.allocation.split
        )
        self.allocation = alloc
        if changed:
            self.say(f"allocation: {describe(alloc)}")
        want = _wanted(alloc)
        serving = Counter((c.role, c.pool) for c in self.group.workers() if not c.retiring)
        for key, n in want.items():
            spare = [c for c in self.group.workers(key[0]) if c.pool == key[1] and c.retiring]
            for c in sorted(spare, key=lambda c: not c.ready)[: max(0, n - serving[key])]:
                c.retiring = False  # wanted again before it stopped (or a warm standby): serve again
                serving[key] += 1
            for _ in range(n - serving[key]):
                port = self.group.free_port()
                env = self._worker_env(key[0], key[1], port)
                self.group.start(key[0], "hadis_worker", env, port, key[1], port_var="HADIS_WORKER_PORT")
        self.pending_since = time.monotonic()
        self.maybe_switch()

    def maybe_switch(self) -> None:
        """Route by the latest decision once its workers are ready (or after ``switch_timeout_s``, once
        each needed variant has a ready worker); then retire the workers it no longer needs."""
        alloc = self.allocation
        if alloc is None or alloc is self.routing:
            return
        want = _wanted(alloc)
        ready = Counter((c.role, c.pool) for c in self.group.workers() if c.ready and not c.retiring)
        waited = time.monotonic() - self.pending_since
        if self.routing is not None:
            for key, n in want.items():
                if ready[key] < n and not (waited >= self.switch_timeout_s and ready[key] > 0):
                    return
        self.routing = alloc
        self._log_routing(alloc)
        serving: dict[tuple[str, str], list[Child]] = {}
        for c in self.group.workers():
            if not c.retiring:
                serving.setdefault((c.role, c.pool), []).append(c)
        for key, workers in serving.items():
            extra = len(workers) - want.get(key, 0)
            if extra > 0:  # not-ready ones first, then the newest
                doomed = sorted(workers, key=lambda c: (c.ready, -self.group.children.index(c)))[:extra]
                for c in doomed:
                    c.retiring, c.retire_after = True, self.generation + 1
        self.write_config()

    def _log_routing(self, alloc: Allocation) -> None:
        """Append the decision the config now routes by to ``routing.jsonl`` (what served when)."""
        record = {
            "t_unix": time.time(),
            "generation": self.generation + 1,
            "policy": alloc.policy,
            "row": None if alloc.row is None else alloc.row.model_dump(mode="json"),
            "split": alloc.split,
            "expected_fid": alloc.expected_fid,
            "demand_qps": alloc.demand_qps,
        }
        with (self.workdir / "routing.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")

    def retire(self, applied_generation: int | None) -> None:
        """Stop retiring workers once the gateway routes by a config without them (or 5 s after it
        was written, if the gateway's generation cannot be read). Warm standbys are never stopped."""
        if self.keep_warm:
            self.group.reap()
            return
        late = time.monotonic() - self.written_at > 5.0
        for c in self.group.workers():
            if c.retiring and c.stop_deadline is None:
                acked = applied_generation is not None and applied_generation >= c.retire_after
                if acked or (late and self.generation >= c.retire_after):
                    self.group.terminate(c)
        self.group.reap()

    def write_config(self) -> None:
        """Write the cascade configuration (ready, non-retiring workers) when it changed; atomic rename."""
        if self.routing is None:
            return
        endpoints: dict[str, list[str]] = {}
        for c in self.group.workers():
            if c.ready and not c.retiring:
                endpoints.setdefault(c.role, []).append(c.url)
        spec = self.svc.spec
        cfg = build_cascade_config(
            self.routing,
            self.profile,
            endpoints,
            slo_s=spec.slo_seconds,
            admission_factor=spec.admission_factor,
            time_scale=spec.profile.time_scale,
            generation=self.generation + 1,
        )
        body = cfg.model_copy(update={"generation": 0}).model_dump_json(by_alias=True)
        if body == self.written:
            return
        self.generation += 1
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(cfg.to_wire(), indent=1))
        os.replace(tmp, self.config_path)
        self.written, self.written_at = body, time.monotonic()

    # --- the loop -------------------------------------------------------------------------------

    def start(self, demand_qps: float) -> Child:
        """Start the first decision's workers and the gateway; ``demand_qps`` seeds the demand
        estimate (as the simulator's first interval does), × over-provisioning like every estimate."""
        self.initial_qps = demand_qps
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "routing.jsonl").unlink(missing_ok=True)  # this run's decisions only
        if self.keep_warm:
            self.start_standbys()
        self.apply(self.decide(demand_qps * self.svc.spec.allocation.over_provisioning, {}))
        self.write_config()
        env = {
            "HADIS_CONFIG_PATH": str(self.config_path),
            "HADIS_GATEWAY_HOST": "127.0.0.1",
            "HADIS_GATEWAY_PORT": str(self.gateway_port),
            "HADIS_QUEUE_CAPACITY": str(self.svc.spec.gateway.queue_capacity),
            "HADIS_THRESHOLD_WINDOW": str(self.svc.spec.gateway.score_window),
        }
        return self.group.start("gateway", "hadis_gateway", env, self.gateway_port)

    def start_standbys(self) -> None:
        """Emulated workers are cheap: keep one per GPU of each pool warm for every variant it can
        run, unlisted until a decision needs it, so that a re-allocation is a config change (what the
        simulator charges: no model load time) instead of process starts that lag the decision."""
        for pool in self.svc.spec.gpu_pools:
            for v in self.svc.spec.variants:
                if not self.profile.variant(v.name).has_gpu(pool.gpu_type):
                    continue
                for _ in range(pool.count):
                    port = self.group.free_port()
                    env = self._worker_env(v.name, pool.name, port)
                    c = self.group.start(
                        v.name, "hadis_worker", env, port, pool.name, port_var="HADIS_WORKER_PORT"
                    )
                    c.retiring = True  # a standby: not in the config until wanted

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.group.poll_ready()
            self.maybe_switch()
            self.write_config()
            if all(c.ready for c in self.group.children):
                return
            time.sleep(0.2)
        slow = [f"{c.role}:{c.port}" for c in self.group.children if not c.ready]
        raise UserError(f"not ready after {timeout_s:g} s: {slow}; logs in {self.group.log_dir}")

    def run(self, should_stop: Callable[[], bool]) -> None:
        spec = self.svc.spec
        demand = DemandEstimate(
            spec.allocation.ewma_alpha, spec.allocation.over_provisioning, self.initial_qps or None
        )
        gateway = f"http://127.0.0.1:{self.gateway_port}/metrics"
        last_total: float | None = None
        last_t = time.monotonic()
        # a fixed schedule, as the simulator's: observe every observe_s, decide every interval
        next_observe = last_t + self.observe_s
        next_decision = last_t + spec.allocation.interval_seconds
        queues: dict[str, float] = {}
        dispatched: dict[str, float] | None = None  # per variant at the last decision
        decided_at = last_t
        while not should_stop():
            time.sleep(max(0.0, next_observe - time.monotonic()))
            next_observe = max(next_observe + self.observe_s, time.monotonic())
            self.group.poll_ready()
            self.maybe_switch()
            self.write_config()
            try:
                sample = parse_gateway_metrics(httpx.get(gateway, timeout=2.0).text)
            except httpx.HTTPError as e:
                self.say(f"observe: gateway metrics unavailable ({type(e).__name__}); keeping the allocation")
                self.retire(None)
                continue
            self.retire(sample.config_generation)
            now = time.monotonic()
            if last_total is not None and now > last_t:
                rate = max(0.0, sample.arrivals_total - last_total) / (now - last_t)
                # one EWMA step per observation window the sample spans (a late sample is not a
                # shorter half-life in seconds)
                for _ in range(max(1, round((now - last_t) / self.observe_s))):
                    demand = demand.observe(rate)
            last_total, last_t = sample.arrivals_total, now
            queues = sample.waiting if sample.waiting is not None else sample.queue
            if now >= next_decision:
                next_decision = max(next_decision + spec.allocation.interval_seconds, now)
                arrivals = None
                if dispatched is not None and now > decided_at:
                    arrivals = {
                        v: max(0.0, n - dispatched.get(v, 0.0)) / (now - decided_at)
                        for v, n in sample.dispatched.items()
                    }
                dispatched, decided_at = dict(sample.dispatched), now
                self.apply(self.decide(demand.demand_qps, queues, arrivals))
                self.write_config()


def _wanted(alloc: Allocation) -> Counter[tuple[str, str]]:
    return Counter({(a.variant, a.pool): a.replicas for a in alloc.variants if a.replicas > 0})


def describe(a: Allocation) -> str:
    if a.row is not None:
        route = f"{a.row.light} -> {a.row.heavy} θ={a.row.theta:.2f} τ={a.row.tau:.2f}"
    else:
        route = ", ".join(f"{v} {s:.0%}" for v, s in a.split.items())
    gpus = ", ".join(f"{v}×{a.replicas(v)} (batch {a.batch_size(v)})" for v in a.active_variants)
    shed = " · SHEDDING" if a.shed else ""
    return f"{route} · FID {a.expected_fid:.2f} · demand {a.demand_qps:.1f} QPS · {gpus}{shed}"
