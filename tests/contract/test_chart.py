"""Contract: the Helm chart agrees with the package and documents itself (no Helm needed; the e2e
test tests/e2e/test_helm_chart.py lints and installs it for real)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "hadis"
KEY = re.compile(r"^(\s*)([A-Za-z_][\w.-]*|\"[^\"]+\"):(\s|$)")


def test_the_chart_deploys_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert chart["appVersion"] == version, "Chart.yaml appVersion must be pyproject's version (the image tag)"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["image"]["tag"] == "", "an empty tag means the appVersion: keep it so"


def test_the_chart_default_image_is_the_one_make_images_builds() -> None:
    """helm install with default values must find the operator image `make images` (and the local
    build, .ci/images.sh) tagged: IMAGE_PREFIX + operator."""
    makefile = (ROOT / "Makefile").read_text()
    prefix = re.search(r"^IMAGE_PREFIX\s*\?=\s*(\S+)", makefile, re.M)
    assert prefix, "Makefile has no IMAGE_PREFIX"
    script = (ROOT / ".ci" / "images.sh").read_text()
    local = re.search(r'PREFIX="\$\{HADIS_IMAGE_PREFIX:-([^}]+)\}"', script)
    assert local, ".ci/images.sh has no default HADIS_IMAGE_PREFIX"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["image"]["repository"] == f"{prefix.group(1)}operator" == f"{local.group(1)}operator"


def test_every_values_key_has_a_comment() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    for i, line in enumerate(lines):
        m = KEY.match(line)
        if not m:
            continue
        above = lines[i - 1].strip() if i else ""
        if not above.startswith("#") and "#" not in line:
            undocumented.append(f"values.yaml:{i + 1}: {line.strip()}")
    assert not undocumented, "keys without a comment:\n" + "\n".join(undocumented)


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return _resolve(node, root)


def _unknown_keys(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str) -> list[str]:
    schema = _resolve(schema, root)
    if not isinstance(value, dict) or "properties" not in schema:
        return []
    out = []
    for k, v in value.items():
        if k in schema["properties"]:
            out += _unknown_keys(v, schema["properties"][k], root, f"{path}.{k}")
        elif schema.get("additionalProperties") is False:
            out.append(f"{path}.{k}")
    return out


def test_the_schema_knows_every_default_key() -> None:
    """The schema is closed (additionalProperties false): a default it does not list would make the
    chart fail its own validation."""
    root = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert root.get("additionalProperties") is False
    assert _unknown_keys(values, root, root, "") == []
    assert set(root["required"]) <= set(values)


def test_the_operator_pod_defaults_are_restricted() -> None:
    """Non-root, read-only root filesystem (a /tmp emptyDir is the one writable path), no privilege
    escalation, no capabilities, RuntimeDefault seccomp: the Pod Security "restricted" profile."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    pod = values["podSecurityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0 and pod["runAsGroup"] != 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert values["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    template = (CHART / "templates" / "deployment.yaml").read_text()
    assert "toYaml .Values.podSecurityContext" in template and "toYaml .Values.securityContext" in template
    mounts = re.findall(r"- name: (\S+)\n\s+mountPath: (\S+)", template)
    assert mounts == [("tmp", "/tmp")]
    assert re.search(r"- name: tmp\n\s+emptyDir:", template)


def _rules() -> list[dict[str, Any]]:
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    body = helpers.split('{{- define "hadis.rules" -}}', 1)[1].split("{{- end }}", 1)[0]
    rules: list[dict[str, Any]] = yaml.safe_load(body)
    # every rule says why: a comment line right before it
    lines = body.strip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("- apiGroups:")]
    assert len(starts) == len(rules) and all(lines[i - 1].startswith("#") for i in starts)
    return rules


def test_the_operator_rbac_is_least_privilege() -> None:
    granted = {
        (g, r): set(rule["verbs"]) for rule in _rules() for g in rule["apiGroups"] for r in rule["resources"]
    }
    assert granted == {
        ("hadis.io", "hadisservices"): {"list", "watch", "patch"},
        ("hadis.io", "hadisservices/status"): {"patch"},
        ("apps", "deployments"): {"get", "list", "create", "patch", "delete"},
        ("", "services"): {"get", "list", "create", "patch", "delete"},
        ("", "configmaps"): {"get", "list", "create", "patch", "delete"},
        ("", "events"): {"create"},
    }
    rbac = (CHART / "templates" / "rbac.yaml").read_text()
    assert "*" not in json.dumps(_rules()) and "secrets" not in rbac and "pods" not in rbac
