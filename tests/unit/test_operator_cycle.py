"""The operator's cycle decisions (pure): when a cycle is due, the demand estimate, and the status,
conditions and Events a cycle's results give — including that an unchanged result writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.factories import row

from hadis.api.allocation import Allocation, VariantAllocation
from hadis.api.service import HadisServiceSpec
from hadis.operator import cycle
from hadis.operator.cycle import Memory, SpecProblem, conclude, is_due, next_demand, parse_spec, seed_memory
from hadis.policy.demand import DemandEstimate

T0 = datetime(2026, 1, 1, tzinfo=UTC)

SPEC: dict[str, Any] = {
    "variants": [{"name": "sdxl-lightning"}, {"name": "sd35-large"}],
    "sloSeconds": 6,
    "gpuPools": [{"name": "l40s", "gpuType": "L40S", "count": 4}],
    "allocation": {"intervalSeconds": 10, "ewmaAlpha": 0.5, "overProvisioning": 1.1},
}


def spec() -> HadisServiceSpec:
    parsed = parse_spec(SPEC)
    assert isinstance(parsed, HadisServiceSpec)
    return parsed


def alloc(
    light: int, heavy: int, *, solve: float = 0.01, demand: float = 1.0, shed: bool = False
) -> Allocation:
    return Allocation(
        policy="hadis",
        row=row("sdxl-lightning", "sd35-large", 0.3, 0.1, 1.0, 20.0),
        variants=[
            VariantAllocation(
                variant="sdxl-lightning",
                pool="l40s",
                replicas=light,
                batch_size=2,
                latency_s=0.5,
                throughput_qps=4,
            ),
            VariantAllocation(
                variant="sd35-large",
                pool="l40s",
                replicas=heavy,
                batch_size=1,
                latency_s=2.0,
                throughput_qps=0.5,
            ),
        ],
        demand_qps=demand,
        expected_fid=20.0,
        feasible=not shed,
        shed=shed,
        shed_qps=0.5 if shed else 0.0,
        solve_time_s=solve,
    )


def cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def ok_cycle(
    mem: Memory,
    status: dict[str, Any] | None,
    a: Allocation,
    *,
    t: datetime = T0,
    mono: float = 0.0,
    **kw: Any,
) -> cycle.Outcome:
    demand = kw.pop("demand", DemandEstimate(0.5, 1.1, 1.0))
    return conclude(
        mem, status, generation=1, now=t, now_mono=mono, demand=demand, allocation=a, applied=True, **kw
    )


# --- parsing and scheduling -------------------------------------------------------------------------


def test_parse_spec_names_the_invalid_field() -> None:
    bad = SPEC | {"policy": "fixed-pair", "fixedPair": {"light": "sdxl-lightning", "heavy": "sd35-medium"}}
    problems = parse_spec(bad)
    assert isinstance(problems, list)
    assert problems[0].field == "spec"
    assert "fixedPair.heavy" in problems[0].message
    missing = parse_spec({k: v for k, v in SPEC.items() if k != "sloSeconds"})
    assert isinstance(missing, list) and missing[0].field == "spec.sloSeconds"


def test_a_cycle_is_due_first_on_spec_change_and_each_interval() -> None:
    assert is_due(Memory(), 1, 0.0, 10)
    mem = Memory(last_cycle=100.0, generation=1)
    assert not is_due(mem, 1, 109.9, 10)
    assert is_due(mem, 1, 110.0, 10)
    assert is_due(mem, 2, 100.5, 10)


def test_demand_starts_at_zero_then_follows_the_ewma_and_holds_without_observation() -> None:
    s = spec()
    first = next_demand(Memory(), s, None)
    assert first.demand_qps == 0.0
    est = next_demand(Memory(), s, 10.0)
    assert est.demand_qps == pytest.approx(11.0)
    est = next_demand(Memory(demand=est), s, 20.0)
    assert est.smoothed_qps == pytest.approx(15.0)
    held = next_demand(Memory(demand=est), s, None)
    assert held == est


def test_demand_estimate_takes_new_ewma_settings_and_keeps_its_value() -> None:
    old = DemandEstimate(0.2, 1.0, 8.0)
    est = next_demand(Memory(demand=old), spec(), None)
    assert (est.alpha, est.over_provisioning, est.smoothed_qps) == (0.5, 1.1, 8.0)


# --- status and events ------------------------------------------------------------------------------


def test_first_allocation_sets_conditions_status_and_an_event() -> None:
    out = ok_cycle(Memory(), None, alloc(2, 2))
    assert out.allocation_changed and out.status is not None
    st = out.status
    assert st["observedGeneration"] == 1 and st["gpus"] == 4 and st["demandQps"] == pytest.approx(1.1)
    assert st["lastAllocationTime"] == "2026-01-01T00:00:00Z"
    assert cond(st, "Ready")["status"] == "True"
    assert cond(st, "Allocated")["status"] == "True"
    assert cond(st, "Degraded")["status"] == "False"
    assert [e.reason for e in out.events] == ["Allocated"]
    assert "sd35-large@l40s x2" in out.events[0].message


def test_same_allocation_again_writes_nothing_and_posts_nothing() -> None:
    first = ok_cycle(Memory(), None, alloc(2, 2))
    later = T0 + timedelta(minutes=5)
    again = ok_cycle(first.memory, first.status, alloc(2, 2, solve=0.5, demand=1.02), t=later, mono=300.0)
    assert again.status is None and again.events == [] and not again.allocation_changed
    assert again.memory.last_cycle == 300.0
    assert again.memory.allocation == first.memory.allocation  # solve time of the kept one


def test_a_new_allocation_keeps_transition_times_of_unflipped_conditions() -> None:
    first = ok_cycle(Memory(), None, alloc(2, 2))
    later = T0 + timedelta(minutes=1)
    out = ok_cycle(first.memory, first.status, alloc(1, 3), t=later, mono=60.0)
    assert out.allocation_changed and out.status is not None
    assert cond(out.status, "Ready")["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert out.status["lastAllocationTime"] == "2026-01-01T00:01:00Z"
    assert "x3" in cond(out.status, "Allocated")["message"]
    assert [e.reason for e in out.events] == ["Allocated"]


def test_metrics_unavailable_keeps_the_allocation_and_warns_once() -> None:
    first = ok_cycle(Memory(), None, alloc(2, 2))
    t1 = T0 + timedelta(seconds=10)
    down = ok_cycle(first.memory, first.status, alloc(2, 2), t=t1, mono=10.0, metrics_error="unreachable")
    assert down.status is not None
    deg = cond(down.status, "Degraded")
    assert (deg["status"], deg["reason"]) == ("True", "MetricsUnavailable")
    assert deg["lastTransitionTime"] == "2026-01-01T00:00:10Z"
    assert cond(down.status, "Ready")["status"] == "True"
    assert down.status["allocation"] == first.status["allocation"]  # type: ignore[index]
    assert [(e.type, e.reason) for e in down.events] == [("Warning", "MetricsUnavailable")]
    assert down.memory.last_good == 0.0  # the last good observation is the first cycle's
    t2 = t1 + timedelta(seconds=10)
    still = ok_cycle(down.memory, down.status, alloc(2, 2), t=t2, mono=20.0, metrics_error="unreachable")
    assert still.status is None and still.events == []
    back = ok_cycle(still.memory, down.status, alloc(2, 2), mono=30.0)
    assert back.status is not None and cond(back.status, "Degraded")["status"] == "False"
    assert back.events == []


@pytest.mark.parametrize("reason", ["UnusableSpec", "InvalidSpec"])
def test_an_unusable_spec_is_a_condition_and_a_warning_naming_the_field(reason: str) -> None:
    problems = [
        SpecProblem("spec.variants[1].name", "'sd9' is not in profile"),
        SpecProblem("spec.gpuPools", "x"),
    ]
    out = conclude(
        Memory(), None, generation=3, now=T0, now_mono=0.0, problems=problems, problem_reason=reason
    )
    assert out.status is not None and not out.allocation_changed
    for type_, status in (("Allocated", "False"), ("Degraded", "True"), ("Ready", "False")):
        c = cond(out.status, type_)
        assert (c["status"], c["reason"]) == (status, reason)
        assert "spec.variants[1].name" in c["message"] and "spec.gpuPools" in c["message"]
    assert "allocation" not in out.status and out.status["observedGeneration"] == 3
    assert [(e.type, e.reason) for e in out.events] == [("Warning", reason)]
    assert "spec.variants[1].name: 'sd9' is not in profile" in out.events[0].message
    again = conclude(out.memory, out.status, generation=3, now=T0, now_mono=30.0, problems=problems,
                     problem_reason=reason)  # fmt: skip
    assert again.status is None and again.events == []


def test_an_unusable_edit_keeps_the_running_allocation_ready() -> None:
    first = ok_cycle(Memory(), None, alloc(2, 2))
    bad = [SpecProblem("spec.gpuPools[0].count", "budget below 2 GPUs")]
    out = conclude(first.memory, first.status, generation=2, now=T0, now_mono=5.0, problems=bad)
    assert out.status is not None
    assert cond(out.status, "Ready")["status"] == "True"
    assert cond(out.status, "Allocated")["status"] == "False"
    assert out.status["allocation"] == first.status["allocation"]  # type: ignore[index]


def test_load_shedding_is_degraded() -> None:
    out = ok_cycle(Memory(), None, alloc(2, 2, shed=True))
    assert out.status is not None
    assert cond(out.status, "Degraded")["reason"] == "LoadShedding"
    assert [e.reason for e in out.events] == ["Allocated", "LoadShedding"]


def test_apply_failure_is_degraded_and_not_remembered_as_deployed() -> None:
    out = conclude(
        Memory(), None, generation=1, now=T0, now_mono=0.0, allocation=alloc(2, 2), applied=False,
        error_reason="ApplyFailed", error="HTTP 422",
    )  # fmt: skip
    assert out.status is not None and out.memory.allocation is None and not out.memory.deployed
    assert cond(out.status, "Degraded")["reason"] == "ApplyFailed"
    assert cond(out.status, "Ready")["status"] == "False"


def test_restart_seeds_memory_from_status_and_writes_nothing() -> None:
    first = ok_cycle(Memory(), None, alloc(2, 2))
    assert first.status is not None
    seeded = seed_memory(first.status, spec())
    assert seeded.deployed and seeded.allocation == first.memory.allocation
    assert seeded.demand is not None and seeded.demand.demand_qps == pytest.approx(1.1)
    assert seeded.allocated_at == "2026-01-01T00:00:00Z"
    later = T0 + timedelta(hours=1)
    out = ok_cycle(seeded, first.status, alloc(2, 2, solve=0.2), t=later, demand=seeded.demand)
    assert out.status is None and out.events == []


def test_seed_memory_of_a_new_or_garbled_status_is_empty() -> None:
    assert seed_memory(None, spec()) == Memory()
    assert seed_memory({"gpus": -1}, spec()) == Memory()


def test_status_written_by_the_api_server_compares_equal_after_a_round_trip() -> None:
    """The API server returns 1.0 as 1; that is no change."""
    out = ok_cycle(Memory(), None, alloc(2, 2))
    assert out.status is not None
    as_stored = _ints(out.status)
    again = ok_cycle(out.memory, as_stored, alloc(2, 2), mono=10.0)
    assert again.status is None


def _ints(x: Any) -> Any:
    if isinstance(x, float) and x.is_integer():
        return int(x)
    if isinstance(x, dict):
        return {k: _ints(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_ints(v) for v in x]
    return x


def test_the_status_patch_removes_what_the_new_status_lacks() -> None:
    """A merge patch of a split allocation over a cascade one must drop the row (null), or the
    stored allocation would have both and no longer parse."""
    old = {"gpus": 4, "allocation": {"row": {"light": "a"}, "policy": "hadis"}, "demandQps": 1.0}
    new = {"gpus": 2, "allocation": {"split": {"b": 1.0}, "policy": "clipper-heavy"}}
    assert cycle.merge_patch(old, new) == {
        "gpus": 2,
        "allocation": {"split": {"b": 1.0}, "policy": "clipper-heavy", "row": None},
        "demandQps": None,
    }
    assert cycle.merge_patch(None, new) == new
