"""What one observation of the load says, and how it moves the demand estimate (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hadis.api.service import AllocationSettings
from hadis.policy.demand import DemandEstimate


class MetricsUnavailable(Exception):
    """The load could not be observed; ``reason`` says why (it goes into the Degraded condition)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LoadObservation:
    """Rates in requests (images) per second over the rate window ending at ``at`` (unix time)."""

    arrival_qps: float
    variant_qps: dict[str, float] = field(default_factory=dict)
    queue_lengths: dict[str, float] = field(default_factory=dict)
    at: float = 0.0


def estimate_demand(
    prev: DemandEstimate | None, obs: LoadObservation, settings: AllocationSettings
) -> DemandEstimate:
    """One EWMA step with ``obs``; the spec's current α and over-provisioning always apply (an
    edited spec keeps the smoothed rate so far, with the new settings)."""
    smoothed = prev.smoothed_qps if prev is not None else None
    base = DemandEstimate(settings.ewma_alpha, settings.over_provisioning, smoothed)
    return base.observe(obs.arrival_qps)
