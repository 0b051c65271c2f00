"""The issue's quality targets on the paper's E1 (packaged trace, profile and scores; no shared data).

hadis: SLO violation ratio ≤ 0.02 and mean FID ≤ 23.0, and fewer violations than every paper
baseline except clipper-light (which meets the SLO at light-only quality).
"""

from __future__ import annotations

import pytest

from hadis.policy.registry import get_policy
from hadis.sim.engine import simulate
from hadis.sim.presets import e1_config, e1_trace
from hadis.sim.report import SimReport

BASELINES = ("diffserve", "proteus", "infaas", "clipper-heavy")


@pytest.fixture(scope="module")
def reports() -> dict[str, SimReport]:
    trace = e1_trace()
    return {n: simulate(trace, get_policy(n), e1_config(n), policy_name=n) for n in ("hadis", *BASELINES)}


def test_hadis_meets_the_e1_targets(reports: dict[str, SimReport]) -> None:
    r = reports["hadis"]
    assert r.requests == 12270 and r.finished + r.dropped == r.requests
    assert r.slo_violation_ratio <= 0.02
    assert r.mean_fid is not None and r.mean_fid <= 23.0


@pytest.mark.parametrize("baseline", BASELINES)
def test_hadis_has_fewer_violations_than_the_baselines(reports: dict[str, SimReport], baseline: str) -> None:
    assert reports["hadis"].violations < reports[baseline].violations


def test_hadis_beats_diffserve_on_quality_too(reports: dict[str, SimReport]) -> None:
    h, d = reports["hadis"].mean_fid, reports["diffserve"].mean_fid
    assert h is not None and d is not None and h < d
