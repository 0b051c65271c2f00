"""Restricted cascade policies: each uses only its rows, on the same MILP as HADIS."""

from __future__ import annotations

import pytest
from tests.factories import decision, two_variant_profile

from hadis.api import Allocation, DecisionInput, GpuPool, Profile
from hadis.policy.allocator import solve_hadis
from hadis.policy.cascade_plan import check_allocation
from hadis.policy.cascade_variants import (
    decide_diffserve,
    decide_disc_only,
    decide_fixed_pair,
    decide_router_only,
    default_pair,
)


def e1_input(profile: Profile, demand: float, **kw: object) -> DecisionInput:
    pools = [GpuPool(name="l40s", gpu_type="L40S", count=16)]
    return DecisionInput(profile=profile, demand_qps=demand, slo_s=6.0, pools=pools, **kw)


@pytest.fixture(scope="module")
def e1(paper_profile: Profile) -> Profile:
    return paper_profile.time_scaled(0.1)


def row_of(a: Allocation) -> tuple[str, str, float, float]:
    assert a.row is not None, a.reason
    return a.row.key


@pytest.mark.parametrize("demand", [5.0, 20.0, 40.0])
def test_diffserve_uses_turbo_to_large_with_the_discriminator_only(e1: Profile, demand: float) -> None:
    inp = e1_input(e1, demand)
    a = decide_diffserve(inp)
    light, heavy, theta, _ = row_of(a)
    assert (light, heavy, theta) == ("sd35-large-turbo", "sd35-large", 0.0) and a.policy == "diffserve"
    assert check_allocation(inp, a) == []


def test_diffserve_falls_back_to_lightest_and_best_allowed(e1: Profile) -> None:
    inp = e1_input(e1, 5.0, variants=["sdxl-lightning", "sd35-medium", "sd35-large-turbo"])
    assert default_pair(inp) == ("sdxl-lightning", "sd35-medium")
    assert row_of(decide_diffserve(inp))[:3] == ("sdxl-lightning", "sd35-medium", 0.0)


@pytest.mark.parametrize("demand", [5.0, 30.0, 64.0, 150.0])
def test_router_only_and_disc_only_keep_to_their_rows(e1: Profile, demand: float) -> None:
    r, d = decide_router_only(e1_input(e1, demand)), decide_disc_only(e1_input(e1, demand))
    assert row_of(r)[3] == 0.0 and r.policy == "router-only"
    assert row_of(d)[2] == 0.0 and d.policy == "disc-only"


@pytest.mark.parametrize("demand", [5.0, 30.0, 64.0])
def test_hadis_is_at_least_as_good_as_every_restricted_policy_here(e1: Profile, demand: float) -> None:
    best = solve_hadis(e1_input(e1, demand)).expected_fid
    for decide in (decide_diffserve, decide_router_only, decide_disc_only, decide_fixed_pair):
        assert best <= decide(e1_input(e1, demand)).expected_fid


def test_ablations_lose_quality_where_both_knobs_matter(e1: Profile) -> None:
    # at 30 qps HADIS mixes router and discriminator (θ > 0 and τ > 0)
    h = solve_hadis(e1_input(e1, 30.0))
    assert h.row is not None and h.row.theta > 0 and h.row.tau > 0
    assert decide_router_only(e1_input(e1, 30.0)).expected_fid > h.expected_fid
    assert decide_disc_only(e1_input(e1, 30.0)).expected_fid > h.expected_fid


def test_fixed_pair_uses_only_the_given_pair(e1: Profile) -> None:
    inp = e1_input(e1, 30.0, fixed_pair=("sdxl-lightning", "sd35-medium"))
    a = decide_fixed_pair(inp)
    assert row_of(a)[:2] == ("sdxl-lightning", "sd35-medium") and a.policy == "fixed-pair"
    assert set(a.active_variants) <= {"sdxl-lightning", "sd35-medium"}


def test_fixed_pair_outside_the_allowed_variants_sheds_with_a_reason() -> None:
    inp = decision(two_variant_profile(), 5.0, 4, 10.0, variants=["fast"], fixed_pair=("fast", "slow"))
    a = decide_fixed_pair(inp)
    assert a.shed and a.row is None and "no fast->slow row" in a.reason


def test_overload_sheds_for_every_restricted_policy(e1: Profile) -> None:
    for decide in (decide_diffserve, decide_router_only, decide_disc_only, decide_fixed_pair):
        a = decide(e1_input(e1, 2000.0))
        assert a.shed and not a.feasible and a.shed_qps > 0
