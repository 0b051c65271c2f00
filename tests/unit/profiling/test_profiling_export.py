"""A profile as a ConfigMap manifest: parses back into the same profile, the way the operator reads it."""

from __future__ import annotations

import pytest
import yaml

from hadis.profiles import load_profile, parse_profile
from hadis.profiling.export import (
    build_profile_config_map,
    manifest_yaml,
    profile_from_config_map,
    profile_json,
)


def test_config_map_round_trips_through_yaml() -> None:
    profile = load_profile()
    cm = build_profile_config_map(profile, name="my-profile", namespace="diffusion", key="p.json")
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["namespace"] == "diffusion"
    text = manifest_yaml(cm)
    assert "p.json: |" in text  # a readable literal block, not one escaped line
    back = yaml.safe_load(text)
    assert back == cm
    # what the operator does with the ConfigMap's data
    assert parse_profile(back["data"]["p.json"], "cm") == profile
    assert profile_from_config_map(back, "p.json") == profile


def test_namespace_is_optional() -> None:
    cm = build_profile_config_map(load_profile(), name="p")
    assert "namespace" not in cm["metadata"] and list(cm["data"]) == ["profile.json"]


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"name": "My_Profile"}, "--name"),
        ({"name": "ok", "namespace": "Bad NS"}, "--namespace"),
        ({"name": "ok", "key": "a/b"}, "--key"),
    ],
)
def test_bad_names_are_refused(kw: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_profile_config_map(load_profile(), **kw)


def test_oversized_profiles_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import hadis.profiling.export as export

    monkeypatch.setattr(export, "MAX_BYTES", len(profile_json(load_profile())) - 1)
    with pytest.raises(ValueError, match="1 MiB"):
        build_profile_config_map(load_profile(), name="p")
