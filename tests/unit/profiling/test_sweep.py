"""The θ × τ quality sweep: routed mixes as the gateway and the simulator pick them, CSV for the planner."""

from __future__ import annotations

import numpy as np
import pytest

from hadis.policy.pareto import build_pareto_table
from hadis.profiles import parse_sweep_csv
from hadis.profiling.fid import FidAgainst, feature_stats
from hadis.profiling.sweep import (
    QualityData,
    default_grid,
    expected_latency,
    format_sweep_csv,
    hard_prompts,
    heavy_slots,
    ordered_pairs,
    single_fids,
    sweep,
)

N, K, D = 100, 4, 6


def make_data(seed: int = 0) -> QualityData:
    """Hard prompts (high router score) get low light p_real; heavy images sit nearer the reference."""
    rng = np.random.default_rng(seed)
    router = rng.normal(size=N)
    p_light = 1 / (1 + np.exp(2 * router[:, None] + rng.normal(scale=0.5, size=(N, K))))
    light = rng.normal(loc=1.0, size=(N, K, D))
    heavy = rng.normal(loc=0.2, size=(N, K, D))
    p_heavy = rng.uniform(size=(N, K))
    return QualityData(router=router, p_real={"a": p_light, "b": p_heavy}, features={"a": light, "b": heavy})


def reference(seed: int = 9) -> FidAgainst:
    return FidAgainst(feature_stats(np.random.default_rng(seed).normal(size=(2000, D))))


def test_default_grid_is_eleven_exact_tenths() -> None:
    assert default_grid() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    with pytest.raises(ValueError):
        default_grid(0.3)


def test_pairs_go_from_lighter_to_heavier() -> None:
    assert ordered_pairs(["s", "m", "l"]) == [("s", "m"), ("s", "l"), ("m", "l")]


def test_theta_one_sends_everything_to_heavy() -> None:
    d = make_data()
    for tau in (0.0, 0.4, 1.0):
        assert heavy_slots(d.router, d.p_real["a"], 1.0, tau).all()


def test_theta_zero_tau_zero_keeps_everything_light() -> None:
    d = make_data()
    assert not heavy_slots(d.router, d.p_real["a"], 0.0, 0.0).any()
    assert heavy_slots(d.router, d.p_real["a"], 0.0, 1.0).all()


def test_theta_is_the_share_of_prompts_with_the_highest_router_scores() -> None:
    d = make_data()
    hard = hard_prompts(d.router, 0.3)
    assert hard.sum() == 30
    assert d.router[hard].min() > d.router[~hard].max()


@pytest.mark.parametrize("theta", [0.0, 0.3, 0.6])
@pytest.mark.parametrize("tau", [0.1, 0.5, 0.8])
def test_tau_is_the_share_of_light_routed_images_that_escalate(theta: float, tau: float) -> None:
    d = make_data()
    hard = hard_prompts(d.router, theta)
    mask = heavy_slots(d.router, d.p_real["a"], theta, tau)
    light_routed = (~hard).sum() * K
    escalated = mask[~hard].sum()
    # the τ quantile of the light-routed p_real: within one image of τ·(light-routed images)
    assert abs(escalated - tau * light_routed) <= 1
    assert mask.mean() == pytest.approx(theta + (1 - theta) * tau, abs=1.5 / (N * K))
    # the escalated ones are the lowest p_real among the light-routed
    p = d.p_real["a"][~hard]
    assert p[mask[~hard]].max() < p[~mask[~hard]].min()


def test_sweep_rows_fids_and_costs() -> None:
    d = make_data()
    ref = reference()
    rows = sweep(d, [("a", "b")], ref.reference, latency={"a": 0.5, "b": 1.3})
    assert len(rows) == 121
    by = {(r.theta, r.tau): r for r in rows}
    single = single_fids(d, ref.reference)
    assert by[(0.0, 0.0)].fid == pytest.approx(single["a"])
    assert by[(1.0, 0.0)].fid == pytest.approx(single["b"]) and by[(1.0, 0.7)].fid == by[(1.0, 0.0)].fid
    assert by[(0.0, 1.0)].fid == pytest.approx(single["b"])
    assert single["b"] < single["a"]  # heavy images are nearer the reference
    # costs as in cascade_sweep.csv: light · (1 − θ) + heavy · p
    assert by[(0.5, 0.5)].latency == pytest.approx(1.225)
    assert by[(0.0, 0.5)].latency == pytest.approx(1.15)
    assert by[(1.0, 0.3)].latency == pytest.approx(1.3)
    assert expected_latency(0.5, 1.3, 0.5, 0.5) == pytest.approx(0.9)
    assert by[(0.3, 0.4)].p == pytest.approx(0.58)


def test_csv_is_read_by_the_planning_core_and_gives_a_pareto_table() -> None:
    d = make_data()
    rows = sweep(d, ordered_pairs(["a", "b"]), reference().reference, latency={"a": 0.5, "b": 1.3})
    text = format_sweep_csv([r.cascade_row() for r in rows], {"a": 0, "b": 1})
    assert text.splitlines()[0] == "light_model,heavy_model,router_ratio,disc_ratio,threshold,latency,fid"
    back = parse_sweep_csv(text, "sweep.csv", {0: "a", 1: "b"})
    assert len(back) == 121
    assert {(r.light, r.heavy) for r in back} == {("a", "b")}
    table = build_pareto_table(back)
    assert 1 <= len(table) <= 121
    costs = [r.cost_s or 0 for r in table]
    assert costs == sorted(costs)


def test_without_latencies_the_cost_is_blank() -> None:
    d = make_data()
    rows = sweep(d, [("a", "b")], reference().reference, thetas=[0.0], taus=[0.0, 0.5])
    text = format_sweep_csv([r.cascade_row() for r in rows], {"a": 3, "b": 7})
    assert text.splitlines()[1].split(",")[:2] == ["3", "7"]
    assert all(r.cost_s is None for r in parse_sweep_csv(text, "s", {3: "a", 7: "b"}))


def test_shapes_are_checked() -> None:
    d = make_data()
    with pytest.raises(ValueError, match="features of 'b'"):
        QualityData(router=d.router, p_real={}, features={"a": d.features["a"], "b": d.features["b"][:, :2]})
    with pytest.raises(ValueError, match="p_real of 'a'"):
        QualityData(router=d.router, p_real={"a": d.p_real["a"][:10]}, features=dict(d.features))


@pytest.mark.parametrize("d", [3, 64, 120])  # fewer and more dimensions than the mix's 80 samples
def test_fast_mix_fids_equal_the_direct_computation(d: int) -> None:
    rng = np.random.default_rng(d)
    n, k = 40, 2
    router = rng.normal(size=n)
    data = QualityData(
        router=router,
        p_real={"a": rng.uniform(size=(n, k))},
        features={"a": rng.normal(1.0, size=(n, k, d)), "b": rng.gamma(2.0, size=(n, k, d))},
    )
    ref = feature_stats(rng.normal(size=(300, d)) @ rng.normal(size=(d, d)) / np.sqrt(d))
    rows = sweep(data, [("a", "b")], ref, thetas=[0.0, 0.3, 1.0], taus=[0.0, 0.2, 0.9])
    direct = FidAgainst(ref)
    for r in rows:
        mask = heavy_slots(data.router, data.p_real["a"], r.theta, r.tau)
        expected = direct(feature_stats(data.mix("a", "b", mask)))
        assert r.fid == pytest.approx(expected, rel=1e-7, abs=1e-9)
    assert direct.of_features(data.features["b"].reshape(-1, d)) == pytest.approx(
        single_fids(data, ref)["b"], rel=1e-9
    )
