"""The paper's experiment settings as ready-made simulator configurations.

E1 (the HADIS paper's end-to-end experiment, Figure 7) as the artifact runs it: the packaged L40S
profile with every latency × 0.1, 16 workers on one L40S pool, SLO 6 s, the packaged trace
(10→64 QPS over 347 s). The artifact's controller observes the load every second, smooths it with
an EWMA of half-life 3 observations, multiplies by 1.05 and re-plans every 50 trace-seconds ×
0.1 = 5 s. Workers admit a request that can finish within 1.5 × SLO; the artifact lowers that to
1.0 for Clipper-Heavy (:data:`ARTIFACT_ADMISSION_FACTORS`).

These helpers read the packaged profile, scores and trace (package data, no other I/O).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hadis.api.allocation import GpuPool
from hadis.profiles import load_profile, load_prompt_scores
from hadis.sim.config import SimConfig
from hadis.sim.trace_io import E1_TRACE, load_packaged_trace
from hadis.sim.traces import Trace

E1_TIME_SCALE = 0.1
E1_GPUS = 16
E1_SLO_S = 6.0
E1_INTERVAL_S = 50.0 * E1_TIME_SCALE
ARTIFACT_OBSERVE_S = 1.0
ARTIFACT_EWMA_ALPHA = 1.0 - 0.5 ** (1.0 / 3.0)  # pandas ewm(halflife=3, adjust=False)
ARTIFACT_OVER_PROVISIONING = 1.05
#: The HADIS artifact's own E1 measurements (SLO violation ratio, mean FID), for reference.
PAPER_E1 = {
    "hadis": (0.022, 23.0),
    "diffserve": (0.050, 24.3),
    "proteus": (0.095, 24.8),
    "infaas": (0.137, 24.2),
    "clipper-light": (0.000, 29.8),
    "clipper-heavy": (0.742, 19.95),
}
#: The artifact's per-policy admission factor (default 1.5 elsewhere).
ARTIFACT_ADMISSION_FACTORS = {"clipper-heavy": 1.0}


def e1_config(policy: str | None = None, **overrides: Any) -> SimConfig:
    """The E1 configuration (for ``policy``'s admission factor, when the artifact sets one)."""
    cfg = SimConfig(
        profile=load_profile().time_scaled(E1_TIME_SCALE),
        pools=(GpuPool(name="l40s", gpu_type="L40S", count=E1_GPUS),),
        slo_s=E1_SLO_S,
        interval_s=E1_INTERVAL_S,
        observe_s=ARTIFACT_OBSERVE_S,
        ewma_alpha=ARTIFACT_EWMA_ALPHA,
        over_provisioning=ARTIFACT_OVER_PROVISIONING,
        admission_factor=ARTIFACT_ADMISSION_FACTORS.get(policy or "", 1.5),
        scores=load_prompt_scores(),
    )
    return dataclasses.replace(cfg, **overrides) if overrides else cfg


def e1_trace() -> Trace:
    """The paper's E1 trace (packaged)."""
    return load_packaged_trace(E1_TRACE)
