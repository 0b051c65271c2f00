"""Request traces: arrival times and prompt ids, and the generators the paper and the benches use.

A :class:`Trace` is pure data (sorted arrival seconds from 0, one prompt id per request). Every
generator takes a :class:`numpy.random.Generator`, so the same seed gives the same trace.

Generators:

* :func:`paper_trace` — the HADIS/DiffServe method: min-max scale a load shape (the Azure
  Functions 2019 hourly invocations) to a QPS range, one shape point per second (or per
  ``seconds_per_point``), Poisson arrivals within each second, prompt ids uniform.
* :func:`poisson_trace`, :func:`gamma_trace` (inter-arrival coefficient of variation ``cv``) and
  :func:`mmpp_trace` (a two-state Markov-modulated Poisson process).
* :func:`compress_to_qps` — rescale time so a trace's mean rate is a target QPS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Size of the paper's reference prompt set (ids are drawn uniformly from ``range(n_prompts)``).
DEFAULT_PROMPTS = 5000


def _positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not math.isfinite(value) or not ok:
        bound = "≥ 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value}")


@dataclass(frozen=True)
class Trace:
    """Requests sorted by arrival: ``arrival_s[i]`` seconds after the trace start, ``prompt_id[i]``.

    ``duration_s`` is the span the trace covers (≥ the last arrival); it defaults to the last
    arrival rounded up to a whole second.
    """

    arrival_s: FloatArray
    prompt_id: IntArray
    name: str = "trace"
    duration_s: float = field(default=-1.0)

    def __post_init__(self) -> None:
        arr = np.ascontiguousarray(self.arrival_s, dtype=np.float64)
        ids = np.ascontiguousarray(self.prompt_id, dtype=np.int64)
        if arr.ndim != 1 or ids.shape != arr.shape:
            raise ValueError(f"trace {self.name!r}: arrival_s {arr.shape} and prompt_id {ids.shape} differ")
        if arr.size and (not np.all(np.isfinite(arr)) or arr[0] < 0):
            raise ValueError(f"trace {self.name!r}: arrival_s must be finite and ≥ 0")
        if arr.size > 1 and np.any(np.diff(arr) < 0):
            raise ValueError(f"trace {self.name!r}: arrival_s must be sorted")
        if ids.size and ids.min() < 0:
            raise ValueError(f"trace {self.name!r}: prompt_id must be ≥ 0")
        last = float(arr[-1]) if arr.size else 0.0
        duration = self.duration_s if self.duration_s >= 0 else float(math.ceil(last)) if arr.size else 0.0
        if duration < last:
            raise ValueError(f"trace {self.name!r}: duration_s {duration} < last arrival {last}")
        object.__setattr__(self, "arrival_s", arr)
        object.__setattr__(self, "prompt_id", ids)
        object.__setattr__(self, "duration_s", float(duration))

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    @property
    def requests(self) -> int:
        return len(self)

    @property
    def mean_qps(self) -> float:
        return len(self) / self.duration_s if self.duration_s > 0 else 0.0

    def rate_per_second(self, step_s: float = 1.0) -> FloatArray:
        """Arrivals per second in consecutive windows of ``step_s`` seconds covering the duration."""
        _positive("step_s", step_s)
        bins = max(1, math.ceil(self.duration_s / step_s - 1e-9))
        idx = np.minimum((self.arrival_s / step_s).astype(np.int64), bins - 1)
        return np.bincount(idx, minlength=bins).astype(np.float64) / step_s

    def head(self, duration_s: float) -> Trace:
        """The requests that arrive before ``duration_s``."""
        n = int(np.searchsorted(self.arrival_s, duration_s, side="left"))
        return Trace(self.arrival_s[:n], self.prompt_id[:n], self.name, min(self.duration_s, duration_s))


def _uniform_ids(rng: np.random.Generator, n: int, n_prompts: int) -> IntArray:
    if n_prompts < 1:
        raise ValueError(f"n_prompts must be ≥ 1, got {n_prompts}")
    return rng.integers(0, n_prompts, size=n, dtype=np.int64)


def piecewise_poisson(
    rates: npt.ArrayLike,
    step_s: float,
    rng: np.random.Generator,
    *,
    n_prompts: int = DEFAULT_PROMPTS,
    name: str = "piecewise",
) -> Trace:
    """Poisson arrivals with a constant rate ``rates[k]`` (QPS) in window ``[k·step, (k+1)·step)``."""
    r = np.asarray(rates, dtype=np.float64)
    _positive("step_s", step_s)
    if r.ndim != 1 or not np.all(np.isfinite(r)) or (r.size and r.min() < 0):
        raise ValueError("rates must be a 1-D array of finite values ≥ 0")
    counts = rng.poisson(r * step_s)
    starts = np.repeat(np.arange(r.size, dtype=np.float64) * step_s, counts)
    arrival = np.sort(starts + rng.random(starts.size) * step_s)
    return Trace(arrival, _uniform_ids(rng, arrival.size, n_prompts), name, r.size * step_s)


def minmax_scale(shape: npt.ArrayLike, qps_min: float, qps_max: float) -> FloatArray:
    """Map a load shape linearly onto ``[qps_min, qps_max]`` (a flat shape maps to ``qps_min``)."""
    s = np.asarray(shape, dtype=np.float64)
    _positive("qps_min", qps_min, allow_zero=True)
    _positive("qps_max", qps_max, allow_zero=True)
    if qps_max < qps_min:
        raise ValueError(f"qps_max ({qps_max}) must be ≥ qps_min ({qps_min})")
    if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)):
        raise ValueError("shape must be a non-empty 1-D array of finite values")
    span = float(s.max() - s.min())
    if span == 0:
        return np.full(s.size, float(qps_min))
    scaled: FloatArray = qps_min + (s - s.min()) / span * (qps_max - qps_min)
    return scaled


def paper_rates(
    shape: npt.ArrayLike,
    qps_min: float,
    qps_max: float,
    *,
    seconds_per_point: float = 1.0,
    interpolate: bool = False,
) -> FloatArray:
    """The per-second target rate of :func:`paper_trace` (length ``len(shape) × seconds_per_point``)."""
    _positive("seconds_per_point", seconds_per_point)
    scaled = minmax_scale(shape, qps_min, qps_max)
    seconds = max(1, round(scaled.size * seconds_per_point))
    t = (np.arange(seconds, dtype=np.float64) + 0.5) / seconds_per_point  # in shape points
    if interpolate:
        return np.interp(t - 0.5, np.arange(scaled.size, dtype=np.float64), scaled)
    return scaled[np.minimum(t.astype(np.int64), scaled.size - 1)]


def paper_trace(
    shape: npt.ArrayLike,
    qps_min: float,
    qps_max: float,
    rng: np.random.Generator,
    *,
    seconds_per_point: float = 1.0,
    interpolate: bool = False,
    n_prompts: int = DEFAULT_PROMPTS,
    name: str = "paper",
) -> Trace:
    """The paper's trace method: min-max scaled shape, Poisson arrivals within each second.

    With ``seconds_per_point`` > 1 each shape point covers that many seconds (a step function, or a
    linear interpolation between points with ``interpolate=True``), e.g. 347 points over 24 h.
    """
    rates = paper_rates(shape, qps_min, qps_max, seconds_per_point=seconds_per_point, interpolate=interpolate)
    return piecewise_poisson(rates, 1.0, rng, n_prompts=n_prompts, name=name)


def poisson_trace(
    qps: float, duration_s: float, rng: np.random.Generator, *, n_prompts: int = DEFAULT_PROMPTS
) -> Trace:
    """A homogeneous Poisson process of rate ``qps`` over ``duration_s`` seconds."""
    _positive("qps", qps, allow_zero=True)
    _positive("duration_s", duration_s)
    n = int(rng.poisson(qps * duration_s))
    arrival = np.sort(rng.random(n) * duration_s)
    return Trace(arrival, _uniform_ids(rng, n, n_prompts), f"poisson-{qps:g}qps", duration_s)


def _renewal(gaps: FloatArray, duration_s: float) -> FloatArray:
    t = np.cumsum(gaps)
    return t[t < duration_s]


def gamma_trace(
    qps: float, cv: float, duration_s: float, rng: np.random.Generator, *, n_prompts: int = DEFAULT_PROMPTS
) -> Trace:
    """A renewal process with gamma inter-arrival gaps: mean ``1/qps``, coefficient of variation ``cv``."""
    _positive("qps", qps)
    _positive("cv", cv)
    _positive("duration_s", duration_s)
    k = 1.0 / cv**2
    expected = qps * duration_s
    n = int(expected + 10 * math.sqrt(expected * max(cv**2, 1.0)) + 100)
    gaps = rng.gamma(k, 1.0 / (qps * k), size=n)
    while gaps.sum() < duration_s:  # rare: draw more until the trace covers the duration
        gaps = np.concatenate([gaps, rng.gamma(k, 1.0 / (qps * k), size=n)])
    arrival = _renewal(gaps, duration_s)
    return Trace(
        arrival, _uniform_ids(rng, arrival.size, n_prompts), f"gamma-{qps:g}qps-cv{cv:g}", duration_s
    )


def mmpp_trace(
    rates: tuple[float, float],
    mean_sojourn_s: tuple[float, float],
    duration_s: float,
    rng: np.random.Generator,
    *,
    n_prompts: int = DEFAULT_PROMPTS,
) -> Trace:
    """A two-state Markov-modulated Poisson process, starting in state 0.

    State i emits Poisson arrivals at ``rates[i]`` and lasts an exponential time of mean
    ``mean_sojourn_s[i]``; the long-run rate is the sojourn-weighted mean of the two rates.
    """
    for i in (0, 1):
        _positive(f"rates[{i}]", rates[i], allow_zero=True)
        _positive(f"mean_sojourn_s[{i}]", mean_sojourn_s[i])
    _positive("duration_s", duration_s)
    parts: list[FloatArray] = []
    t, state = 0.0, 0
    while t < duration_s:
        end = min(duration_s, t + float(rng.exponential(mean_sojourn_s[state])))
        n = int(rng.poisson(rates[state] * (end - t)))
        parts.append(np.sort(t + rng.random(n) * (end - t)))
        t, state = end, 1 - state
    arrival = np.concatenate(parts) if parts else np.empty(0)
    name = f"mmpp-{rates[0]:g}-{rates[1]:g}qps"
    return Trace(arrival, _uniform_ids(rng, arrival.size, n_prompts), name, duration_s)


def compress_to_qps(trace: Trace, target_qps: float) -> Trace:
    """The same requests with time rescaled so the mean rate is ``target_qps`` (shape preserved)."""
    _positive("target_qps", target_qps)
    if trace.mean_qps == 0:
        raise ValueError(f"trace {trace.name!r} has no requests to compress to {target_qps} qps")
    factor = trace.mean_qps / target_qps
    return Trace(trace.arrival_s * factor, trace.prompt_id, trace.name, trace.duration_s * factor)
