"""Demand estimation for the control loop: EWMA of observed arrival rates × over-provisioning (pure)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemandEstimate:
    """The smoothed arrival rate after the observations seen so far (``None`` before the first)."""

    alpha: float
    over_provisioning: float
    smoothed_qps: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1:
            raise ValueError(f"ewmaAlpha must be in (0, 1], got {self.alpha}")
        if self.over_provisioning < 1:
            raise ValueError(f"overProvisioning must be ≥ 1, got {self.over_provisioning}")

    def observe(self, qps: float) -> DemandEstimate:
        """The estimate after one more observation (a negative or NaN rate is a caller bug)."""
        if not qps >= 0:
            raise ValueError(f"observed arrival rate must be ≥ 0, got {qps}")
        prev = self.smoothed_qps
        new = qps if prev is None else self.alpha * qps + (1 - self.alpha) * prev
        return DemandEstimate(self.alpha, self.over_provisioning, new)

    @property
    def demand_qps(self) -> float:
        """What to provision for: the smoothed rate × over-provisioning (0 before any observation)."""
        return (self.smoothed_qps or 0.0) * self.over_provisioning
