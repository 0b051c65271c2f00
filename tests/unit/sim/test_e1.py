"""The paper's E1 setting with the real policies (packaged profile, scores and trace; no shared data)."""

from __future__ import annotations

import pytest

from hadis.policy.clipper import decide_clipper_heavy, decide_clipper_light
from hadis.sim.engine import simulate
from hadis.sim.presets import E1_INTERVAL_S, e1_config, e1_trace


@pytest.fixture(scope="module")
def trace():  # type: ignore[no-untyped-def]
    return e1_trace()


def test_e1_preset_matches_the_artifact() -> None:
    cfg = e1_config()
    assert cfg.slo_s == 6.0 and cfg.interval_s == E1_INTERVAL_S == 5.0 and cfg.pools[0].count == 16
    assert cfg.profile.variant("sd35-large").perf_on("L40S").latency(1) == pytest.approx(2.7)
    assert e1_config("clipper-heavy").admission_factor == 1.0 and cfg.admission_factor == 1.5


def test_clipper_light_meets_the_slo_at_light_quality(trace) -> None:  # type: ignore[no-untyped-def]
    r = simulate(trace, decide_clipper_light, e1_config("clipper-light"), policy_name="clipper-light")
    assert r.requests == 12270 and r.violations == 0
    assert r.mean_fid == pytest.approx(29.76)
    assert r.gpu_utilisation["sdxl-lightning"] < 0.5


def test_clipper_heavy_is_overloaded_at_heavy_quality(trace) -> None:  # type: ignore[no-untyped-def]
    r = simulate(trace, decide_clipper_heavy, e1_config("clipper-heavy"))
    assert r.slo_violation_ratio > 0.6 and r.dropped > 0
    assert r.mean_fid == pytest.approx(19.95)
    assert r.gpu_utilisation["sd35-large"] > 0.9


def test_hadis_trades_between_the_two(trace) -> None:  # type: ignore[no-untyped-def]
    from hadis.policy.allocator import solve_hadis

    r = simulate(trace, solve_hadis, e1_config("hadis"), policy_name="hadis")
    assert r.policy == "hadis" and r.decisions == 70
    assert r.slo_violation_ratio < 0.2
    assert r.mean_fid is not None and 19.95 < r.mean_fid < 29.76
