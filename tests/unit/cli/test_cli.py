"""The ``hadis`` command line: outputs for scripts and people, and clear errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hadis.api import Allocation
from hadis.cli.main import main
from hadis.sim.trace_io import write_arrival_ms
from hadis.sim.traces import poisson_trace

E1_FLAGS = ["--gpus", "16", "--slo", "6", "--time-scale", "0.1"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def small_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trace") / "poisson.txt"
    write_arrival_ms(poisson_trace(8.0, 40.0, np.random.default_rng(3)), path)
    return path


def test_table_json_lists_the_pareto_rows(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "table", "--json")
    data = json.loads(out)
    assert code == 0 and data["sweepRows"] == 726 and len(data["rows"]) == 52
    costs = [r["costS"] for r in data["rows"]]
    assert costs == sorted(costs)


def test_table_restricted_to_variants(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "table", "--variants", "sd35-medium,sd35-large", "--json")
    rows = json.loads(out)["rows"]
    assert rows and {(r["light"], r["heavy"]) for r in rows} == {("sd35-medium", "sd35-large")}


def test_allocate_json_is_the_allocation_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "allocate", "--qps", "64", *E1_FLAGS, "--json")
    a = Allocation.model_validate(json.loads(out))
    assert code == 0 and a.policy == "hadis" and a.feasible and a.row is not None
    assert a.gpus_used <= 16 and a.demand_qps == 64
    for v in (a.row.light, a.row.heavy):
        assert a.capacity_qps(v) >= a.share(v) * 64


def test_allocate_explains_itself(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "allocate", "--qps", "30", "--e1", "--policy", "proteus")
    assert code == 0 and "policy proteus" in out and "routing:" in out and "why:" in out


def test_allocate_overload_prints_the_shedding_plan(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "allocate", "--qps", "5000", *E1_FLAGS, "--json")
    a = Allocation.model_validate(json.loads(out))
    assert code == 0 and a.shed and not a.feasible and a.shed_qps > 0
    assert a.split == {"sdxl-lightning": 1.0}


def test_allocate_on_several_pools(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "allocate",
        "--qps",
        "300",
        "--pool",
        "a:L40S:8",
        "--pool",
        "b:L40S:1016",
        "--slo",
        "60",
        "--json",
    ]
    a = Allocation.model_validate(json.loads(run(capsys, *argv)[1]))
    assert a.gpus_in_pool("a") <= 8 and a.gpus_in_pool("b") <= 1016 and a.feasible


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["allocate", "--qps", "-1", *E1_FLAGS], "--qps: must be ≥ 0, got -1"),
        (["allocate", "--qps", "5", "--gpus", "-2", "--slo", "6"], "--gpus: must be ≥ 0, got -2"),
        (["allocate", "--qps", "5", "--gpus", "4"], "--slo: required"),
        (["allocate", "--qps", "5", *E1_FLAGS, "--policy", "fast"], "--policy: unknown policy 'fast'"),
        (["allocate", "--qps", "5", *E1_FLAGS, "--variants", "sd9"], "--variants: unknown variant 'sd9'"),
        (["allocate", "--qps", "5", "--slo", "6", "--pool", "a:L40S"], "expected NAME:GPU_TYPE:COUNT"),
        (
            ["allocate", "--qps", "5", "--slo", "6", "--pool", "a:H100:4"],
            "GPU type 'H100' not in the profile",
        ),
        (["allocate", "--qps", "5", *E1_FLAGS, "--policy", "fixed-pair"], "--fixed-pair: required"),
        (["allocate", "--qps", "5", *E1_FLAGS, "--profile", "nope"], "unknown built-in profile 'nope'"),
        (["simulate", "--e1", "--gpus", "4"], "--e1 fixes --gpus"),
        (["simulate", "--trace", "/nonexistent/t.txt", *E1_FLAGS], "cannot read"),
    ],
)
def test_user_errors_name_the_input_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_simulate_writes_plots_by_default(
    capsys: pytest.CaptureFixture[str], small_trace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "simulate", "--trace", str(small_trace), *E1_FLAGS, "--policy", "infaas")
    assert code == 0 and (tmp_path / "out" / "poisson" / "infaas.png").stat().st_size > 0
    assert "out/poisson" in err


def test_malformed_trace_names_file_and_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("100,1\n200,2\nabc,3\n")
    code, _, err = run(capsys, "simulate", "--trace", str(bad), *E1_FLAGS)
    assert code == 2 and f"{bad}:3" in err


def test_malformed_profile_names_the_field(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from hadis.profiles import load_profile

    wire = load_profile().to_wire()
    wire["variants"][1]["fid"] = -3  # type: ignore[index]
    f = tmp_path / "profile.json"
    f.write_text(json.dumps(wire))
    code, _, err = run(capsys, "table", "--profile", str(f))
    assert code == 2 and str(f) in err and "variants.1.fid" in err


def test_malformed_sweep_names_file_line_and_column(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    f = tmp_path / "sweep.csv"
    f.write_text("light_model,heavy_model,router_ratio,disc_ratio,threshold,latency,fid\n0,1,x,0,0,0.5,29\n")
    code, _, err = run(capsys, "table", "--sweep", str(f))
    assert code == 2 and f"{f}:2" in err and "router_ratio" in err


def test_simulate_json_has_one_result_per_policy(
    capsys: pytest.CaptureFixture[str], small_trace: Path, tmp_path: Path
) -> None:
    code, out, err = run(
        capsys,
        "simulate",
        "--trace",
        str(small_trace),
        *E1_FLAGS,
        "--compare",
        "--json",
        "--out",
        str(tmp_path),
    )
    results = json.loads(out)["results"]
    assert code == 0
    expected = ["hadis", "diffserve", "router-only", "disc-only", "proteus", "infaas"]
    assert [r["policy"] for r in results] == [*expected, "clipper-light", "clipper-heavy"]
    n = sum(1 for _ in small_trace.open())
    for r in results:
        assert r["requests"] == n and 0 <= r["slo_violation_ratio"] <= 1 and r["goodput_qps"] >= 0
        assert set(r) >= {"policy", "slo_violation_ratio", "mean_fid", "goodput_qps", "requests", "dropped"}
    assert "[8/8] clipper-heavy" in err  # progress goes to stderr, JSON alone to stdout
    assert (tmp_path / "hadis.png").stat().st_size > 0 and (tmp_path / "comparison.png").exists()
    assert json.loads((tmp_path / "hadis.json").read_text())["policy"] == "hadis"


def test_simulate_human_table(capsys: pytest.CaptureFixture[str], small_trace: Path) -> None:
    argv = ["simulate", "--trace", str(small_trace), *E1_FLAGS, "--policy", "clipper-light", "--no-plots"]
    code, out, _ = run(capsys, *argv)
    assert code == 0 and out.splitlines()[0].split()[:3] == ["policy", "SLO", "viol."]
    assert out.splitlines()[2].startswith("clipper-light")


def test_console_script_exit_code_and_no_traceback() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3] / "operator")}
    p = subprocess.run(
        [sys.executable, "-m", "hadis.cli.main", "allocate", "--qps", "-1", *E1_FLAGS],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip() == "hadis allocate: error: --qps: must be ≥ 0, got -1"
