"""``hadis bench e1``: the real local stack and the simulator on the same (shortened) E1 inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hadis.cli.main import main

N = 150


def test_bench_e1_runs_both_modes_and_answers_every_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["bench", "e1", "--policy", "hadis", "--max-requests", str(N), "--json", "--out", str(tmp_path)]
    )
    out = capsys.readouterr().out
    assert code == 0
    rows = json.loads(out)["results"]
    assert sorted(r["mode"] for r in rows) == ["emulated", "simulated"]
    for r in rows:
        assert r["policy"] == "hadis" and r["requests"] == N
        assert (
            0 <= r["slo_violation_ratio"] <= 1 and r["mean_fid"] is not None and r["served_fid"] is not None
        )
    emu = next(r for r in rows if r["mode"] == "emulated")
    assert emu["dropped"] == sum(emu["errors"].values())  # every request: an image or a named error
    assert emu["max_send_lag_s"] < 1.0  # open loop held
    assert (tmp_path / "emulated" / "hadis" / "latency.png").exists()
    assert (tmp_path / "simulated" / "hadis.png").exists()


def test_bench_e1_rejects_a_bad_request_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "e1", "--max-requests", "0"]) == 2
    assert "--max-requests" in capsys.readouterr().err
