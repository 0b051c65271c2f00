"""Specs that pass the schema but cannot be deployed are reported field by field."""

from __future__ import annotations

from typing import Any

import pytest
from tests.factories import two_variant_profile, variant

from hadis.api.service import HadisServiceSpec
from hadis.reconcile.usability import Problem, check_usable, gpus_needed


def _spec(**over: Any) -> HadisServiceSpec:
    body: dict[str, Any] = {
        "variants": [{"name": "fast"}, {"name": "slow"}],
        "sloSeconds": 5,
        "gpuPools": [{"name": "t4", "gpuType": "T4", "count": 4}],
        **over,
    }
    return HadisServiceSpec.model_validate(body)


def _fields(spec: HadisServiceSpec) -> list[str]:
    return [p.field for p in check_usable(spec, two_variant_profile())]


def test_a_good_spec_has_no_problem() -> None:
    assert check_usable(_spec(), two_variant_profile()) == []
    assert (
        check_usable(
            _spec(policy="fixed-pair", fixedPair={"light": "fast", "heavy": "slow"}), two_variant_profile()
        )
        == []
    )
    assert (
        check_usable(
            _spec(policy="clipper-light", gpuPools=[{"name": "t4", "gpuType": "T4", "count": 1}]),
            two_variant_profile(),
        )
        == []
    )


def test_unknown_variant_is_named_by_index() -> None:
    spec = _spec(variants=[{"name": "fast"}, {"name": "slow"}, {"name": "turbo"}])
    (problem,) = check_usable(spec, two_variant_profile())
    assert problem.field == "spec.variants[2].name"
    assert "'turbo' is not a variant of profile 'two'" in problem.message
    assert str(problem).startswith("spec.variants[2].name: ")


def test_pool_gpu_type_not_in_profile() -> None:
    spec = _spec(
        gpuPools=[{"name": "t4", "gpuType": "T4", "count": 4}, {"name": "h", "gpuType": "H100", "count": 2}]
    )
    problems = check_usable(spec, two_variant_profile())
    assert [p.field for p in problems] == ["spec.gpuPools[1].gpuType"]
    assert "'H100'" in problems[0].message


def test_a_variant_no_pool_can_run_is_named() -> None:
    p = two_variant_profile()
    big = variant("big", 1.0, 10.0, gpu="A100")
    profile = p.model_copy(update={"variants": [*p.variants, big]}, deep=True)
    spec = _spec(variants=[{"name": "fast"}, {"name": "slow"}, {"name": "big"}])
    problems = check_usable(spec, profile)
    assert [x.field for x in problems] == ["spec.variants[2].name"]
    assert "cannot be placed" in problems[0].message


@pytest.mark.parametrize(
    ("policy", "count", "bad"),
    [
        ("hadis", 1, True),
        ("hadis", 2, False),
        ("diffserve", 1, True),
        ("proteus", 1, False),
        ("infaas", 0, True),
    ],
)
def test_budget_below_one_gpu_per_needed_variant(policy: str, count: int, bad: bool) -> None:
    spec = _spec(policy=policy, gpuPools=[{"name": "t4", "gpuType": "T4", "count": count}])
    fields = _fields(spec)
    assert ("spec.gpuPools" in fields) is bad
    if bad:
        msg = next(p.message for p in check_usable(spec, two_variant_profile()) if p.field == "spec.gpuPools")
        assert f"needs at least {gpus_needed(policy)}" in msg


def test_a_cascade_policy_needs_two_variants() -> None:
    assert "spec.variants" in _fields(_spec(variants=[{"name": "fast"}]))
    assert _fields(_spec(variants=[{"name": "fast"}], policy="clipper-light")) == []


def test_a_cascade_needs_sweep_rows_between_the_variants() -> None:
    p = two_variant_profile()
    no_sweep = p.model_copy(update={"sweep": []})
    problems = check_usable(_spec(), no_sweep)
    assert [x.field for x in problems] == ["spec.variants"]
    assert "no cascade rows" in problems[0].message


def test_fixed_pair_needs_rows_for_that_pair_and_two_variants() -> None:
    reversed_pair = _spec(policy="fixed-pair", fixedPair={"light": "slow", "heavy": "fast"})
    assert _fields(reversed_pair) == ["spec.fixedPair"]
    same = _spec(policy="fixed-pair", fixedPair={"light": "fast", "heavy": "fast"})
    assert _fields(same) == ["spec.fixedPair.heavy"]


def test_pool_settings_the_api_server_would_reject() -> None:
    spec = _spec(
        gpuPools=[
            {
                "name": "t4",
                "gpuType": "T4",
                "count": 4,
                "resource": "gpu",
                "nodeSelector": {"bad key!": "x", "ok": "not valid!"},
                "tolerations": [
                    {"key": "a", "operator": "Exists", "value": "v"},
                    {"operator": "Equal", "value": "v"},
                ],
            }
        ]
    )
    assert _fields(spec) == [
        "spec.gpuPools[0].resource",
        "spec.gpuPools[0].nodeSelector",
        "spec.gpuPools[0].nodeSelector.ok",
        "spec.gpuPools[0].tolerations[0].value",
        "spec.gpuPools[0].tolerations[1].operator",
    ]
    k8s_domain = _spec(
        gpuPools=[{"name": "t4", "gpuType": "T4", "count": 4, "resource": "kubernetes.io/gpu"}]
    )
    assert _fields(k8s_domain) == ["spec.gpuPools[0].resource"]


def test_every_problem_is_reported_at_once() -> None:
    spec = _spec(
        variants=[{"name": "nope"}],
        gpuPools=[{"name": "x", "gpuType": "V100", "count": 1}],
    )
    fields = _fields(spec)
    assert fields == ["spec.variants[0].name", "spec.gpuPools[0].gpuType", "spec.gpuPools", "spec.variants"]
    assert all(isinstance(p, Problem) for p in check_usable(spec, two_variant_profile()))


def test_problems_are_frozen() -> None:
    p = Problem("spec.gpuPools", "m")
    with pytest.raises(AttributeError):
        p.field = "x"  # type: ignore[misc]
