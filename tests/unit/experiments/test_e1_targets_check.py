"""The E1 target check that ``hadis bench e1`` prints (pure)."""

from __future__ import annotations

from typing import Any

from hadis.experiments.e1 import e1_service, initial_qps, time_weighted_fid, truncate
from hadis.experiments.targets import check_e1
from hadis.sim import presets


def row(policy: str, v: float, fid: float | None, mode: str = "emulated") -> dict[str, Any]:
    return {"policy": policy, "mode": mode, "slo_violation_ratio": v, "mean_fid": fid}


def test_all_targets_met() -> None:
    rows = [row("hadis", 0.005, 22.4), row("diffserve", 0.02, 24.0), row("infaas", 0.1, 24.2)]
    rows.append(row("clipper-light", 0.0, 29.8))  # not a quality-competitive baseline
    checks = check_e1(rows, "emulated")
    assert [met for _, met, _ in checks] == [True, True, True]
    assert "diffserve 0.0200" in checks[2][2] and "4.0×" in checks[2][2]


def test_each_target_can_miss() -> None:
    checks = check_e1([row("hadis", 0.012, 22.6), row("diffserve", 0.02, 22.0)], "emulated")
    assert [met for _, met, _ in checks] == [False, False, False]  # 1.7×, and a worse FID


def test_zero_violations_beat_any_nonzero_baseline_and_modes_are_separate() -> None:
    rows = [row("hadis", 0.0, 22.0), row("proteus", 0.001, 27.8), row("hadis", 0.5, 30.0, "simulated")]
    assert [met for _, met, _ in check_e1(rows, "emulated")] == [True, True, True]
    assert [met for _, met, _ in check_e1(rows, "simulated")] == [False, False]
    assert check_e1(rows[1:2], "emulated") == []  # no hadis row: nothing to judge


def test_e1_service_matches_the_simulator_preset() -> None:
    svc = e1_service("clipper-heavy", 8123)
    cfg = presets.e1_config("clipper-heavy")
    assert svc.spec.policy == "clipper-heavy" and svc.spec.engine == "emulated"
    assert svc.spec.admission_factor == cfg.admission_factor == 1.0
    assert svc.spec.slo_seconds == cfg.slo_s and svc.spec.gateway.port == 8123
    assert sum(p.count for p in svc.spec.gpu_pools) == sum(p.count for p in cfg.pools) == 16
    assert svc.spec.allocation.interval_seconds == cfg.interval_s
    assert svc.spec.allocation.ewma_alpha == cfg.ewma_alpha
    assert svc.spec.profile.time_scale == presets.E1_TIME_SCALE
    assert e1_service("hadis", 1).spec.admission_factor == 1.5


def test_initial_demand_is_the_first_interval_rate() -> None:
    trace = presets.e1_trace()
    first = truncate(trace, 1000)
    assert len(first) == 1000 and len(truncate(trace, None)) == len(trace)
    n = int((trace.arrival_s < presets.E1_INTERVAL_S).sum())
    assert initial_qps(trace) == n / presets.E1_INTERVAL_S


def test_time_weighted_fid_is_the_simulators_definition() -> None:
    routing = [
        {"t_unix": 90.0, "row": {"fid": 30.0}},  # in force when the run starts at 100
        {"t_unix": 110.0, "row": {"fid": 20.0}},
        {"t_unix": 140.0, "row": {"fid": 10.0}},  # after the end: ignored
    ]
    assert time_weighted_fid(routing, 100.0, 130.0) == (30.0 * 10 + 20.0 * 20) / 30
    assert time_weighted_fid(routing[:1], 100.0, 100.0) is None  # an empty span
    split = [{"t_unix": 90.0, "row": {"fid": 30.0}}, {"t_unix": 110.0, "row": None, "split": {"a": 1.0}}]
    assert time_weighted_fid(split, 100.0, 130.0) is None  # not a cascade policy: served mix instead
