"""The explicit load-shedding plan: what every cascade policy returns when no table row is feasible.

Instead of raising, a policy that cannot meet the SLO for the whole demand serves as much as it can
with the cheapest configuration: the lightest allowed variant on every GPU that can run it, each
worker at the largest profiled batch whose latency meets the SLO (batch 1 if none does). The
demand beyond that capacity is reported as ``shed_qps``; the gateway's admission control answers
those requests with an explicit error instead of letting them time out. Only workers whose batch
latency meets the SLO count as capacity: a worker that cannot finish a batch in time serves nobody
in time (the same convention as the non-cascade baselines).
"""

from __future__ import annotations

from hadis.api.allocation import Allocation, DecisionInput
from hadis.api.profile import Variant
from hadis.policy.common import single_variant_plan


def lightest_allowed(inp: DecisionInput) -> Variant:
    """The allowed variant with the smallest batch-1 latency on the reference GPU (ties: worse FID)."""
    ref = inp.profile.reference_gpu_type
    variants = [inp.profile.variant(n) for n in inp.allowed_variants]
    return min(variants, key=lambda v: (v.perf_on(ref).latency(1), -v.fid, v.name))


def shedding_plan(inp: DecisionInput, policy: str, reason: str) -> Allocation:
    """The lightest allowed variant on every GPU of every pool whose GPU type it has latencies for.

    ``reason`` says why no cascade row was feasible; the plan's capacity, the shed demand and the
    SLO check are appended to it. The plan is always flagged ``feasible=False, shed=True``: it is
    the fallback of a policy that found no feasible configuration. Never raises for a valid
    :class:`DecisionInput`.
    """
    v = lightest_allowed(inp)
    why = f"{reason.rstrip('. ')}. Load-shedding plan: every query goes to the lightest variant"
    plan = single_variant_plan(inp, policy, v, why)
    return plan.model_copy(update={"feasible": False, "shed": True})
