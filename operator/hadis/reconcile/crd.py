"""The HadisService CustomResourceDefinition, generated from the pydantic models (pure).

The models in :mod:`hadis.api.service` are the single source of truth; ``make crds`` writes
:func:`crd_yaml` to ``crds/hadisservices.hadis.io.yaml`` and a contract test fails when the committed
file drifts. The JSON schema pydantic produces is rewritten into a Kubernetes *structural* OpenAPI v3
schema: ``$ref`` inlined, ``Optional`` unwrapped (a ``null`` is then pruned by the API server, which
reads it as "not set", as the models do), ``const`` as a one-value enum, exclusive bounds in the
OpenAPI 3.0 form, free-form dicts as ``x-kubernetes-preserve-unknown-fields``. Defaults are kept for
the spec, so ``kubectl get -o yaml`` shows what the operator will use. No CEL rules: the cross-field
checks (fixedPair in variants, profile source) stay in the models and are reported by the operator.
"""

from __future__ import annotations

from typing import Any

import yaml

from hadis.api.profile import NAME_PATTERN
from hadis.api.service import API_GROUP, API_VERSION, KIND, HadisServiceSpec, HadisServiceStatus

PLURAL = "hadisservices"
SINGULAR = "hadisservice"
SHORT_NAMES = ["hds"]
CRD_NAME = f"{PLURAL}.{API_GROUP}"
CRD_FILE = f"{CRD_NAME}.yaml"

Schema = dict[str, Any]

#: lists whose items are identified by key fields: the API server rejects duplicate keys
_LIST_MAP_KEYS: dict[tuple[str, ...], list[str]] = {
    ("spec", "variants"): ["name"],
    ("spec", "gpuPools"): ["name"],
    ("status", "conditions"): ["type"],
}

_PRINTER_COLUMNS: list[Schema] = [
    {"name": "Policy", "type": "string", "jsonPath": ".spec.policy"},
    {"name": "Light", "type": "string", "jsonPath": ".status.allocation.row.light"},
    {"name": "Heavy", "type": "string", "jsonPath": ".status.allocation.row.heavy"},
    {"name": "Theta", "type": "number", "jsonPath": ".status.allocation.row.theta"},
    {"name": "Tau", "type": "number", "jsonPath": ".status.allocation.row.tau"},
    {"name": "GPUs", "type": "integer", "jsonPath": ".status.gpus"},
    {"name": "Demand QPS", "type": "number", "jsonPath": ".status.demandQps"},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

# JSON-schema keys copied as they are (the OpenAPI v3 subset Kubernetes accepts)
_PLAIN_KEYS = (
    "type",
    "description",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "format",
)


class SchemaError(ValueError):
    """The models use a construct that has no structural OpenAPI form."""


def _structural(node: Schema, defs: dict[str, Schema], path: tuple[str, ...], defaults: bool) -> Schema:
    """One pydantic JSON-schema node as a structural OpenAPI v3 node."""
    where = ".".join(path) or "(root)"
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs, path, defaults)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise SchemaError(f"{where}: a union of {len(options)} non-null types has no structural form")
        merged = {**options[0], **{k: v for k, v in node.items() if k != "anyOf"}}
        return _structural(merged, defs, path, defaults)
    if "allOf" in node or "oneOf" in node:
        raise SchemaError(f"{where}: allOf/oneOf have no structural form here")

    out: Schema = {}
    for key in _PLAIN_KEYS:
        if key in node:
            out[key] = " ".join(node[key].split()) if key == "description" else node[key]
    if "const" in node:
        out["enum"] = [node["const"]]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if bound in node:
            out[plain] = node[bound]
            out[bound] = True
    if "type" not in out:
        if "enum" in out and all(isinstance(v, str) for v in out["enum"]):
            out["type"] = "string"
        else:
            raise SchemaError(f"{where}: no type")

    if out["type"] == "object":
        props = node.get("properties")
        extra = node.get("additionalProperties")
        if props:
            out["properties"] = {k: _structural(v, defs, (*path, k), defaults) for k, v in props.items()}
            if node.get("required"):
                out["required"] = list(node["required"])
        elif isinstance(extra, dict) and extra:
            out["additionalProperties"] = _structural(extra, defs, (*path, "*"), defaults)
        else:  # dict[str, Any]: a free-form object (e.g. a Kubernetes volume source)
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif out["type"] == "array":
        out["items"] = _structural(node["items"], defs, (*path, "[]"), defaults)
        keys = _LIST_MAP_KEYS.get(path)
        if keys:
            out["x-kubernetes-list-type"] = "map"
            out["x-kubernetes-list-map-keys"] = keys

    if defaults and node.get("default") is not None:
        default = node["default"]
        # an object default becomes {}: the API server then fills in its fields' own defaults
        out["default"] = {} if out["type"] == "object" and "properties" in out else default
    return out


def _model_schema(model: type[HadisServiceSpec] | type[HadisServiceStatus], path: str) -> Schema:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(raw, raw.get("$defs", {}), (path,), defaults=path == "spec")


def build_openapi_schema() -> Schema:
    """The ``openAPIV3Schema`` of HadisService: metadata.name restricted, spec and status from the models."""
    status = _model_schema(HadisServiceStatus, "status")
    status["x-kubernetes-preserve-unknown-fields"] = True  # kopf keeps its own bookkeeping there
    return {
        "type": "object",
        "description": "A diffusion model cascade served by HADIS (hadis.io/v1alpha1).",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {
                "type": "object",
                "properties": {"name": {"type": "string", "pattern": NAME_PATTERN, "maxLength": 63}},
            },
            "spec": _model_schema(HadisServiceSpec, "spec"),
            "status": status,
        },
    }


def build_crd() -> Schema:
    """The CustomResourceDefinition manifest (apiextensions.k8s.io/v1) as a dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {"app.kubernetes.io/part-of": "hadis"}},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": ["hadis"],
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [dict(c) for c in _PRINTER_COLUMNS],
                    "schema": {"openAPIV3Schema": build_openapi_schema()},
                }
            ],
        },
    }


def crd_yaml() -> str:
    """The text of ``crds/hadisservices.hadis.io.yaml``."""
    header = "# Generated by `make crds` from hadis.api.service (hadis.reconcile.crd). Do not edit.\n"
    body = yaml.safe_dump(build_crd(), sort_keys=False, allow_unicode=True, width=100)
    return header + body
