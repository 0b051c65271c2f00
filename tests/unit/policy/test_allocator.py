"""The HADIS MILP: known allocations, its optimum against brute force, and each modelled effect."""

from __future__ import annotations

import pulp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.factories import decision, row, two_variant_profile, variant

from hadis.api import Allocation, BatchPoint, DecisionInput, GpuPerf, GpuPool, Profile, Variant
from hadis.policy.allocator import BATCH_WAIT_FACTOR, PAPER_BATCH_WAIT_FACTOR, solve_cascade, solve_hadis
from hadis.policy.allocator_reference import enumerate_best
from hadis.policy.cascade_plan import check_allocation, path_latency, stage_latencies
from hadis.policy.pareto import build_pareto_table


def e1_input(profile: Profile, demand: float, gpus: int = 16, **kw: object) -> DecisionInput:
    return DecisionInput(
        profile=profile,
        table=build_pareto_table(profile.sweep),
        demand_qps=demand,
        slo_s=6.0,
        pools=[GpuPool(name="l40s", gpu_type="L40S", count=gpus)],
        **kw,
    )


@pytest.fixture(scope="module")
def e1(paper_profile: Profile) -> Profile:
    return paper_profile.time_scaled(0.1)


def placement(a: object) -> list[tuple[str, str, int, int]]:
    return [(v.variant, v.pool, v.replicas, v.batch_size) for v in a.variants]  # type: ignore[attr-defined]


# --- known allocations ---------------------------------------------------------------------------


def test_two_variant_low_load_sends_everything_to_the_slow_model() -> None:
    a = solve_hadis(decision(two_variant_profile(), 5, 8, 10.0), use_spare_gpus=False)
    assert a.feasible and not a.shed and a.solver_status == "Optimal"
    assert a.row is not None and (a.row.theta, a.row.tau) == (1.0, 0.5) and a.expected_fid == 19.75
    # 5 qps on slow at batch 2: 2 / (2 · 1.0 · 0.9) = 1.11 qps per GPU → 5 GPUs; fast gets no traffic
    assert placement(a) == [("slow", "pool", 5, 2)]


@pytest.mark.parametrize(
    ("demand", "theta", "fast_gpus", "slow_gpus"),
    [(20, 0.3, 2, 6), (40, 0.1, 4, 4)],
)
def test_two_variant_more_load_routes_less_to_the_slow_model(
    demand: float, theta: float, fast_gpus: int, slow_gpus: int
) -> None:
    a = solve_hadis(decision(two_variant_profile(), demand, 8, 10.0), use_spare_gpus=False)
    assert a.row is not None and (a.row.theta, a.row.tau) == (theta, 0.0)
    assert placement(a) == [("fast", "pool", fast_gpus, 2), ("slow", "pool", slow_gpus, 2)]


def test_two_variant_only_fast_fits_the_highest_load() -> None:
    a = solve_hadis(decision(two_variant_profile(), 60, 8, 10.0), use_spare_gpus=False)
    assert a.row is not None and a.row.p == 0.0 and placement(a) == [("fast", "pool", 6, 2)]


def test_e1_low_load_picks_a_sd35_large_row(e1: Profile) -> None:
    a = solve_hadis(e1_input(e1, 10))
    assert a.row is not None and (a.row.light, a.row.heavy) == ("sd35-medium", "sd35-large")
    assert a.expected_fid < 20.0 and check_allocation(e1_input(e1, 10), a) == []


def test_e1_at_64_qps_picks_turbo_to_medium_and_meets_every_constraint(e1: Profile) -> None:
    inp = e1_input(e1, 64)
    a = solve_hadis(inp)
    assert a.row is not None and a.row.label == "sd35-large-turbo->sd35-medium θ=0.00 τ=0.10"
    assert a.gpus_in_pool("l40s") <= 16
    assert a.capacity_qps("sd35-large-turbo") >= 64 * 1.0 and a.capacity_qps("sd35-medium") >= 64 * 0.1
    assert path_latency(a.row, stage_latencies(inp, a, 1.0)) <= 6.0
    assert "64 qps" in a.reason and "SLO 6" in a.reason
    # 37 rows of the 52 have a lower FID than 23.85; the reason says why none of them was chosen
    assert "The 37 row(s) with a lower FID need more GPUs" in a.reason


