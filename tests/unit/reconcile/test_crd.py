"""The CRD builder: a structural OpenAPI v3 schema from the pydantic models (pure)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from pydantic import Field

from hadis.api.allocation import POLICY_NAMES
from hadis.api.base import ApiModel
from hadis.reconcile import crd
from hadis.reconcile.crd import SchemaError, build_crd, build_openapi_schema, crd_yaml

#: keys a structural schema may not carry (or that pydantic emits and Kubernetes does not know)
FORBIDDEN = {"$ref", "$defs", "anyOf", "allOf", "oneOf", "not", "const", "title", "x-kubernetes-validations"}


def _nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for k, v in node.get("properties", {}).items():
        yield from _nodes(v, f"{path}.{k}")
    if "items" in node:
        yield from _nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}.*")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return build_openapi_schema()


def test_every_node_is_structural(schema: dict[str, Any]) -> None:
    for path, node in _nodes(schema):
        assert not FORBIDDEN & node.keys(), f"{path}: {sorted(FORBIDDEN & node.keys())}"
        assert "type" in node, f"{path}: no type"
        assert not ("properties" in node and "additionalProperties" in node), path
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True and "minimum" in node, path
        assert "nullable" not in node, f"{path}: Optional fields are unwrapped, null is pruned"


def test_spec_requires_what_the_model_requires(schema: dict[str, Any]) -> None:
    spec = schema["properties"]["spec"]
    assert spec["required"] == ["variants", "sloSeconds", "gpuPools"]
    assert spec["properties"]["sloSeconds"] == {
        "type": "number",
        "description": "latency SLO per request, seconds",
        "minimum": 0,
        "exclusiveMinimum": True,
    }
    pool = spec["properties"]["gpuPools"]["items"]
    assert pool["required"] == ["name", "gpuType", "count"]
    assert pool["properties"]["count"]["minimum"] == 0
    assert pool["properties"]["count"]["type"] == "integer"
    assert spec["properties"]["policy"]["enum"] == list(POLICY_NAMES)
    assert spec["properties"]["policy"]["default"] == "hadis"


def test_camel_case_names_and_free_form_volume(schema: dict[str, Any]) -> None:
    spec = schema["properties"]["spec"]["properties"]
    assert {"sloSeconds", "gpuPools", "admissionFactor", "fixedPair", "modelVolume"} <= spec.keys()
    assert "unetCheckpoint" in spec["variants"]["items"]["properties"]
    assert spec["modelVolume"] == {
        "type": "object",
        "description": spec["modelVolume"]["description"],
        "x-kubernetes-preserve-unknown-fields": True,
    }
    assert spec["gpuPools"]["items"]["properties"]["nodeSelector"]["additionalProperties"] == {
        "type": "string"
    }


def test_optional_fields_are_unwrapped_without_a_default(schema: dict[str, Any]) -> None:
    spec = schema["properties"]["spec"]["properties"]
    assert spec["fixedPair"]["type"] == "object"
    assert "default" not in spec["fixedPair"]
    assert spec["variants"]["items"]["properties"]["engine"]["enum"] == ["diffusers", "emulated"]


def test_defaults_cascade_from_empty_objects_in_the_spec_only(schema: dict[str, Any]) -> None:
    spec = schema["properties"]["spec"]["properties"]
    assert spec["allocation"]["default"] == {}
    assert spec["allocation"]["properties"]["intervalSeconds"]["default"] == 50.0
    assert spec["profile"]["properties"]["builtin"]["default"] == "hadis-paper-l40s"
    status_defaults = [p for p, n in _nodes(schema["properties"]["status"], "status") if "default" in n]
    assert status_defaults == []


def test_names_are_dns_labels_and_lists_are_keyed(schema: dict[str, Any]) -> None:
    assert schema["properties"]["metadata"]["properties"]["name"]["maxLength"] == 63
    spec = schema["properties"]["spec"]["properties"]
    for field in ("variants", "gpuPools"):
        assert spec[field]["x-kubernetes-list-type"] == "map"
        assert spec[field]["x-kubernetes-list-map-keys"] == ["name"]
    conditions = schema["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_status_is_structural_and_keeps_unknown_fields(schema: dict[str, Any]) -> None:
    status = schema["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True
    row = status["properties"]["allocation"]["properties"]["row"]["properties"]
    assert row["theta"] == {"type": "number", "minimum": 0, "maximum": 1}


def test_crd_names_scope_subresource_and_columns() -> None:
    doc = build_crd()
    spec = doc["spec"]
    assert doc["metadata"]["name"] == "hadisservices.hadis.io"
    assert spec["group"] == "hadis.io" and spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "HadisService"
    assert spec["names"]["plural"] == "hadisservices"
    assert spec["names"]["shortNames"] == ["hds"]
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Policy"] == ".spec.policy"
    assert columns["Light"] == ".status.allocation.row.light"
    assert columns["Theta"] == ".status.allocation.row.theta"
    assert columns["GPUs"] == ".status.gpus"
    assert columns["Demand QPS"] == ".status.demandQps"
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'


def test_yaml_round_trips_to_the_dict() -> None:
    text = crd_yaml()
    assert text.startswith("# Generated by `make crds`")
    assert yaml.safe_load(text) == build_crd()


class _TwoTypes(ApiModel):
    value: int | str = Field(description="no structural form")


def test_a_union_of_two_types_is_refused() -> None:
    raw = _TwoTypes.model_json_schema(by_alias=True)
    with pytest.raises(SchemaError, match=r"spec\.value"):
        crd._structural(raw, {}, ("spec",), defaults=True)
