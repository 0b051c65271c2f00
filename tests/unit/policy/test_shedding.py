"""The explicit load-shedding plan: lightest variant everywhere it can run, batch sized to the SLO."""

from __future__ import annotations

import pytest
from tests.factories import decision, two_variant_profile, variant

from hadis.api import DecisionInput, GpuPool, Profile
from hadis.policy.pareto import build_pareto_table
from hadis.policy.shedding import lightest_allowed, shedding_plan


def test_plan_puts_every_gpu_on_the_lightest_variant_at_the_largest_batch_within_the_slo() -> None:
    # fast: L(b) = 0.1 · b · 0.9 for b > 1 → L(4) = 0.36 ≤ 0.5 < L(8) = 0.72
    a = shedding_plan(decision(two_variant_profile(), 100.0, 6, 0.5), "hadis", "Too much load")
    assert a.policy == "hadis" and a.row is None and a.split == {"fast": 1.0}
    assert [(v.variant, v.replicas, v.batch_size) for v in a.variants] == [("fast", 6, 4)]
    assert a.capacity_qps("fast") == pytest.approx(6 * 4 / 0.36)
    assert a.shed_qps == pytest.approx(100.0 - 6 * 4 / 0.36)
    assert not a.feasible and a.shed and a.expected_fid == 30.0
    assert a.reason.startswith("Too much load.") and "shed" in a.reason


def test_no_shed_qps_when_the_plan_covers_the_demand() -> None:
    a = shedding_plan(decision(two_variant_profile(), 10.0, 6, 0.5), "hadis", "queues too long")
    assert a.shed and not a.feasible and a.shed_qps == 0.0


def test_batch_one_when_no_batch_meets_the_slo() -> None:
    a = shedding_plan(decision(two_variant_profile(), 10.0, 3, 0.05), "disc-only", "SLO too tight")
    assert [(v.replicas, v.batch_size) for v in a.variants] == [(3, 1)]
    assert a.shed_qps == 10.0  # L(1) = 0.1 s > SLO: no worker finishes in time, so nothing counts


def test_pools_of_other_gpu_types_and_empty_pools_are_skipped() -> None:
    fast = variant("fast", 0.1, 30.0, gpu="T4")
    slow = variant("slow", 1.0, 20.0, gpu="T4")
    slow = slow.model_copy(update={"perf": [*slow.perf, variant("slow", 0.5, 20.0, gpu="A100").perf[0]]})
    prof = Profile(
        name="p", reference_gpu_type="T4", variants=[fast, slow], sweep=two_variant_profile().sweep
    )
    pools = [
        GpuPool(name="t4", gpu_type="T4", count=2),
        GpuPool(name="a100", gpu_type="A100", count=4),
        GpuPool(name="spare", gpu_type="T4", count=0),
    ]
    inp = DecisionInput(
        profile=prof, table=build_pareto_table(prof.sweep), demand_qps=5, slo_s=1, pools=pools
    )
    a = shedding_plan(inp, "hadis", "x")
    assert [(v.variant, v.pool, v.replicas) for v in a.variants] == [("fast", "t4", 2)]


def test_lightest_respects_the_allowed_variants() -> None:
    inp = decision(two_variant_profile(), 1.0, 2, 1.0, variants=["slow"])
    assert lightest_allowed(inp).name == "slow"
    assert shedding_plan(inp, "hadis", "x").split == {"slow": 1.0}
