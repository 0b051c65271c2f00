"""A profile as a ConfigMap manifest that a HadisService's ``spec.profile.configMap`` references (pure).

The operator reads the key (default ``profile.json``) of the named ConfigMap in the service's
namespace and parses it as a profile (``hadis.profiles.parse_profile``), so the data is the profile's
wire JSON, exactly as ``hadis profile latency`` writes it to a file.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from hadis.api.profile import Profile

#: A ConfigMap's name: a DNS-1123 subdomain.
CONFIG_MAP_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
#: A ConfigMap data key.
DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
#: Kubernetes refuses ConfigMaps whose data exceed 1 MiB.
MAX_BYTES = 1024 * 1024


def profile_json(profile: Profile) -> str:
    """The profile's wire JSON, as a profile file holds it."""
    return json.dumps(profile.to_wire(), indent=1) + "\n"


def build_profile_config_map(
    profile: Profile, *, name: str, namespace: str | None = None, key: str = "profile.json"
) -> dict[str, Any]:
    """The ConfigMap manifest holding ``profile`` under ``key``; a bad name, key or size is a ValueError."""
    if len(name) > 253 or not CONFIG_MAP_NAME.match(name):
        raise ValueError(
            f"--name {name!r}: not a valid ConfigMap name (lowercase DNS subdomain, ≤ 253 chars)"
        )
    if namespace is not None and (
        len(namespace) > 63 or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", namespace)
    ):
        raise ValueError(f"--namespace {namespace!r}: not a valid namespace name (DNS label)")
    if len(key) > 253 or not DATA_KEY.match(key) or key in (".", ".."):
        raise ValueError(f"--key {key!r}: not a valid ConfigMap key (letters, digits, '-', '_', '.')")
    text = profile_json(profile)
    size = len(text.encode())
    if size > MAX_BYTES:
        raise ValueError(
            f"the profile is {size} bytes as JSON; a ConfigMap holds at most {MAX_BYTES} (1 MiB)"
        )
    metadata: dict[str, Any] = {"name": name} | ({"namespace": namespace} if namespace is not None else {})
    metadata |= {
        "labels": {"app.kubernetes.io/part-of": "hadis", "app.kubernetes.io/component": "profile"},
        "annotations": {"hadis.io/profile-name": profile.name},
    }
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {key: text}}


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings as ``|`` blocks, so the profile stays readable in the manifest."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def manifest_yaml(manifest: dict[str, Any]) -> str:
    """YAML text of a manifest (multi-line strings as literal blocks, keys in the given order)."""
    return yaml.dump(manifest, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=4096)


def profile_from_config_map(manifest: dict[str, Any], key: str = "profile.json") -> Profile:
    """The profile a ConfigMap manifest holds under ``key`` (the inverse of the builder)."""
    return Profile.model_validate(json.loads(manifest["data"][key]))
