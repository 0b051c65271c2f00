"""API models: camelCase wire format, strict validation with errors that name the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from tests.factories import decision, two_variant_profile

from hadis.api import Allocation, CascadeRow, HadisService, HadisServiceSpec
from hadis.api.base import describe_validation_error

SPEC = {
    "variants": [{"name": "fast"}, {"name": "slow"}],
    "sloSeconds": 6,
    "gpuPools": [{"name": "l40s", "gpuType": "L40S", "count": 16}],
}


def errors(model: type, data: dict) -> str:  # type: ignore[type-arg]
    with pytest.raises(ValidationError) as e:
        model.model_validate(data)
    return describe_validation_error(e.value, "spec")


def test_spec_defaults_and_camel_case_round_trip() -> None:
    spec = HadisServiceSpec.model_validate(SPEC)
    wire = spec.to_wire()
    assert wire["admissionFactor"] == 1.5
    assert wire["allocation"] == {
        "intervalSeconds": 50.0,
        "ewmaAlpha": 0.5,
        "overProvisioning": 1.05,
        "reconfigurationCost": 0.0,
        "solverTimeLimitSeconds": 5.0,
    }
    assert wire["policy"] == "hadis"
    assert HadisServiceSpec.model_validate(wire) == spec


@pytest.mark.parametrize(
    ("patch", "field", "reason"),
    [
        ({"sloSeconds": 0}, "sloSeconds", "greater than 0"),
        ({"policy": "fastest"}, "policy", "Input should be 'hadis'"),
        (
            {"gpuPools": [{"name": "p", "gpuType": "L40S", "count": -1}]},
            "gpuPools.0.count",
            "greater than or equal to 0",
        ),
        ({"gpuPools": [{"name": "P_1", "gpuType": "L40S", "count": 1}]}, "gpuPools.0.name", "pattern"),
        ({"variants": []}, "variants", "at least 1"),
        ({"sloSecond": 6}, "sloSecond", "Extra inputs are not permitted"),
        ({"admissionFactor": 0.5}, "admissionFactor", "greater than or equal to 1"),
        ({"policy": "fixed-pair"}, "fixedPair", "required when policy is fixed-pair"),
    ],
)
def test_bad_spec_names_the_field(patch: dict, field: str, reason: str) -> None:  # type: ignore[type-arg]
    msg = errors(HadisServiceSpec, {**SPEC, **patch})
    assert field in msg and reason in msg, msg


def test_duplicate_names_are_rejected() -> None:
    msg = errors(HadisServiceSpec, {**SPEC, "variants": [{"name": "a"}, {"name": "a"}]})
    assert "duplicate" in msg


def test_cascade_row_checks_p() -> None:
    CascadeRow(light="a", heavy="b", theta=0.2, tau=0.5, p=0.6, fid=20)
    with pytest.raises(ValidationError, match="θ"):
        CascadeRow(light="a", heavy="b", theta=0.2, tau=0.5, p=0.3, fid=20)
    with pytest.raises(ValidationError, match="same variant"):
        CascadeRow(light="a", heavy="a", theta=0.0, tau=0.0, p=0.0, fid=20)


def test_allocation_has_row_or_split_not_both() -> None:
    r = CascadeRow(light="a", heavy="b", theta=0.0, tau=0.0, p=0.0, fid=20)
    with pytest.raises(ValidationError, match="either"):
        Allocation(policy="x", row=r, split={"a": 1.0}, demand_qps=1, expected_fid=20)
    with pytest.raises(ValidationError, match="sum to 1"):
        Allocation(policy="x", split={"a": 0.5}, demand_qps=1, expected_fid=20)
    a = Allocation(policy="x", row=r, demand_qps=1, expected_fid=20)
    assert a.share("a") == 1.0 and a.share("b") == 0.0


def test_decision_input_rejects_unknown_variant_and_gpu_type() -> None:
    p = two_variant_profile()
    with pytest.raises(ValidationError, match="unknown variant 'nope'"):
        decision(p, 1, 4, 6, variants=["nope"])
    inp = decision(p, 1, 4, 6)
    with pytest.raises(ValidationError, match="gpuType"):
        pools = [{"name": "x", "gpu_type": "H100", "count": 1}]
        type(inp).model_validate({**inp.model_dump(), "pools": pools})


def test_queueing_delay_is_littles_law() -> None:
    inp = decision(two_variant_profile(), 1, 4, 6, queue_lengths={"fast": 10}, arrival_qps={"fast": 5.0})
    assert inp.queueing_delay_s("fast") == pytest.approx(2.0)
    assert inp.queueing_delay_s("slow") == 0.0


def test_hadis_service_object() -> None:
    head = {"apiVersion": "hadis.io/v1alpha1", "kind": "HadisService"}
    obj = HadisService.model_validate({**head, "metadata": {"name": "demo", "uid": "u"}, "spec": SPEC})
    assert obj.metadata.name == "demo"
    with pytest.raises(ValidationError):
        HadisService.model_validate({**head, "apiVersion": "v1", "metadata": {"name": "d"}, "spec": SPEC})
