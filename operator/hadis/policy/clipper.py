"""Clipper baselines: one fixed variant on every GPU, whatever the load.

``clipper-light`` serves everything with the lightest allowed variant, ``clipper-heavy`` with the
heaviest (best FID). Each worker runs the largest profiled batch whose latency meets the SLO (the
smallest batch that fits memory when none does). When the in-time capacity is below the demand the
plan stays the same and is flagged as shedding the uncovered demand.

Only variants that some pool can run are candidates (a pool can run a variant when it has GPUs of a
type the variant has latencies for and the batch fits memory); when no allowed variant can run
anywhere, the plan names the lightest / heaviest allowed variant with no workers and sheds all.
"""

from __future__ import annotations

from hadis.api.allocation import Allocation, DecisionInput
from hadis.policy.common import runnable_by_weight, single_variant_plan


def decide_clipper_light(inp: DecisionInput) -> Allocation:
    """Every GPU on the lightest allowed variant (smallest batch-1 latency on the reference GPU)."""
    v = runnable_by_weight(inp)[0]
    return single_variant_plan(
        inp, "clipper-light", v, f"clipper-light: always the lightest variant {v.name}"
    )


def decide_clipper_heavy(inp: DecisionInput) -> Allocation:
    """Every GPU on the heaviest allowed variant (lowest FID; ties: the lighter one)."""
    candidates = runnable_by_weight(inp)
    v = min(candidates, key=lambda c: (c.fid, candidates.index(c)))
    return single_variant_plan(
        inp, "clipper-heavy", v, f"clipper-heavy: always the best-quality variant {v.name}"
    )
