"""The simulator's invariants: every request accounted once, admission, batch limits, re-dispatch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.sim.simkit import cascade, config, fixed, sequence, split

from hadis.sim.engine import DROPPED, FINISHED, simulate, simulate_detailed
from hadis.sim.traces import Trace, poisson_trace


def trace(qps: float, seconds: float, seed: int = 0) -> Trace:
    return poisson_trace(qps, seconds, np.random.default_rng(seed))


def check_accounting(res, cfg) -> None:  # type: ignore[no-untyped-def]
    d, r = res.data, res.report
    assert np.all((d.status == FINISHED) | (d.status == DROPPED))  # nothing pending after draining
    assert r.finished + r.dropped == r.requests == len(d.trace)
    late = (d.status == FINISHED) & (d.finish - d.trace.arrival_s > cfg.slo_s)
    assert r.violations == r.dropped + int(late.sum())
    served = d.status == FINISHED
    # admission: nothing that ran finished after arrival + admission_factor × SLO
    assert np.all(d.finish[served] - d.trace.arrival_s[served] <= cfg.admission_window_s + 1e-9)
    assert np.all(d.finish >= d.trace.arrival_s - 1e-9)
    assert np.all(d.variant[served] >= 0)


def test_huge_budget_means_no_violations() -> None:
    cfg = config(gpus=400)
    res = simulate_detailed(trace(50, 60), fixed(cascade(0.3, 0.3, light=100, heavy=300)), cfg)
    check_accounting(res, cfg)
    assert res.report.violations == 0 and res.report.goodput_qps == pytest.approx(res.report.requests / 60)


def test_overload_drops_explicitly_and_accounts_everything() -> None:
    cfg = config(gpus=4, slo=2.0, record_batches=True)
    res = simulate_detailed(trace(30, 40), fixed(split({"slow": 1.0}, {"slow": 4})), cfg)
    check_accounting(res, cfg)
    r = res.report
    assert r.dropped > 0 and r.slo_violation_ratio > 0.5
    assert r.gpu_utilisation["slow"] > 0.9
    for variant, _pool, _start, k, batch in res.data.batch_log:
        assert variant == "slow" and 1 <= k <= batch == 4


def test_batches_never_exceed_the_allocated_size_and_start_before_admission_deadline() -> None:
    cfg = config(gpus=3, slo=3.0, record_batches=True)
    res = simulate_detailed(trace(12, 30, seed=3), fixed(cascade(0.2, 0.5, light=1, heavy=2, batch=2)), cfg)
    check_accounting(res, cfg)
    sizes = [k for *_, k, b in res.data.batch_log if k > b]
    assert not sizes
    assert {b for *_, b in res.data.batch_log} == {2}
    assert max(k for *_, k, _b in res.data.batch_log) == 2  # dynamic batches do form under load


def test_router_and_escalation_fractions_track_theta_and_tau() -> None:
    cfg = config(gpus=400)
    r = simulate(trace(100, 100), fixed(cascade(0.3, 0.2, light=100, heavy=300)), cfg)
    assert r.router_hard_fraction == pytest.approx(0.3, abs=0.02)
    assert r.escalation_fraction == pytest.approx(0.2, abs=0.02)
    assert r.mean_fid == pytest.approx(25.0)  # the row's FID, all the time


def test_per_prompt_scores_give_the_quantile_shares() -> None:
    from hadis.api.scores import PromptScores

    g = np.random.default_rng(9)
    scores = PromptScores(
        router=g.normal(size=1000), p_real={"fast": g.random((1000, 4)), "slow": g.random((1000, 4))}
    )
    cfg = config(gpus=400, scores=scores)
    r = simulate(trace(100, 100), fixed(cascade(0.4, 0.1, light=100, heavy=300)), cfg)
    assert r.router_hard_fraction == pytest.approx(0.4, abs=0.03)
    assert r.escalation_fraction == pytest.approx(0.1, abs=0.02)
    none = simulate(trace(100, 20), fixed(cascade(0.0, 0.0, light=100, heavy=300)), cfg)
    assert none.router_hard_fraction == 0.0 and none.escalation_fraction == 0.0


def test_escalation_share_is_tau_of_the_light_routed_prompts_when_scores_correlate() -> None:
    """Hard prompts' light images score low (as in the paper's data): with the router taking them
    away, τ must still be the share of the *light-routed* images that escalate, as in the gateway."""
    from hadis.api.scores import PromptScores

    g = np.random.default_rng(3)
    router = g.normal(size=2000)
    p_real = 1 / (1 + np.exp(router[:, None] + 0.3 * g.normal(size=(2000, 4))))  # hard → low p_real
    scores = PromptScores(router=router, p_real={"fast": p_real, "slow": p_real})
    cfg = config(gpus=400, scores=scores)
    r = simulate(trace(100, 100), fixed(cascade(0.4, 0.2, light=100, heavy=300)), cfg)
    assert r.router_hard_fraction == pytest.approx(0.4, abs=0.03)
    assert r.escalation_fraction == pytest.approx(0.2, abs=0.02)


def test_split_routing_and_served_fid() -> None:
    cfg = config(gpus=400)
    res = simulate_detailed(
        trace(50, 100), fixed(split({"fast": 0.75, "slow": 0.25}, {"fast": 50, "slow": 300})), cfg
    )
    served = res.data.variant[res.data.status == FINISHED]
    assert np.mean(served == 1) == pytest.approx(0.25, abs=0.03)  # variant order: fast, slow
    assert res.report.mean_fid == pytest.approx(0.75 * 30 + 0.25 * 20, abs=0.4)


def test_a_variant_losing_all_workers_is_re_dispatched() -> None:
    # first interval: only a trickle of slow workers, a queue builds; then slow gets 0 workers
    cfg = config(gpus=50, slo=30.0, interval_s=10.0)
    policy = sequence(split({"slow": 1.0}, {"slow": 1}, batch=1), split({"fast": 1.0}, {"fast": 20}))
    res = simulate_detailed(trace(20, 30), policy, cfg)
    check_accounting(res, cfg)
    d = res.data
    early = d.trace.arrival_s < 10
    assert np.count_nonzero(d.variant[early] == 0) > 100  # moved to fast and served there
    assert res.report.dropped == 0


def test_no_workers_at_all_drops_explicitly() -> None:
    cfg = config(gpus=10)
    res = simulate_detailed(trace(5, 20), fixed(split({"fast": 1.0}, {"fast": 0})), cfg)
    check_accounting(res, cfg)
    assert res.report.dropped == res.report.requests > 0


def test_control_loop_feeds_the_policy() -> None:
    cfg = config(gpus=100, interval_s=10.0, ewma_alpha=1.0, over_provisioning=1.0, initial_qps=7.0)
    policy = sequence(split({"fast": 1.0}, {"fast": 5}))
    t = trace(40, 50)
    r = simulate(t, policy, cfg)
    calls = policy.calls  # type: ignore[attr-defined]
    assert r.decisions == len(calls) == 5
    assert calls[0].demand_qps == 7.0 and calls[0].previous is None
    observed = np.count_nonzero((t.arrival_s >= 10) & (t.arrival_s < 20)) / 10
    assert calls[2].demand_qps == pytest.approx(observed)
    assert calls[2].previous is not None and set(calls[2].arrival_qps) == {"fast", "slow"}
    assert calls[2].arrival_qps["fast"] == pytest.approx(observed)


def test_swap_time_delays_new_workers() -> None:
    def policy():  # type: ignore[no-untyped-def]
        one, ten = split({"fast": 1.0}, {"fast": 1}, batch=1), split({"fast": 1.0}, {"fast": 10}, batch=1)
        return sequence(one, ten)

    t = trace(30, 20, seed=4)
    quick = simulate(t, policy(), config(slo=10.0, interval_s=10.0))
    slow = simulate(t, policy(), config(slo=10.0, interval_s=10.0, swap_s=5.0))
    assert slow.violations > quick.violations


def test_determinism_and_fast_path_equivalence() -> None:
    cfg = config(gpus=20, slo=3.0)
    t = trace(60, 60, seed=5)
    pol = fixed(cascade(0.2, 0.4, light=4, heavy=14, batch=4))
    a = simulate_detailed(t, pol, cfg)
    b = simulate_detailed(t, pol, cfg)
    c = simulate_detailed(t, pol, dataclasses.replace(cfg, fast_path=False))
    for other in (b, c):
        assert np.array_equal(a.data.status, other.data.status)
        assert np.array_equal(a.data.finish, other.data.finish, equal_nan=True)
    other_seed = simulate_detailed(t, pol, dataclasses.replace(cfg, seed=1))
    assert not np.array_equal(a.data.hard, other_seed.data.hard)


@settings(max_examples=40, deadline=None)
@given(
    qps=st.floats(0.5, 80),
    seconds=st.floats(1, 40),
    light=st.integers(0, 6),
    heavy=st.integers(0, 6),
    batch=st.sampled_from([1, 2, 3, 4, 8]),
    theta=st.sampled_from([0.0, 0.3, 1.0]),
    tau=st.sampled_from([0.0, 0.5, 1.0]),
    slo=st.floats(0.5, 10),
    seed=st.integers(0, 5),
    cascade_policy=st.booleans(),
)
def test_every_request_is_accounted_exactly_once(  # type: ignore[no-untyped-def]
    qps, seconds, light, heavy, batch, theta, tau, slo, seed, cascade_policy
) -> None:
    cfg = config(gpus=12, slo=slo, interval_s=7.0)
    if cascade_policy:
        alloc = cascade(theta, tau, light=light, heavy=heavy, batch=batch)
    else:
        alloc = split({"fast": 0.5, "slow": 0.5}, {"fast": light, "slow": heavy}, batch=batch)
    t = trace(qps, seconds, seed)
    makers = [
        lambda: fixed(alloc),
        lambda: sequence(alloc, split({"slow": 1.0}, {"slow": heavy}, batch=batch), alloc),
    ]
    for make in makers:
        res = simulate_detailed(t, make(), cfg)
        check_accounting(res, cfg)
        batch_loop = simulate_detailed(t, make(), dataclasses.replace(cfg, fast_path=False))
        assert np.array_equal(res.data.status, batch_loop.data.status)
        assert np.array_equal(res.data.finish, batch_loop.data.finish, equal_nan=True)
