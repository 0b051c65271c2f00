"""Simulator configuration: the cluster, the SLO and the control loop's knobs (pure data)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hadis.api.allocation import GpuPool
from hadis.api.profile import CascadeRow, GpuPerf, Profile
from hadis.api.scores import PromptScores


def _check(name: str, value: float, *, low: float = 0.0, strict: bool = True, high: float = math.inf) -> None:
    ok = math.isfinite(value) and (value > low if strict else value >= low) and value <= high
    if not ok:
        bound = f"> {low:g}" if strict else f"≥ {low:g}"
        upper = f" and ≤ {high:g}" if math.isfinite(high) else ""
        raise ValueError(f"{name} must be {bound}{upper}, got {value}")


@dataclass(frozen=True)
class SimConfig:
    """Everything the simulator needs besides the trace and the policy.

    * ``pools`` — the GPUs; a worker's batch latency comes from its pool's ``gpu_type``.
    * ``admission_factor`` — a worker drops (explicitly, counted) a request that cannot finish
      within ``admission_factor × slo_s`` of its arrival instead of running it.
    * Control loop: every ``interval_s`` the simulator observes the arrivals of the last interval,
      estimates demand = EWMA(``ewma_alpha``) × ``over_provisioning`` and calls the policy. The
      EWMA is updated once per ``observe_s`` seconds with that window's arrival rate (``None``:
      once per interval; the HADIS artifact observes every second with a half-life of 3 s).
      The first decision (t = 0) uses ``initial_qps`` (× ``over_provisioning``); ``None`` is a warm
      start: the trace's mean rate over its first interval.
    * ``swap_s`` — model load time: workers added at a re-allocation start work ``swap_s`` later.
    * ``scores`` — per-prompt router / discriminator scores (e.g. the packaged ones); ``None``
      draws them from uniform distributions (hard share = θ, escalation share = τ exactly in law).
    * ``table`` — the Pareto table handed to cascade policies (``None``: built from the profile).
    * ``variants``, ``fixed_pair``, ``reconfiguration_cost``, ``time_limit_s`` — passed on to the
      policy's :class:`~hadis.api.allocation.DecisionInput`.
    * ``timeline_step_s`` — resolution of the report's timelines.
    * ``record_batches`` — keep a log of every batch (tests and debugging; costs memory).
    * ``fast_path`` — the vectorised path for requests that find an idle worker (identical results;
      off only to cross-check it).
    """

    profile: Profile
    pools: tuple[GpuPool, ...]
    slo_s: float
    interval_s: float = 50.0
    ewma_alpha: float = 0.5
    observe_s: float | None = None
    over_provisioning: float = 1.05
    admission_factor: float = 1.5
    initial_qps: float | None = None
    swap_s: float = 0.0
    seed: int = 0
    scores: PromptScores | None = None
    table: tuple[CascadeRow, ...] | None = None
    variants: tuple[str, ...] | None = None
    fixed_pair: tuple[str, str] | None = None
    reconfiguration_cost: float = 0.0
    time_limit_s: float = 5.0
    timeline_step_s: float = 1.0
    record_batches: bool = False
    fast_path: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "pools", tuple(self.pools))
        if not self.pools:
            raise ValueError("pools: at least one GPU pool is needed")
        names = [p.name for p in self.pools]
        if len(set(names)) != len(names):
            raise ValueError(f"pools: duplicate pool names {names}")
        for i, pool in enumerate(self.pools):
            if pool.gpu_type not in self.profile.gpu_types:
                raise ValueError(
                    f"pools[{i}].gpu_type: {pool.gpu_type!r} is not in the profile ({self.profile.gpu_types})"
                )
        _check("slo_s", self.slo_s)
        _check("interval_s", self.interval_s)
        _check("ewma_alpha", self.ewma_alpha, high=1.0)
        if self.observe_s is not None:
            _check("observe_s", self.observe_s, high=self.interval_s)
        _check("over_provisioning", self.over_provisioning)
        _check("admission_factor", self.admission_factor)
        if self.initial_qps is not None:
            _check("initial_qps", self.initial_qps, strict=False)
        _check("swap_s", self.swap_s, strict=False)
        _check("reconfiguration_cost", self.reconfiguration_cost, strict=False)
        _check("time_limit_s", self.time_limit_s)
        _check("timeline_step_s", self.timeline_step_s)
        if self.table is not None:
            object.__setattr__(self, "table", tuple(self.table))
        if self.scores is not None:
            missing = [v for v in self.profile.variant_names if v not in self.scores.p_real]
            if missing:
                raise ValueError(f"scores: no discriminator scores for variant(s) {missing}")

    @property
    def observe_step_s(self) -> float:
        return self.observe_s if self.observe_s is not None else self.interval_s

    @property
    def admission_window_s(self) -> float:
        return self.admission_factor * self.slo_s

    def pool(self, name: str) -> GpuPool:
        for p in self.pools:
            if p.name == name:
                return p
        raise ValueError(f"allocation names pool {name!r}; the simulator has {[p.name for p in self.pools]}")


def batch_latencies(perf: GpuPerf, batch: int) -> list[float]:
    """``L[k]`` for k = 0..batch: the profiled latency of a batch of k, else a linear interpolation.

    Between profiled sizes the latency is interpolated linearly; above the largest profiled size
    it is extrapolated with the last segment's slope (or proportionally, with one profiled size);
    below the smallest profiled size it is proportional. ``L[0] = 0``.
    """
    if batch < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch}")
    sizes = [p.batch for p in perf.batches]
    lats = [p.latency_s for p in perf.batches]
    out = [0.0]
    for k in range(1, batch + 1):
        if k <= sizes[0]:
            out.append(lats[0] * k / sizes[0])
        elif k >= sizes[-1]:
            if len(sizes) == 1:
                out.append(lats[0] * k / sizes[0])
            else:
                slope = (lats[-1] - lats[-2]) / (sizes[-1] - sizes[-2])
                out.append(lats[-1] + slope * (k - sizes[-1]))
        else:
            j = next(i for i, s in enumerate(sizes) if s >= k)
            if sizes[j] == k:
                out.append(lats[j])
            else:
                w = (k - sizes[j - 1]) / (sizes[j] - sizes[j - 1])
                out.append(lats[j - 1] + w * (lats[j] - lats[j - 1]))
    return out
