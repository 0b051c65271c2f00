"""The cascade configuration built from an allocation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from tests.factories import decision

from hadis.api import Allocation
from hadis.api.wire import CascadeConfig
from hadis.policy.allocator import solve_hadis
from hadis.policy.clipper import decide_clipper_light
from hadis.reconcile.cascade_config import build_cascade_config


def test_cascade_allocation_becomes_row_batches_and_endpoints(paper_profile) -> None:  # type: ignore[no-untyped-def]
    p = paper_profile.time_scaled(0.1)
    a = solve_hadis(decision(p, 30, 16, 6.0))
    assert a.row is not None
    urls = {a.row.light: ["http://127.0.0.1:9001", "http://127.0.0.1:9002"], a.row.heavy: ["http://h:1"]}
    cfg = build_cascade_config(a, p, urls, slo_s=6.0, admission_factor=1.5, time_scale=0.1, generation=7)
    assert cfg.row == a.row and cfg.split == {} and cfg.generation == 7
    assert set(cfg.variants) == {a.row.light, a.row.heavy}
    light = cfg.variants[a.row.light]
    assert light.batch_size == a.batch_size(a.row.light) and light.endpoints == urls[a.row.light]
    assert light.steps == p.variant(a.row.light).steps
    assert CascadeConfig.model_validate_json(cfg.model_dump_json(by_alias=True)) == cfg


def test_split_allocation_and_variant_without_endpoints(paper_profile) -> None:  # type: ignore[no-untyped-def]
    a = decide_clipper_light(decision(paper_profile, 3, 2, 60.0))
    cfg = build_cascade_config(a, paper_profile, {}, slo_s=60.0, admission_factor=1.5)
    assert cfg.row is None and cfg.split == {"sdxl-lightning": 1.0}
    assert cfg.variants["sdxl-lightning"].endpoints == []


def test_config_rejects_routing_to_an_unknown_variant() -> None:
    a = Allocation(policy="x", split={"a": 1.0}, demand_qps=1, expected_fid=20)
    with pytest.raises(ValidationError, match="no entry for 'a'"):
        CascadeConfig(split=a.split, variants={}, slo_s=1.0)
