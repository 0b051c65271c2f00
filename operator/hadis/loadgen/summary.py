"""Outcomes of a load run and their summary (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Outcome:
    """One request: when it was due and sent, when its answer came, and what the answer was."""

    index: int
    prompt_id: int
    due_s: float  # scheduled time, seconds from the start of the run
    sent_s: float
    done_s: float
    status: int  # HTTP status, 0 when no HTTP answer (connection error, timeout)
    error: str | None = None  # OpenAI-style error code/type, or the transport error
    variant: str | None = None
    escalated: bool | None = None
    router_score: float | None = None
    p_real: float | None = None
    router_hard: bool | None = None
    queue_ms: float | None = None  # at the workers (both stages for an escalated request)
    generation_ms: float | None = None

    @property
    def latency_s(self) -> float:
        return self.done_s - self.due_s

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


@dataclass(frozen=True)
class LoadSummary:
    requests: int
    ok: int
    errors: dict[str, int]
    slo_s: float
    violations: int
    slo_violation_ratio: float
    mean_fid: float | None
    served_mix: dict[str, float]
    throughput_qps: float
    goodput_qps: float
    latency_p50_s: float | None
    latency_p99_s: float | None
    escalation_fraction: float | None
    max_send_lag_s: float
    duration_s: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def summarise(outcomes: Sequence[Outcome], slo_s: float, fids: Mapping[str, float]) -> LoadSummary:
    """Violation = an error or an image later than the SLO; mean FID = the FIDs of the served mix."""
    n = len(outcomes)
    ok = [o for o in outcomes if o.ok]
    in_slo = [o for o in ok if o.latency_s <= slo_s]
    errors = Counter(o.error or f"http_{o.status}" for o in outcomes if not o.ok)
    mix = Counter(o.variant for o in ok if o.variant)
    served = sum(mix.values())
    known = [(v, c) for v, c in mix.items() if v in fids]
    mean_fid = sum(fids[v] * c for v, c in known) / sum(c for _, c in known) if known else None
    duration = max((o.done_s for o in outcomes), default=0.0) - min((o.due_s for o in outcomes), default=0.0)
    lat = np.array([o.latency_s for o in ok]) if ok else None
    checked = [o for o in ok if o.escalated is not None]
    return LoadSummary(
        requests=n,
        ok=len(ok),
        errors=dict(errors),
        slo_s=slo_s,
        violations=n - len(in_slo),
        slo_violation_ratio=(n - len(in_slo)) / n if n else 0.0,
        mean_fid=mean_fid,
        served_mix={v: c / served for v, c in sorted(mix.items())} if served else {},
        throughput_qps=len(ok) / duration if duration > 0 else 0.0,
        goodput_qps=len(in_slo) / duration if duration > 0 else 0.0,
        latency_p50_s=float(np.percentile(lat, 50)) if lat is not None else None,
        latency_p99_s=float(np.percentile(lat, 99)) if lat is not None else None,
        escalation_fraction=(sum(bool(o.escalated) for o in checked) / len(checked)) if checked else None,
        max_send_lag_s=max((o.sent_s - o.due_s for o in outcomes), default=0.0),
        duration_s=duration,
    )
