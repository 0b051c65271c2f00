"""The generated HadisService CRD on a real kube-apiserver: examples accepted, bad specs rejected by field."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.k8s_local import ControlPlane, create_namespace

from hadis.api.allocation import Allocation, VariantAllocation
from hadis.api.profile import CascadeRow
from hadis.api.service import API_GROUP, API_VERSION, Condition, HadisService, HadisServiceStatus
from hadis.reconcile.crd import PLURAL

pytestmark = pytest.mark.e2e

NS = "e2e-crd"
EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.fixture(scope="module")
def objects(control_plane: ControlPlane, hadis_crd: dict[str, Any]) -> Iterator[client.CustomObjectsApi]:
    create_namespace(control_plane.api, NS)
    yield client.CustomObjectsApi(control_plane.api)
    client.CoreV1Api(control_plane.api).delete_namespace(NS)


def _example(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    body["metadata"]["namespace"] = NS
    return body


def _create(api: client.CustomObjectsApi, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = api.create_namespaced_custom_object(API_GROUP, API_VERSION, NS, PLURAL, body)
    return created


def _minimal(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "HadisService",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "variants": [{"name": "sdxl-lightning"}, {"name": "sd35-large"}],
            "sloSeconds": 6,
            "gpuPools": [{"name": "l40s", "gpuType": "L40S", "count": 4}],
        },
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_accepted_and_defaulted_as_the_models_default(
    path: Path, objects: client.CustomObjectsApi
) -> None:
    body = _example(path)
    assert body["kind"] == "HadisService"
    stored = _create(objects, body)
    # the API server filled in the schema's defaults: the same values the models default to
    assert stored["spec"]["policy"] == body["spec"].get("policy", "hadis")
    assert "intervalSeconds" in stored["spec"]["allocation"]
    assert HadisService.model_validate(stored).spec == HadisService.model_validate(body).spec


def test_a_minimal_spec_gets_every_default(objects: client.CustomObjectsApi) -> None:
    stored = _create(objects, _minimal("minimal"))
    spec = stored["spec"]
    assert spec["policy"] == "hadis" and spec["engine"] == "diffusers" and spec["admissionFactor"] == 1.5
    assert spec["gpuPools"][0]["resource"] == "nvidia.com/gpu"
    assert spec["profile"] == {"builtin": "hadis-paper-l40s", "timeScale": 1.0}
    assert spec["gateway"]["port"] == 8000
    assert HadisService.model_validate(stored).spec == HadisService.model_validate(_minimal("minimal")).spec


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``body`` with the dotted ``path`` set to ``value`` (``...`` deletes it)."""
    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    node: Any = out
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is ...:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


