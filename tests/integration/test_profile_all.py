"""`hadis profile all --tiny`: one command, through the real CLI, from nothing to a checked profile and
Pareto table of tiny random-weight pipelines on the CPU; then resumed after the sweep is deleted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hadis.api import GpuPool
from hadis.api.allocation import DecisionInput
from hadis.policy.pareto import build_pareto_table, dominates, table_for
from hadis.policy.registry import decide
from hadis.profiles import load_profile, read_sweep_csv
from hadis.profiling.sweep import default_grid

pytestmark = pytest.mark.slow
pytest.importorskip("diffusers")

LIGHT, HEAVY = "tiny-sd", "tiny-sdxl-lightning"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def hadis(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hadis.cli.main", *argv], capture_output=True, text=True, env=ENV, timeout=900
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("profile-all") / "demo"
    return out, hadis("profile", "all", "--tiny", "--out-dir", str(out), "--export", "tiny-demo")


def test_one_command_gives_a_checked_profile_and_pareto_table(
    demo: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, done = demo
    assert done.returncode == 0, done.stderr
    for step in ("[1/3] latency: measured", "[2/3] quality: 32 images generated", "[3/3] check"):
        assert step in done.stderr
    assert "Pareto table: " in done.stdout and "allocator: " in done.stdout

    # the profile, through the planning core's loader: both variants, every batch size, measured
    profile = load_profile(out / "profile.json")
    assert profile.name == "demo" and profile.reference_gpu_type == "cpu"
    assert sorted(profile.variant_names) == [LIGHT, HEAVY]
    for name in (LIGHT, HEAVY):
        perf = profile.variant(name).perf_on("cpu")
        assert [(p.batch, p.source) for p in perf.batches] == [(1, "measured"), (2, "measured")]
        assert all(p.latency_s > 0 for p in perf.batches)
    # the sweep: every (pair, θ, τ) cell once, lightest (measured batch 1) first
    names = {v.index: v.name for v in profile.variants if v.index is not None}
    light, heavy = sorted((LIGHT, HEAVY), key=lambda n: profile.variant(n).perf_on("cpu").latency(1))
    sweep = read_sweep_csv(out / "sweep.csv", names)
    grid = default_grid(0.1)
    assert sorted(r.key for r in sweep) == sorted((light, heavy, t, u) for t in grid for u in grid)
    assert sorted(r.key for r in profile.sweep) == sorted(r.key for r in sweep)
    by = {(r.theta, r.tau): r for r in sweep}
    # the single-model FIDs are the measured ones (no placeholder), the ends of the sweep
    assert profile.variant(light).fid == pytest.approx(by[(0.0, 0.0)].fid, rel=1e-5)
    assert profile.variant(heavy).fid == pytest.approx(by[(1.0, 0.0)].fid, rel=1e-5)
    # the table: the sweep's Pareto table (non-dominated, sorted by cost), as the planner builds it
    table = read_sweep_csv(out / "table.csv", names)
    assert table and not any(dominates(a, b) for a in table for b in table)
    costs = [r.cost_s or 0.0 for r in table]
    assert costs == sorted(costs)
    assert [r.key for r in table] == [r.key for r in build_pareto_table(sweep)]
    assert [r.key for r in table] == [r.key for r in table_for(profile)]

    # the allocator solves on them (the same load as the command's check, recorded in check.json)
    check = json.loads((out / "check.json").read_text())
    load = check["allocation"]
    assert load["feasible"] and check["sweepCells"] == 121 and check["tableRows"] == len(table)
    alloc = decide(
        "hadis",
        DecisionInput(
            profile=profile,
            table=table,
            demand_qps=load["demandQps"],
            slo_s=load["sloS"],
            pools=[GpuPool(name="cpu", gpu_type="cpu", count=2)],
        ),
    )
    assert alloc.feasible and alloc.row is not None and alloc.row.key in {r.key for r in table}
    cli = hadis(
        "allocate", "--profile", str(out / "profile.json"), "--gpus", "2", "--json",
        "--qps", f"{load['demandQps']:.6f}", "--slo", f"{load['sloS']:.3f}",
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["feasible"]
    assert "kind: ConfigMap" in (out / "profile-configmap.yaml").read_text()


def test_resume_keeps_the_latencies_and_sweeps_again_from_the_cache(
    demo: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, first = demo
    assert first.returncode == 0, first.stderr
    before = (out / "profile.json").read_text()
    (out / "sweep.csv").unlink()
    again = hadis("profile", "all", "--tiny", "--out-dir", str(out), "--resume")
    assert again.returncode == 0, again.stderr
    assert "[1/3] latency: finished by an earlier run (--resume)" in again.stderr
    assert "[2/3] quality: 0 images generated, 32 from the cache" in again.stderr
    assert "building tiny" not in again.stderr
    # seeded images, cached scores: the same sweep merged into the same latencies
    assert (out / "profile.json").read_text() == before


def test_option_errors_name_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Checked by the CLI before the worker module (and torch) is started."""
    from hadis.cli.main import main

    assert main(["profile", "all", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--variant (at least two), --discriminator, --prompts" in err and "required (or --tiny" in err
    assert main(["profile", "all", "--tiny", "--variant", "a=b", "--out-dir", str(tmp_path)]) == 2
    assert "--variant: --tiny builds its own" in capsys.readouterr().err
    assert main(["profile", "all", "--tiny", "--features", "inception", "--out-dir", str(tmp_path)]) == 2
    assert "--inception-weights: required with --features inception" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