def test_e1_quality_degrades_monotonically_with_load(e1: Profile) -> None:
    fids = [solve_hadis(e1_input(e1, d)).expected_fid for d in (5, 20, 40, 64, 100, 200)]
    assert fids == sorted(fids) and fids[0] < fids[-1]


def test_zero_demand_gives_the_best_row_that_fits_with_one_gpu_per_stage(e1: Profile) -> None:
    a = solve_hadis(e1_input(e1, 0), use_spare_gpus=False, batch_wait_factor=PAPER_BATCH_WAIT_FACTOR)
    assert a.feasible and a.row is not None and a.expected_fid == 19.29
    assert {v: a.replicas(v) for v in a.active_variants} == {"sd35-medium": 1, "sd35-large": 1}
    assert "No row of the table has a lower FID" in a.reason
    # provisioning for a wait behind an in-flight batch (2 × L), medium + large no longer fit 6 s
    # on the escalated path (2 × 1.3 + 2 × 2.7 = 8 s); the best τ = 0 row (paths 2.6 s / 5.4 s) wins
    b = solve_hadis(e1_input(e1, 0), use_spare_gpus=False)
    assert b.row is not None and (b.row.tau, b.expected_fid) == (0.0, 19.3)


# --- the optimum against brute force -------------------------------------------------------------


PAIRS = (("a", "b", 0.1, 0.4, 30, 24), ("a", "c", 0.1, 1.2, 30, 19), ("b", "c", 0.4, 1.2, 24, 19))


def three_variant_profile() -> Profile:
    vs = [variant("a", 0.1, 30.0), variant("b", 0.4, 24.0, discount=0.7), variant("c", 1.2, 19.0)]
    sweep = [
        row(lt, hv, th, tau, round(cost, 4), round(fid, 4))
        for lt, hv, l1, h1, f0, f1 in PAIRS
        for th in (0.0, 0.25, 0.5)
        for tau in (0.0, 0.3, 0.6)
        for p in [th + (1 - th) * tau]
        for cost in [(1 - th) * l1 + p * h1]
        for fid in [f0 - (f0 - f1) * p - 0.3 * tau]
    ]
    return Profile(name="three", reference_gpu_type="T4", variants=vs, sweep=sweep)


PROFILES = {"two": two_variant_profile(), "three": three_variant_profile()}


@given(
    name=st.sampled_from(sorted(PROFILES)),
    demand=st.floats(0, 60, allow_nan=False),
    gpus=st.integers(0, 14),
    slo=st.sampled_from([0.3, 1.0, 2.5, 6.0]),
    queue=st.sampled_from([0.0, 2.0, 8.0]),
)
@settings(max_examples=60, deadline=None)
def test_milp_optimum_equals_exhaustive_enumeration(
    name: str, demand: float, gpus: int, slo: float, queue: float
) -> None:
    prof = PROFILES[name]
    heavy = prof.variant_names[-1]
    inp = decision(prof, demand, gpus, slo, queue_lengths={heavy: queue}, arrival_qps={heavy: 4.0})
    a = solve_hadis(inp, batch_wait_factor=BATCH_WAIT_FACTOR)
    ref = enumerate_best(inp, inp.table, batch_wait_factor=BATCH_WAIT_FACTOR, drain_backlog=True)
    assert (a.expected_fid if a.feasible else None) == (ref.row.fid if ref else None)
    if a.feasible:
        assert check_allocation(inp, a) == []
    else:
        assert a.shed and a.row is None


# --- determinism, shedding, solver failure -------------------------------------------------------


def test_same_input_same_allocation(e1: Profile) -> None:
    inp = e1_input(e1, 37.5)
    a, b = solve_hadis(inp), solve_hadis(inp)
    assert a.model_dump(exclude={"solve_time_s"}) == b.model_dump(exclude={"solve_time_s"})


def test_ties_go_to_the_cheaper_earlier_row(e1: Profile) -> None:
    # at 300 qps only the three identical θ=τ=0 sdxl-lightning rows (FID 29.75) are feasible
    a = solve_hadis(e1_input(e1, 300))
    assert a.row is not None and a.row.label == "sdxl-lightning->sd35-large θ=0.00 τ=0.00"
    assert a.active_variants == ["sdxl-lightning"]