# (case id, change to a valid spec, field the API server must name, words of its message)
INVALID: list[tuple[str, str, Any, str, str]] = [
    ("missing-slo", "spec.sloSeconds", ..., r"spec\.sloSeconds", "Required value"),
    ("missing-gpu-pools", "spec.gpuPools", ..., r"spec\.gpuPools", "Required value"),
    ("missing-spec", "spec", ..., r"spec", "Required value"),
    (
        "negative-gpu-count",
        "spec.gpuPools.0.count",
        -1,
        r"spec\.gpuPools(\[0\])?\.count",
        "greater than or equal to 0",
    ),
    ("zero-slo", "spec.sloSeconds", 0, r"spec\.sloSeconds", "greater than 0"),
    ("unknown-policy", "spec.policy", "greedy", r"spec\.policy", "Unsupported value"),
    ("unknown-engine", "spec.engine", "onnx", r"spec\.engine", "Unsupported value"),
    ("slo-not-a-number", "spec.sloSeconds", "fast", r"spec\.sloSeconds", "must be of type number"),
    (
        "count-not-an-integer",
        "spec.gpuPools.0.count",
        1.5,
        r"spec\.gpuPools(\[0\])?\.count",
        "must be of type integer",
    ),
    ("no-variants", "spec.variants", [], r"spec\.variants", "should have at least 1 items"),
    (
        "bad-variant-name",
        "spec.variants.0.name",
        "SDXL_Lightning",
        r"spec\.variants(\[0\])?\.name",
        "should match",
    ),
    ("dotted-service-name", "metadata.name", "e1.emulated", r"metadata\.name", "should match"),
    (
        "ewma-above-one",
        "spec.allocation",
        {"ewmaAlpha": 1.5},
        r"spec\.allocation\.ewmaAlpha",
        "less than or equal to 1",
    ),
    (
        "prometheus-url-scheme",
        "spec.metrics",
        {"prometheusUrl": "prom:9090"},
        r"spec\.metrics\.prometheusUrl",
        "should match",
    ),
    (
        "gateway-port-range",
        "spec.gateway",
        {"port": 70000},
        r"spec\.gateway\.port",
        "less than or equal to 65535",
    ),
    (
        "duplicate-variant",
        "spec.variants.1",
        {"name": "sdxl-lightning"},
        r"spec\.variants\[1\]",
        "Duplicate value",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "field", "words"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_specs_are_rejected_naming_the_field(
    objects: client.CustomObjectsApi, path: str, value: Any, field: str, words: str
) -> None:
    body = _set(_minimal("invalid"), path, value)
    with pytest.raises(ApiException) as err:
        _create(objects, body)
    assert err.value.status == 422, err.value.body
    message = json.loads(err.value.body)["message"]
    assert re.search(field, message), message
    assert words in message, message


def test_status_subresource_printer_columns_and_short_name(
    control_plane: ControlPlane, objects: client.CustomObjectsApi
) -> None:
    stored = _create(objects, _minimal("columns"))
    row = CascadeRow(light="sdxl-lightning", heavy="sd35-large", theta=0.2, tau=0.25, p=0.4, fid=18.5)
    allocation = Allocation(
        policy="hadis",
        row=row,
        variants=[
            VariantAllocation(
                variant="sdxl-lightning",
                pool="l40s",
                replicas=1,
                batch_size=4,
                latency_s=1.0,
                throughput_qps=4.0,
            ),
            VariantAllocation(
                variant="sd35-large", pool="l40s", replicas=3, batch_size=2, latency_s=5.0, throughput_qps=1.2
            ),
        ],
        demand_qps=3.5,
        expected_fid=18.5,
    )
    status = HadisServiceStatus(
        observed_generation=stored["metadata"]["generation"],
        conditions=[Condition(type="Ready", status="True", reason="Allocated")],
        demand_qps=3.5,
        gpus=allocation.gpus_used,
        allocation=allocation,
    )
    # the main resource ignores status; the status subresource ignores spec
    objects.patch_namespaced_custom_object(
        API_GROUP, API_VERSION, NS, PLURAL, "columns", {"status": status.to_wire()}
    )
    assert "status" not in objects.get_namespaced_custom_object(API_GROUP, API_VERSION, NS, PLURAL, "columns")
    updated = objects.patch_namespaced_custom_object_status(
        API_GROUP,
        API_VERSION,
        NS,
        PLURAL,
        "columns",
        {"status": status.to_wire(), "spec": {"sloSeconds": 99}},
    )
    assert updated["spec"]["sloSeconds"] == 6
    assert updated["metadata"]["generation"] == stored["metadata"]["generation"]
    assert HadisService.model_validate(updated).status == status

    out = control_plane.kubectl("get", "hds", "columns", "-n", NS)
    assert out.returncode == 0, out.stderr
    header, line = out.stdout.splitlines()
    assert header.split()[:10] == [
        "NAME",
        "POLICY",
        "LIGHT",
        "HEAVY",
        "THETA",
        "TAU",
        "GPUS",
        "DEMAND",
        "QPS",
        "READY",
    ]
    assert line.split()[:9] == [
        "columns",
        "hadis",
        "sdxl-lightning",
        "sd35-large",
        "0.2",
        "0.25",
        "4",
        "3.5",
        "True",
    ]


def test_null_optional_fields_are_pruned(objects: client.CustomObjectsApi) -> None:
    body = _minimal("nulls")
    body["spec"]["fixedPair"] = None
    body["spec"]["variants"][0]["model"] = None
    stored = _create(objects, body)
    assert "fixedPair" not in stored["spec"]
    assert "model" not in stored["spec"]["variants"][0]
    HadisService.model_validate(stored)


def test_empty_strings_are_strings_not_null(objects: client.CustomObjectsApi) -> None:
    """Go >= 1.16 made the vendored go-openapi validator read "" as null; the build script patches it."""
    body = _minimal("empty-strings")
    body["metadata"]["labels"] = {"tier": ""}
    body["spec"]["gpuPools"][0]["nodeSelector"] = {"gpu": ""}
    body["spec"]["modelVolume"] = {"emptyDir": {"medium": ""}}
    stored = _create(objects, body)
    assert stored["metadata"]["labels"] == {"tier": ""}
    assert stored["spec"]["gpuPools"][0]["nodeSelector"] == {"gpu": ""}
    assert stored["spec"]["modelVolume"] == {"emptyDir": {"medium": ""}}


def test_the_api_key_secret_key_is_defaulted_as_the_model_defaults_it(
    objects: client.CustomObjectsApi,
) -> None:
    body = _minimal("api-keys")
    body["spec"]["gateway"] = {"apiKeySecret": {"name": "gw-keys"}}
    stored = _create(objects, body)
    assert stored["spec"]["gateway"]["apiKeySecret"] == {"name": "gw-keys", "key": "api-keys"}
    spec = HadisService.model_validate(stored).spec
    assert spec == HadisService.model_validate(body).spec
    assert spec.gateway.api_key_secret is not None and spec.gateway.api_key_secret.key == "api-keys"
