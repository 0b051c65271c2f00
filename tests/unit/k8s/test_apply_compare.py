"""What counts as "unchanged" when applying (hadis.k8s.apply's pure helpers)."""

from __future__ import annotations

import copy

import pytest

from hadis.k8s.apply import APPLIED_HASH, ApplyResult, covers, desired_hash, object_key


def _obj() -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": "n", "labels": {"x": "1"}},
        "data": {"k": "v"},
    }


def test_the_hash_ignores_its_own_annotation_and_follows_content() -> None:
    obj = _obj()
    h = desired_hash(obj)
    stamped = copy.deepcopy(obj)
    stamped["metadata"]["annotations"] = {APPLIED_HASH: "old"}  # type: ignore[index]
    assert desired_hash(stamped) == desired_hash({**obj, "metadata": {**obj["metadata"], "annotations": {}}})  # type: ignore[dict-item]
    changed = copy.deepcopy(obj)
    changed["data"] = {"k": "w"}
    assert desired_hash(changed) != h
    assert desired_hash(copy.deepcopy(obj)) == h
    assert object_key(obj) == "ConfigMap/a"


def test_live_objects_with_server_defaults_cover_the_desired_fields() -> None:
    desired = {"spec": {"replicas": 0, "ports": [{"port": 80, "protocol": "TCP"}], "emptyDir": {}}}
    live = {
        "spec": {"replicas": 0, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "emptyDir": {}},
        "status": {"x": 1},
    }
    assert covers(live, desired)


@pytest.mark.parametrize(
    ("live", "desired", "expected"),
    [
        ({"a": 1}, {"a": 2}, False),
        ({"a": [1, 2]}, {"a": [1]}, False),  # lists must match in length
        ({}, {"a": {}}, True),  # omitted empty map
        ({}, {"a": False}, True),  # omitted false
        ({}, {"a": 0}, True),
        ({}, {"a": "x"}, False),
        ({"a": 1}, {"a": True}, False),  # a bool is not a number
        ({"a": 1.0}, {"a": 1}, True),
        ({"a": "1"}, {"a": 1}, False),
    ],
)
def test_covers(live: object, desired: object, expected: bool) -> None:
    assert covers(live, desired) is expected


def test_apply_result_changed() -> None:
    assert not ApplyResult(unchanged=["ConfigMap/a"]).changed
    assert ApplyResult(patched=["ConfigMap/a"]).changed