def test_overload_returns_the_shedding_plan_not_an_exception(e1: Profile) -> None:
    a = solve_hadis(e1_input(e1, 1000))
    assert not a.feasible and a.shed and a.row is None and a.split == {"sdxl-lightning": 1.0}
    assert a.gpus_used == 16 and a.shed_qps == pytest.approx(1000 - a.capacity_qps("sdxl-lightning"))
    assert a.solver_status == "Infeasible" and "1000 qps" in a.reason


@pytest.mark.parametrize(
    "error", [pulp.PulpSolverError("cbc crashed"), PermissionError("cbc crashed: read-only temp dir")]
)
def test_solver_failure_returns_the_shedding_plan(
    e1: Profile, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    class Broken(pulp.PULP_CBC_CMD):  # type: ignore[misc]
        def actualSolve(self, lp: object, **kw: object) -> int:
            raise error

    monkeypatch.setattr(pulp, "PULP_CBC_CMD", Broken)
    a = solve_hadis(e1_input(e1, 20))
    assert a.shed and a.solver_status == "Error" and "cbc crashed" in a.reason


def test_a_row_with_p_rounded_to_zero_has_no_heavy_path() -> None:
    r = row("fast", "slow", 0.005, 0.0, 0.1, 29.9)  # p = 0 within the sweep's rounding tolerance
    r = r.model_copy(update={"p": 0.0})
    inp = decision(two_variant_profile(), 10, 2, 0.5)
    a = solve_cascade(inp, [r], "hadis")
    assert a.feasible and a.active_variants == ["fast"]


# --- modelled effects ----------------------------------------------------------------------------


def sublinear(name: str, l1: float, fid: float, gpu: str, mem_per_image: float | None) -> GpuPerf:
    """Throughput grows with the batch (L(b) = L1·(1 + 0.3(b−1))); memory = mem_per_image · b."""
    pts = [
        BatchPoint(
            batch=b,
            latency_s=l1 * (1 + 0.3 * (b - 1)),
            memory_gib=None if mem_per_image is None else mem_per_image * b,
        )
        for b in (1, 2, 4, 8)
    ]
    return GpuPerf(gpu_type=gpu, gpu_memory_gib=16.0, batches=pts)


def batch_profile(mem_per_image: float | None) -> Profile:
    vs = [
        Variant(
            name=n,
            model=f"m/{n}",
            steps=4,
            guidance_scale=0,
            fid=f,
            perf=[sublinear(n, l1, f, "T4", mem_per_image)],
        )
        for n, l1, f in (("fast", 0.1, 30.0), ("slow", 1.0, 20.0))
    ]
    return Profile(name="batch", reference_gpu_type="T4", variants=vs, sweep=two_variant_profile().sweep)


def test_batches_that_do_not_fit_memory_are_never_chosen() -> None:
    free = solve_hadis(decision(batch_profile(None), 30, 8, 10.0))
    tight = solve_hadis(decision(batch_profile(5.0), 30, 8, 10.0))  # 5 GiB per image on 16 GiB: b ≤ 2
    assert max(v.batch_size for v in free.variants) == 8
    assert max(v.batch_size for v in tight.variants) <= 2
    assert tight.expected_fid > free.expected_fid  # less throughput per GPU → a cheaper row


def test_littles_law_queueing_pushes_to_a_cheaper_row(e1: Profile) -> None:
    calm = solve_hadis(e1_input(e1, 10))
    inp = e1_input(e1, 10, queue_lengths={"sd35-large": 40.0}, arrival_qps={"sd35-large": 10.0})  # W = 4 s
    busy = solve_hadis(inp)
    assert calm.row is not None and calm.row.heavy == "sd35-large"
    assert busy.row is not None and "sd35-large" not in (busy.row.light, busy.row.heavy)
    assert busy.expected_fid > calm.expected_fid and check_allocation(inp, busy) == []


def test_batch_wait_factor_tightens_the_latency_constraint(e1: Profile) -> None:
    inp = e1_input(e1, 5)  # plain: medium → large θ=0.2 τ=0.5, escalated path 2.34 + 2.7 s ≤ 6 s
    plain, cautious = solve_hadis(inp, batch_wait_factor=PAPER_BATCH_WAIT_FACTOR), solve_hadis(inp)
    assert BATCH_WAIT_FACTOR == 2.0
    assert cautious.expected_fid > plain.expected_fid
    assert check_allocation(inp, cautious, 2.0) == [] and check_allocation(inp, plain, 2.0) != []


def test_spare_gpus_go_to_the_row_as_headroom(e1: Profile) -> None:
    inp = e1_input(e1, 40)
    lean, full = solve_hadis(inp, use_spare_gpus=False), solve_hadis(inp)
    assert lean.row == full.row and lean.gpus_used < 16 == full.gpus_used
    for v in full.active_variants:
        assert full.replicas(v) >= lean.replicas(v)
        assert full.batch_size(v) == lean.batch_size(v)


def test_reconfiguration_cost_stops_flapping_when_demand_wobbles(e1: Profile) -> None:
    def labels(cost: float) -> list[str]:
        prev, out = None, []
        for d in (66, 70, 66, 70, 66):
            a = solve_hadis(e1_input(e1, d, previous=prev, reconfiguration_cost=cost))
            assert a.feasible and a.row is not None
            out.append(a.row.label)
            prev = a
        return out

    free, sticky = labels(0.0), labels(0.5)
    assert len({free[0], free[1]}) == 2 and free == [free[0], free[1]] * 2 + [free[0]]
    assert sticky[:2] == free[:2] and sticky[1:] == [sticky[1]] * 4  # after the forced switch it stays


def test_solve_cascade_with_an_empty_table_sheds(e1: Profile) -> None:
    a = solve_cascade(e1_input(e1, 10), [], "hadis")
    assert a.shed and "0-row table" in a.reason


def test_a_backlog_gets_capacity_to_drain_within_the_slo(e1: Profile) -> None:
    """Little's law on the observed arrival rate hides a backlog once the rate changes: 30 requests
    waiting at sd35-medium must be servable within the SLO on top of the new row's share."""
    from hadis.policy.cascade_plan import shares

    def inp(queue: float) -> DecisionInput:
        return e1_input(e1, 21.7, queue_lengths={"sd35-medium": queue}, arrival_qps={"sd35-medium": 17.0})

    def medium_slack(a: Allocation) -> float:
        assert a.row is not None
        thr = sum(v.throughput_qps for v in a.variants if v.variant == "sd35-medium")
        return thr - shares(a.row).get("sd35-medium", 0.0) * 21.7

    table = build_pareto_table(e1.sweep)
    ignored = solve_cascade(inp(30), table, "hadis", use_spare_gpus=False, drain_backlog=False)
    drained = solve_cascade(inp(30), table, "hadis", use_spare_gpus=False)
    assert medium_slack(ignored) < 30 / 6.0 <= medium_slack(drained) + 1e-9
    assert drained.expected_fid > ignored.expected_fid  # the price: a cheaper row for a while
    calm = solve_cascade(inp(0), table, "hadis", use_spare_gpus=False)
    plain = solve_cascade(inp(0), table, "hadis", use_spare_gpus=False, drain_backlog=False)
    assert (calm.row, calm.variants) == (plain.row, plain.variants)  # no backlog, no difference


def test_a_dropped_variants_backlog_counts_for_the_stage_of_the_same_role() -> None:
    from hadis.policy.allocator_model import backlog_drain

    prev_row = row("a", "b", 0.5, 0.2, 1.0, 20.0)
    prev = Allocation(policy="hadis", row=prev_row, demand_qps=1.0, expected_fid=20.0)
    new = row("c", "d", 0.5, 0.2, 1.0, 20.0)
    inp = decision(two_variant_profile(), 1, 4, 6.0).model_copy(
        update={"queue_lengths": {"a": 6.0, "b": 12.0, "c": 3.0}, "previous": prev}
    )
    assert backlog_drain(inp, new, {"c": 0.5, "d": 0.6}) == {"c": 1.5, "d": 2.0}  # (6 + 3) / 6, 12 / 6
    assert backlog_drain(inp, new, {"d": 1.0}) == {"d": 3.0}  # θ = 1: the light stage has no share
