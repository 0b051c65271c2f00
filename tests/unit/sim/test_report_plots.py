"""Reports are JSON-serialisable and their timelines add up; plots write PNGs; config validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.factories import variant
from tests.unit.sim.simkit import PROFILE, cascade, config, fixed, split

from hadis.api import GpuPool
from hadis.sim.config import SimConfig, batch_latencies
from hadis.sim.engine import simulate
from hadis.sim.plots import plot_comparison, plot_timeline
from hadis.sim.traces import poisson_trace


def test_report_json_and_timeline_totals() -> None:
    t = poisson_trace(20, 30, np.random.default_rng(0))
    r = simulate(t, fixed(cascade(0.2, 0.2, light=1, heavy=3)), config(gpus=4, slo=2.0))
    d = json.loads(r.to_json())
    assert d["requests"] == len(t) and d["policy"] == "fake-cascade"
    tl = r.timeline
    assert len(tl.time_s) == 30 and sum(tl.arrivals_qps) == pytest.approx(len(t))
    assert sum(tl.violations) == r.violations
    assert tl.gpus == {"fast": [1] * 30, "slow": [3] * 30}
    assert set(tl.queue) == {"fast", "slow"} and max(tl.queue["slow"]) > 0
    assert "timeline" not in json.loads(r.to_json(timeline=False))


def test_plots_write_pngs(tmp_path: Path) -> None:
    t = poisson_trace(10, 20, np.random.default_rng(1))
    a = simulate(t, fixed(cascade(0.2, 0.2, light=2, heavy=4)), config(gpus=6))
    b = simulate(t, fixed(split({"fast": 1.0}, {"fast": 6})), config(gpus=6))
    for path in (plot_timeline(a, tmp_path / "a.png"), plot_comparison([a, b], tmp_path / "sub" / "cmp.png")):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="at least one report"):
        plot_comparison([], tmp_path / "x.png")


def test_batch_latencies_interpolate_between_profiled_sizes() -> None:
    perf = variant("v", 1.0, 20.0).perf[0]  # profiled 1, 2, 4, 8: 1.0, 1.8, 3.6, 7.2
    lat = batch_latencies(perf, 10)
    assert lat[:3] == [0.0, 1.0, 1.8] and lat[4] == pytest.approx(3.6)
    assert lat[3] == pytest.approx(2.7) and lat[6] == pytest.approx(5.4)
    assert lat[10] == pytest.approx(7.2 + 2 * 0.9)  # extrapolated with the last slope


@pytest.mark.parametrize(
    ("field", "kw"),
    [
        ("slo_s", {"slo_s": -1.0}),
        ("interval_s", {"interval_s": 0.0}),
        ("admission_factor", {"admission_factor": 0.0}),
        ("ewma_alpha", {"ewma_alpha": 1.5}),
        ("initial_qps", {"initial_qps": -3.0}),
        ("swap_s", {"swap_s": -1.0}),
        ("observe_s", {"observe_s": 100.0}),
    ],
)
def test_config_errors_name_the_field(field: str, kw: dict[str, float]) -> None:
    base: dict[str, object] = {
        "profile": PROFILE,
        "pools": (GpuPool(name="p", gpu_type="T4", count=1),),
        "slo_s": 1.0,
    }
    with pytest.raises(ValueError, match=field):
        SimConfig(**{**base, **kw})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"pools\[0\]\.gpu_type"):
        SimConfig(profile=PROFILE, pools=(GpuPool(name="p", gpu_type="H100", count=1),), slo_s=1.0)


def test_allocation_naming_an_unknown_pool_is_an_error() -> None:
    from tests.unit.sim.simkit import workers

    bad = split({"fast": 1.0}, {"fast": 1}).model_copy(
        update={"variants": [workers("fast", 1, pool="other")]}
    )
    with pytest.raises(ValueError, match="pool 'other'"):
        simulate(poisson_trace(1, 5, np.random.default_rng(0)), fixed(bad), config())
