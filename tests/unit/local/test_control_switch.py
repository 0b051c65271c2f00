"""Local mode re-allocates make-before-break: the config keeps routing by the old decision until the
new decision's workers are ready, and surplus workers stop only after the gateway applied a config
without them (so no request is sent to a worker that is going away)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hadis.local.control import LocalService
from hadis.local.processes import ProcessGroup
from hadis.specs import parse_spec

SPEC = """
apiVersion: hadis.io/v1alpha1
kind: HadisService
metadata: {name: switch}
spec:
  engine: emulated
  variants: [{name: sdxl-lightning}, {name: sd35-large-turbo}, {name: sd35-medium}, {name: sd35-large}]
  sloSeconds: 6
  gpuPools: [{name: l40s, gpuType: L40S, count: 4}]
  profile: {builtin: hadis-paper-l40s, timeScale: 0.1}
"""


class SleepGroup(ProcessGroup):
    """Children are ``sleep`` processes: the loop's bookkeeping is under test, not the worker."""

    def _spawn(
        self, role: str, module: str, env: dict[str, str], port: int, pool: str
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["sleep", "60"])


@pytest.fixture
def svc(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = LocalService(parse_spec(SPEC, "test"), tmp_path, 0, say=lambda _m: None, keep_warm=False)
    s.group = SleepGroup(tmp_path / "logs", {})
    yield s
    s.group.stop_all(grace_s=1)


def routed(svc: LocalService) -> tuple[str | None, dict[str, list[str]]]:
    cfg = json.loads(svc.config_path.read_text())
    light = cfg["row"]["light"] if cfg.get("row") else None
    return light, {v: e["endpoints"] for v, e in cfg["variants"].items()}


def test_new_decision_routes_only_once_its_workers_are_ready(svc: LocalService) -> None:
    svc.workdir.mkdir(parents=True, exist_ok=True)
    low = svc.decide(1.0, {})
    high = svc.decide(40.0, {})
    assert set(low.active_variants) != set(high.active_variants), "the test needs a change of variants"
    svc.apply(low)
    for c in svc.group.children:
        c.ready = True
    svc.write_config()
    old_workers = list(svc.group.children)
    light0, endpoints0 = routed(svc)
    assert svc.routing is low and light0 == (low.row.light if low.row else None)

    svc.apply(high)  # new workers start, none ready: still routed by `low`, nobody retiring
    assert svc.routing is low and not any(c.retiring for c in svc.group.children)
    assert routed(svc) == (light0, endpoints0)

    for c in svc.group.children:
        c.ready = True
    svc.maybe_switch()
    assert svc.routing is high
    light1, endpoints1 = routed(svc)
    assert light1 == (high.row.light if high.row else None)
    retiring = [c for c in svc.group.children if c.retiring]
    assert retiring and all(c in old_workers for c in retiring)
    listed = {u for urls in endpoints1.values() for u in urls}
    assert not any(c.url in listed for c in retiring)
    for v in high.active_variants:
        assert len(endpoints1[v]) == high.replicas(v)

    svc.retire(svc.generation - 1)  # the gateway has not applied the new config yet: keep them
    assert all(c.proc.poll() is None and c.stop_deadline is None for c in retiring)
    svc.retire(svc.generation)
    for c in retiring:
        c.proc.wait(timeout=5)
    svc.group.reap()
    assert not any(c in svc.group.children for c in retiring)


def test_a_retiring_worker_wanted_again_is_kept(svc: LocalService) -> None:
    svc.workdir.mkdir(parents=True, exist_ok=True)
    low, high = svc.decide(1.0, {}), svc.decide(40.0, {})
    svc.apply(low)
    for c in svc.group.children:
        c.ready = True
    svc.apply(high)
    for c in svc.group.children:
        c.ready = True
    svc.maybe_switch()
    n = len(svc.group.children)
    svc.apply(low)  # back before anything stopped: the retiring workers serve again, none started
    assert len(svc.group.children) == n and svc.routing is low
    serving = [c for c in svc.group.children if not c.retiring]
    assert sorted(c.role for c in serving) == sorted(
        a.variant for a in low.variants for _ in range(a.replicas)
    )


def test_warm_standbys_make_a_reallocation_a_config_change(tmp_path: Path) -> None:
    svc = LocalService(parse_spec(SPEC, "test"), tmp_path, 0, say=lambda _m: None)
    assert svc.keep_warm  # every engine is emulated
    svc.group = SleepGroup(tmp_path / "logs", {})
    try:
        svc.workdir.mkdir(parents=True, exist_ok=True)
        svc.start_standbys()
        assert len(svc.group.children) == 4 * 4  # one per GPU for each of the 4 variants
        for c in svc.group.children:
            c.ready = True
        low, high = svc.decide(1.0, {}), svc.decide(40.0, {})
        svc.apply(low)
        procs = {id(c.proc) for c in svc.group.children}
        svc.apply(high)  # no process starts, routed at once, nobody stopped
        assert svc.routing is high and {id(c.proc) for c in svc.group.children} == procs
        _, endpoints = routed(svc)
        for v in high.active_variants:
            assert len(endpoints[v]) == high.replicas(v)
        svc.retire(svc.generation)
        assert all(c.stop_deadline is None and c.proc.poll() is None for c in svc.group.children)
    finally:
        svc.group.stop_all(grace_s=1)
