"""Clipper baselines: every GPU on the lightest / heaviest variant, largest batch within the SLO."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from tests.factories import decision, two_variant_profile
from tests.unit.policy.baseline_cases import (
    check_invariants,
    decision_inputs,
    e1,
    memory_bound_variant,
    two_gpu_profile,
    two_pools,
)

from hadis.api import DecisionInput, GpuPool, Profile
from hadis.policy.clipper import decide_clipper_heavy, decide_clipper_light


def test_light_runs_fast_on_every_gpu_at_its_largest_batch_within_the_slo() -> None:
    # fast: L(8) = 8 · 0.1 · 0.9 = 0.72 s ≤ 2 s, the largest profiled batch
    a = decide_clipper_light(decision(two_variant_profile(), demand=10, gpus=4, slo=2.0))
    assert a.policy == "clipper-light"
    assert a.split == {"fast": 1.0}
    [va] = a.variants
    assert (va.variant, va.pool, va.replicas, va.batch_size) == ("fast", "pool", 4, 8)
    assert va.latency_s == pytest.approx(0.72)
    assert va.throughput_qps == pytest.approx(4 * 8 / 0.72)
    assert a.expected_fid == 30.0
    assert a.feasible and not a.shed and a.shed_qps == 0.0


def test_heavy_runs_slow_at_the_largest_batch_meeting_the_slo() -> None:
    # slow: L(2) = 1.8 s ≤ 2 s < L(4) = 3.6 s
    a = decide_clipper_heavy(decision(two_variant_profile(), demand=3, gpus=4, slo=2.0))
    assert a.split == {"slow": 1.0}
    [va] = a.variants
    assert (va.replicas, va.batch_size) == (4, 2)
    assert a.capacity_qps("slow") == pytest.approx(4 * 2 / 1.8)
    assert a.expected_fid == 20.0
    assert a.feasible


def test_heavy_keeps_its_plan_and_sheds_the_uncovered_demand_when_overloaded() -> None:
    a = decide_clipper_heavy(decision(two_variant_profile(), demand=10, gpus=4, slo=2.0))
    assert a.split == {"slow": 1.0} and a.replicas("slow") == 4 and a.batch_size("slow") == 2
    assert not a.feasible and a.shed
    assert a.shed_qps == pytest.approx(10 - 4 * 2 / 1.8)
    assert "shed" in a.reason


def test_batch_one_and_everything_shed_when_no_batch_meets_the_slo() -> None:
    a = decide_clipper_heavy(decision(two_variant_profile(), demand=2, gpus=4, slo=0.5))
    assert a.batch_size("slow") == 1 and a.replicas("slow") == 4
    assert not a.feasible and a.shed_qps == pytest.approx(2.0)


def test_paper_e1_heavy_is_sd35_large_at_batch_2_and_light_is_sdxl_lightning_at_batch_32() -> None:
    # sd35-large measured L(2) = 5.967 s ≤ 6 s < L(4) = 12.07 s (super-linear); sdxl L(32) = 1.44 s
    heavy = decide_clipper_heavy(e1(demand=4))
    assert heavy.split == {"sd35-large": 1.0}
    [va] = heavy.variants
    assert (va.replicas, va.batch_size) == (16, 2)
    assert va.latency_s == pytest.approx(5.967)
    assert heavy.feasible  # 16 · 2 / 5.967 = 5.36 qps ≥ 4
    light = decide_clipper_light(e1(demand=64))
    assert light.split == {"sdxl-lightning": 1.0}
    assert (light.replicas("sdxl-lightning"), light.batch_size("sdxl-lightning")) == (16, 32)
    assert light.feasible and light.expected_fid == 29.76


def test_paper_e1_heavy_sheds_at_the_trace_peak() -> None:
    a = decide_clipper_heavy(e1(demand=64))
    assert not a.feasible
    assert a.shed_qps == pytest.approx(64 - 16 * 2 / 5.967, rel=1e-6)


def test_only_allowed_variants_are_candidates() -> None:
    inp = decision(two_variant_profile(), demand=1, gpus=2, slo=2.0, variants=["fast"])
    assert decide_clipper_heavy(inp).split == {"fast": 1.0}
    paper = e1(demand=1, variants=["sd35-medium", "sd35-large-turbo"])
    assert decide_clipper_light(paper).split == {"sd35-large-turbo": 1.0}
    assert decide_clipper_heavy(paper).split == {"sd35-medium": 1.0}


def test_pools_without_the_variants_gpu_type_stay_empty() -> None:
    inp = DecisionInput(profile=two_gpu_profile(), demand_qps=1, slo_s=2.0, pools=two_pools(3, 5))
    heavy = decide_clipper_heavy(inp)
    assert heavy.gpus_in_pool("t4") == 3 and heavy.gpus_in_pool("a100") == 0
    light = decide_clipper_light(inp)
    assert light.gpus_in_pool("t4") == 3 and light.gpus_in_pool("a100") == 5
    by_pool = {va.pool: va for va in light.variants}
    assert by_pool["a100"].latency_s == pytest.approx(0.36)  # A100 runs fast at half the T4 latency
    assert light.capacity_qps("fast") == pytest.approx(3 * 8 / 0.72 + 5 * 8 / 0.36)


def test_heavy_falls_back_to_a_variant_some_pool_can_run() -> None:
    # only A100 GPUs: slow has no A100 latencies, so the best variant that can run is fast
    inp = DecisionInput(profile=two_gpu_profile(), demand_qps=1, slo_s=2.0, pools=two_pools(0, 4))
    a = decide_clipper_heavy(inp)
    assert a.split == {"fast": 1.0} and a.gpus_in_pool("a100") == 4


def test_memory_limits_the_batch() -> None:
    profile = Profile(name="mem", reference_gpu_type="T4", variants=[memory_bound_variant()])
    inp = decision(profile, demand=1, gpus=2, slo=100.0)
    assert decide_clipper_light(inp).batch_size("big") == 2  # 5 GiB × 4 > 16 GiB


def test_no_gpus_sheds_all_demand_without_raising() -> None:
    a = decide_clipper_heavy(decision(two_variant_profile(), demand=5, gpus=0, slo=2.0))
    assert a.variants == [] and a.split == {"slow": 1.0}
    assert not a.feasible and a.shed_qps == 5.0
    idle = decide_clipper_heavy(decision(two_variant_profile(), demand=0, gpus=0, slo=2.0))
    assert idle.feasible and idle.shed_qps == 0.0


def test_deterministic() -> None:
    inp = DecisionInput(
        profile=two_gpu_profile(),
        demand_qps=7,
        slo_s=1.0,
        pools=[*two_pools(2, 2), GpuPool(name="t4b", gpu_type="T4", count=1)],
    )
    assert decide_clipper_light(inp) == decide_clipper_light(inp)
    assert decide_clipper_heavy(inp) == decide_clipper_heavy(inp)


@settings(max_examples=150, deadline=None)
@given(decision_inputs())
def test_never_raises_and_respects_the_budget(inp: DecisionInput) -> None:
    for decide in (decide_clipper_light, decide_clipper_heavy):
        a = decide(inp)
        check_invariants(inp, a)
        assert len(a.split) == 1
        [name] = a.split
        for p in inp.pools:  # every GPU that can run the variant runs it
            v = inp.profile.variant(name)
            runnable = v.has_gpu(p.gpu_type) and v.perf_on(p.gpu_type).fits_memory(1)
            assert a.gpus_in_pool(p.name) == (p.count if runnable else 0)
