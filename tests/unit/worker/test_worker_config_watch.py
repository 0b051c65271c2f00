"""The watched cascade configuration as a worker reads it: live changes, a bad file keeps the last good
one, and the worker's part of it (the watcher is shared with the gateway: hadis.cascade_watch)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from hadis.api.wire import CascadeConfig
from hadis.cascade_watch import CascadeConfigWatcher
from hadis_worker.config_watch import VariantRuntime


def cascade(batch: int, *, generation: int = 1, time_scale: float = 1.0) -> dict[str, Any]:
    """A split config serving ``fast`` with this batch size (camelCase, as the control plane writes)."""
    return {
        "generation": generation,
        "policy": "infaas",
        "split": {"fast": 1.0},
        "variants": {"fast": {"batchSize": batch, "endpoints": ["http://127.0.0.1:1"], "steps": 4}},
        "sloS": 5.0,
        "timeScale": time_scale,
    }


def write(path: Path, data: object) -> None:
    path.write_text(data if isinstance(data, str) else json.dumps(data))


def watcher(path: Path) -> tuple[CascadeConfigWatcher, list[CascadeConfig]]:
    seen: list[CascadeConfig] = []
    return CascadeConfigWatcher(path, seen.append, poll_s=0.01), seen


def test_a_new_file_is_applied_once(tmp_path: Path) -> None:
    path = tmp_path / "cascade.json"
    write(path, cascade(4))
    w, seen = watcher(path)
    assert w.poll() and not w.poll()
    assert [c.variants["fast"].batch_size for c in seen] == [4]
    write(path, cascade(8, generation=2))
    assert w.poll()
    assert seen[-1].generation == 2 and w.last_error is None


def test_a_malformed_file_keeps_the_last_good_and_names_the_field(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cascade.json"
    write(path, cascade(4))
    w, seen = watcher(path)
    w.poll()
    write(path, cascade(0, generation=2))
    with caplog.at_level(logging.ERROR):
        assert not w.poll()
    assert w.current is not None and w.current.variants["fast"].batch_size == 4
    assert w.last_error is not None and "variants.fast.batchSize" in w.last_error
    assert (
        "variants.fast.batchSize" in caplog.text
        and "keeping the last good config (generation 1)" in caplog.text
    )
    write(path, "{not json")
    assert not w.poll() and "not valid JSON" in (w.last_error or "")
    assert len(seen) == 1


def test_a_missing_file_is_reported_not_fatal(tmp_path: Path) -> None:
    w, seen = watcher(tmp_path / "absent.json")
    assert not w.poll()
    assert seen == [] and "cannot read" in (w.last_error or "")


def test_runtime_takes_the_variant_entry_or_keeps_the_batch_size() -> None:
    config = CascadeConfig.model_validate(cascade(6, time_scale=0.1))
    before = VariantRuntime(batch_size=2)
    mine = VariantRuntime.from_config(config, "fast", before)
    assert (mine.batch_size, mine.time_scale, mine.steps, mine.generation, mine.listed) == (
        6,
        0.1,
        4,
        1,
        True,
    )
    other = VariantRuntime.from_config(config, "slow", before)
    assert (other.batch_size, other.time_scale, other.listed) == (2, 0.1, False)
