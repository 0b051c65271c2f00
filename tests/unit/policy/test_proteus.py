"""Proteus: MILP over workers and batches per variant, maximising normalised quality × workers.

Two-variant profile at SLO 2 s: slow serves 1.0 qps per GPU at batch 1 and 1.11 at batch 2
(1.8 s); fast 10 at batch 1 and 11.1 at batches 2-8.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from tests.factories import decision, two_variant_profile
from tests.unit.policy.baseline_cases import (
    check_invariants,
    decision_inputs,
    e1,
    same_decision,
    two_gpu_profile,
    two_pools,
)

from hadis.api import Allocation, DecisionInput
from hadis.policy.proteus import HEADROOM, decide_proteus, normalised_quality

LARGE, LIGHTNING = "sd35-large", "sdxl-lightning"


def two(demand: float, **kw: object) -> Allocation:
    return decide_proteus(decision(two_variant_profile(), demand=demand, gpus=4, slo=2.0, **kw))


def test_normalised_quality_maps_the_best_fid_to_1_and_the_worst_to_0() -> None:
    profile = e1(0).profile
    q = normalised_quality(profile.variants)
    assert q[LARGE] == 1.0 and q[LIGHTNING] == 0.0
    assert q["sd35-medium"] == pytest.approx((29.76 - 20.61) / (29.76 - 19.95))
    same = [v.model_copy(update={"fid": 25.0}) for v in profile.variants]
    assert set(normalised_quality(same).values()) == {1.0}


def test_low_demand_puts_every_gpu_on_the_heaviest_variant() -> None:
    a = two(3)  # 4 slow GPUs at batch 2 serve 4.44 qps ≥ 1.25 · 3
    assert a.split == {"slow": 1.0}
    assert (a.replicas("slow"), a.batch_size("slow")) == (4, 2)
    assert a.feasible and a.expected_fid == 20.0
    assert a.solver_status == "Optimal"
    paper = decide_proteus(e1(2))
    assert paper.split == {LARGE: 1.0} and paper.replicas(LARGE) == 16
    # batch 1 (2.7 s, 0.370 qps/GPU) beats the measured super-linear batch 2 (5.967 s, 0.335 qps/GPU)
    assert paper.batch_size(LARGE) == 1


def test_higher_demand_moves_the_fewest_workers_needed_to_the_light_variant() -> None:
    a = two(20)  # need 25 qps: 1 slow + 3 fast = 34.4 qps; 2 slow + 2 fast = 24.4 qps is too little
    assert (a.replicas("slow"), a.replicas("fast")) == (1, 3)
    slow_cap = 2 / 1.8  # best quality first: slow takes what its one worker serves, fast the rest
    assert a.split == pytest.approx({"slow": slow_cap / 20, "fast": 1 - slow_cap / 20})
    assert a.expected_fid == pytest.approx(slow_cap / 20 * 20 + (1 - slow_cap / 20) * 30)
    assert sum(va.throughput_qps for va in a.variants) >= HEADROOM * 20


def test_the_quality_first_split_keeps_every_variant_within_its_capacity() -> None:
    a = two(5)  # 3 slow + 1 fast; a worker-count split would send slow 3.75 qps, it serves 3.33
    assert (a.replicas("slow"), a.replicas("fast")) == (3, 1)
    assert a.feasible and not a.shed and a.shed_qps == 0
    assert a.split == pytest.approx({"slow": 3 * 2 / 1.8 / 5, "fast": 1 - 3 * 2 / 1.8 / 5})
    assert all(a.share(v) * 5 <= a.capacity_qps(v) + 1e-9 for v in a.split)


def test_paper_e1_shifts_workers_to_lighter_variants_as_demand_grows() -> None:
    demands = [0, 2, 5, 10, 20, 40, 64, 100]
    plans = [decide_proteus(e1(d)) for d in demands]
    heavy = [p.replicas(LARGE) for p in plans]
    fids = [p.expected_fid for p in plans]
    assert heavy == sorted(heavy, reverse=True) and heavy[0] == 16 and heavy[-1] < 16
    assert fids == sorted(fids) and fids[-1] > fids[0]
    for d, p in zip(demands, plans, strict=True):
        assert p.gpus_used == 16
        assert sum(va.throughput_qps for va in p.variants) >= HEADROOM * d - 1e-9
        assert all(va.latency_s <= 6.0 for va in p.variants)


def test_beyond_the_headroom_falls_back_to_the_lightest_on_every_gpu() -> None:
    # 4 fast GPUs serve at most 44.4 qps < 1.25 · 40, but they still cover 40 qps
    a = two(40)
    assert a.split == {"fast": 1.0} and a.replicas("fast") == 4 and a.batch_size("fast") == 8
    assert a.feasible and a.solver_status == "not solved"
    assert "fallback" in a.reason
    over = two(50)
    assert over.split == {"fast": 1.0}
    assert not over.feasible and over.shed
    assert over.shed_qps == pytest.approx(50 - 4 * 8 / 0.72)


def test_the_observed_queue_tightens_the_latency_bound() -> None:
    # W = queue / arrivals; the bound is L(b) + 1.2 · W ≤ SLO
    a = two(1, queue_lengths={"slow": 2.0}, arrival_qps={"slow": 4.0})  # W = 0.5: 1.0 + 0.6 ok, 1.8 + 0.6 not
    assert a.split == {"slow": 1.0} and a.batch_size("slow") == 1
    b = two(1, queue_lengths={"slow": 4.0}, arrival_qps={"slow": 4.0})  # W = 1: 1.0 + 1.2 > 2
    assert b.split == {"fast": 1.0}
    c = two(1, queue_lengths={"slow": 40.0})  # no arrivals: nothing waits behind the queue
    assert c.split == {"slow": 1.0}


def test_multi_pool_respects_each_pool_and_its_gpu_types() -> None:
    inp = DecisionInput(profile=two_gpu_profile(), demand_qps=1, slo_s=2.0, pools=two_pools(2, 3))
    a = decide_proteus(inp)
    assert a.gpus_in_pool("t4") == 2 and a.gpus_in_pool("a100") == 3
    assert {va.variant for va in a.variants if va.pool == "t4"} == {"slow"}
    assert {va.variant for va in a.variants if va.pool == "a100"} == {"fast"}  # slow cannot run on A100
    assert a.split == {"slow": 1.0, "fast": 0.0}  # 2 slow GPUs serve the whole 1 qps


def test_only_allowed_variants_are_used() -> None:
    a = decide_proteus(e1(2, variants=["sd35-medium", "sd35-large-turbo"]))
    assert a.split == {"sd35-medium": 1.0}


def test_no_gpus_sheds_everything_without_raising() -> None:
    a = decide_proteus(decision(two_variant_profile(), demand=5, gpus=0, slo=2.0))
    assert a.variants == [] and not a.feasible and a.shed_qps == 5.0


def test_deterministic() -> None:
    for d in (5, 37, 64):
        assert same_decision(decide_proteus(e1(d)), decide_proteus(e1(d)))


@settings(max_examples=80, deadline=None)
@given(decision_inputs())
def test_never_raises_and_splits_best_quality_first(inp: DecisionInput) -> None:
    a = decide_proteus(inp)
    check_invariants(inp, a)
    if a.solver_status == "Optimal":
        assert all(va.latency_s <= inp.slo_s for va in a.variants)
        assert sum(va.throughput_qps for va in a.variants) >= HEADROOM * inp.demand_qps - 1e-6
        if inp.demand_qps > 0:
            # best FID first, each variant within its capacity; the 1.25·D headroom means no shedding
            for v, share in a.split.items():
                assert share * inp.demand_qps <= a.capacity_qps(v) + 1e-6
            fids = sorted(inp.profile.variant(v).fid for v, share in a.split.items() if share > 0)
            full = [v for v, sh in a.split.items() if sh > 0 and inp.profile.variant(v).fid < fids[-1]]
            assert all(a.share(v) * inp.demand_qps == pytest.approx(a.capacity_qps(v)) for v in full)
            assert a.feasible and a.shed_qps == 0
