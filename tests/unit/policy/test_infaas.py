"""INFaaS: one variant on all GPUs, stepped down on expected latency / queue, up when well under the SLO.

Paper E1 numbers (latencies × 0.1, 16 L40S, SLO 6 s), all-GPU in-time throughput at the largest batch
within the SLO: sd35-large b=2 5.967 s → 5.36 qps; sd35-medium b=4 4.68 s → 13.7 qps;
sd35-large-turbo b=32 3.744 s → 137 qps; sdxl-lightning b=32 1.44 s → 356 qps.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from tests.unit.policy.baseline_cases import (
    check_invariants,
    decision_inputs,
    e1,
    previous,
    two_gpu_profile,
    two_pools,
)

from hadis.api import DecisionInput
from hadis.policy.infaas import _ladder, decide_infaas

LARGE, MEDIUM, TURBO, LIGHTNING = "sd35-large", "sd35-medium", "sd35-large-turbo", "sdxl-lightning"


def after(current: str, demand: float, **kw: object) -> str:
    """The variant INFaaS picks on E1 when ``current`` served every query in the previous interval."""
    a = decide_infaas(e1(demand, previous=previous("infaas", {current: 1.0}), **kw))
    [name] = a.split
    return name


def test_without_history_starts_at_the_heaviest_variant_covering_the_demand() -> None:
    a = decide_infaas(e1(demand=4))
    assert a.split == {LARGE: 1.0}
    assert (a.replicas(LARGE), a.batch_size(LARGE)) == (16, 2)
    assert a.feasible
    assert decide_infaas(e1(demand=10)).split == {MEDIUM: 1.0}  # sd35-large serves only 5.36 qps
    assert decide_infaas(e1(demand=100)).split == {TURBO: 1.0}


def test_without_history_and_beyond_every_variant_serves_with_the_lightest_and_sheds() -> None:
    a = decide_infaas(e1(demand=500))
    assert a.split == {LIGHTNING: 1.0}
    assert not a.feasible and a.shed
    assert a.shed_qps == pytest.approx(500 - 16 * 32 / 1.44)


def test_holds_while_the_expected_latency_is_between_089_slo_and_the_slo() -> None:
    # E = 5.967 s ∈ [5.34, 6] s
    assert after(LARGE, demand=4) == LARGE


def test_steps_down_one_level_when_the_queue_pushes_the_expected_latency_over_the_slo() -> None:
    # E = 5.967 + 0.225 · 10 / 5.36 = 6.39 s > 6 s
    assert after(LARGE, demand=4, queue_lengths={LARGE: 10.0}) == MEDIUM
    # a small queue does not: E = 5.967 + 0.225 · 0.5 / 5.36 = 5.99 s
    assert after(LARGE, demand=4, queue_lengths={LARGE: 0.5}) == LARGE


def test_jumps_to_the_lightest_when_the_total_queue_exceeds_60() -> None:
    assert after(LARGE, demand=4, queue_lengths={LARGE: 61.0}) == LIGHTNING
    assert after(LARGE, demand=4, queue_lengths={LARGE: 30.0, MEDIUM: 31.0}) == LIGHTNING
    # exactly 60 is no emergency: an ordinary step down (E = 5.967 + 0.225 · 60 / 5.36 > 6)
    assert after(LARGE, demand=4, queue_lengths={LARGE: 60.0}) == MEDIUM


def test_steps_up_one_level_when_latency_is_well_under_the_slo() -> None:
    assert after(MEDIUM, demand=2) == LARGE  # E = 4.68 s < 5.34 s
    assert after(TURBO, demand=2) == MEDIUM  # one level, not straight to the heaviest
    assert after(LIGHTNING, demand=20) == TURBO


def test_does_not_step_up_to_a_variant_that_cannot_serve_the_demand() -> None:
    a = decide_infaas(e1(demand=10, previous=previous("infaas", {MEDIUM: 1.0})))
    assert a.split == {MEDIUM: 1.0}  # sd35-large would serve 5.36 of 10 qps
    assert "hold" in a.reason
    assert after(TURBO, demand=20) == TURBO  # sd35-medium serves 13.7 qps < 20


def test_a_mixed_previous_split_counts_as_no_history() -> None:
    prev = previous("proteus", {LARGE: 0.5, LIGHTNING: 0.5})
    assert decide_infaas(e1(demand=10, previous=prev)).split == {MEDIUM: 1.0}


def test_a_previous_variant_unknown_to_the_profile_counts_as_no_history() -> None:
    assert after("retired-model", demand=10) == MEDIUM


def test_a_previous_variant_no_longer_allowed_is_replaced_by_the_next_lighter_one() -> None:
    allowed = [LIGHTNING, TURBO, MEDIUM]
    assert after(LARGE, demand=2, variants=allowed) == MEDIUM
    assert after(LARGE, demand=2, variants=[TURBO]) == TURBO


def test_variants_that_cannot_meet_the_slo_are_skipped() -> None:
    # SLO 2 s: sd35-large (2.7 s at batch 1) can never meet it, so sd35-medium is the top of the ladder
    assert after(MEDIUM, demand=0.5, slo=2.0) == MEDIUM
    assert decide_infaas(e1(demand=0.5, slo=2.0)).split == {MEDIUM: 1.0}


def test_no_variant_meets_the_slo_serves_with_the_lightest_and_sheds_everything() -> None:
    a = decide_infaas(e1(demand=3, slo=0.01))
    assert a.split == {LIGHTNING: 1.0} and a.batch_size(LIGHTNING) == 1
    assert not a.feasible and a.shed_qps == pytest.approx(3.0)


def test_multi_pool_uses_every_gpu_that_can_run_the_variant() -> None:
    inp = DecisionInput(
        profile=two_gpu_profile(),
        demand_qps=1,
        slo_s=2.0,
        pools=two_pools(2, 3),
        previous=previous("infaas", {"fast": 1.0}),
    )
    a = decide_infaas(inp)  # fast: E = 0.72 s < 1.78 s; slow serves 2 · 2 / 1.8 = 2.2 qps ≥ 1
    assert a.split == {"slow": 1.0}
    assert a.gpus_in_pool("t4") == 2 and a.gpus_in_pool("a100") == 0
    low = decide_infaas(inp.model_copy(update={"demand_qps": 20.0}))
    assert low.split == {"fast": 1.0}
    assert low.gpus_in_pool("t4") == 2 and low.gpus_in_pool("a100") == 3


def test_deterministic() -> None:
    inp = e1(demand=30, previous=previous("infaas", {TURBO: 1.0}), queue_lengths={TURBO: 12.0})
    assert decide_infaas(inp) == decide_infaas(inp)


@settings(max_examples=200, deadline=None)
@given(decision_inputs())
def test_never_raises_and_moves_at_most_one_level_unless_jumping_to_the_lightest(inp: DecisionInput) -> None:
    a = decide_infaas(inp)
    check_invariants(inp, a)
    assert len(a.split) == 1
    [chosen] = a.split
    prev = inp.previous.split if inp.previous else {}
    ladder = [v.name for v in _ladder(inp)]
    if len(prev) == 1 and (cur := next(iter(prev))) in ladder:
        i, j = ladder.index(cur), ladder.index(chosen)
        assert j == 0 or abs(j - i) <= 1, "one level at a time, except the jump to the lightest"
