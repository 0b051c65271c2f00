"""The measuring loop of ``hadis_worker.profiling.latency`` with a fake engine: out of memory stops the
batch sizes, an interrupted run resumes where it stopped, and a resumed run refuses other settings."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from hadis_worker.profiling import latency  # noqa: E402

FINGERPRINT = {"device": "cpu", "steps": 2, "guidanceScale": 0.0, "repeats": 2}


class FakeEngine:
    """Runs out of memory from batch ``oom_at`` on; raises KeyboardInterrupt at batch ``stop_at``."""

    def __init__(self, oom_at: int = 99, stop_at: int = 99) -> None:
        self.variant = "fake"
        self.plan = SimpleNamespace(model="/models/fake")
        self.pipe: Any = None
        self.oom_at, self.stop_at = oom_at, stop_at
        self.calls: list[int] = []
        self.loads = 0

    def load(self) -> None:
        self.loads += 1
        self.pipe = object()

    def native_size(self) -> int:
        return 64

    def generate_blocking(self, batch: list[Any], *, record: bool = True) -> list[tuple[bytes, None]]:
        n = len(batch)
        if n >= self.stop_at:
            raise KeyboardInterrupt
        self.calls.append(n)
        if n >= self.oom_at:
            raise torch.OutOfMemoryError("CUDA out of memory (fake)")
        return [(b"", None)] * n


def run(monkeypatch: pytest.MonkeyPatch, engine: FakeEngine, out: Path, *extra: str, **fp: Any) -> int:
    monkeypatch.setattr(latency, "build_engines", lambda args, base: [(engine, {**FINGERPRINT, **fp})])
    monkeypatch.setattr(latency, "import_pipelines", lambda: None)
    argv = ["--variant", "fake=/models/fake", "--gpu-type", "cpu", "--out", str(out), "--batches", "1,2,4,8"]
    return latency.main([*argv, "--repeats", "2", "--warmup", "0", *extra])


def test_out_of_memory_stops_larger_batches(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = FakeEngine(oom_at=4)
    out = tmp_path / "p.json"
    assert run(monkeypatch, engine, out, "--steps", "2", "--guidance-scale", "0") == 0
    assert engine.calls == [1, 1, 2, 2, 4]  # batch 8 never tried
    profile = json.loads(out.read_text())
    assert [b["batch"] for b in profile["variants"][0]["perf"][0]["batches"]] == [1, 2]
    report = json.loads(out.with_suffix(".latency.json").read_text())
    (v,) = report["variants"]
    assert v["largestBatch"] == 2 and [b["oom"] for b in v["batches"]] == [False, False, True]
    printed = capsys.readouterr()
    assert "out of memory" in printed.out and "larger batches skipped" in printed.err
    assert "placeholder" in printed.out and "no cascade sweep" in printed.out


def test_interrupted_run_resumes_and_refuses_other_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p.json"
    partial = tmp_path / "p.partial.json"
    assert run(monkeypatch, FakeEngine(stop_at=4), out) == 130
    assert "--resume continues" in capsys.readouterr().err and not out.exists()
    saved = json.loads(partial.read_text())["variants"]["fake"]
    assert [b["batch"] for b in saved["batches"]] == [1, 2]

    assert run(monkeypatch, FakeEngine(), out, "--resume", repeats=3) == 2
    assert "other settings (repeats)" in capsys.readouterr().err

    engine = FakeEngine()
    assert run(monkeypatch, engine, out, "--resume") == 0
    assert engine.calls == [4, 4, 8, 8] and not partial.exists()
    profile = json.loads(out.read_text())
    assert [b["batch"] for b in profile["variants"][0]["perf"][0]["batches"]] == [1, 2, 4, 8]

    # everything measured: a resumed run does not even load the pipeline
    done = [{"batch": b, "oom": False, "latenciesS": [0.1]} for b in (1, 2, 4, 8)]
    entry = {**saved, "settings": FINGERPRINT, "batches": done}
    json_partial = {"kind": "HadisLatencyPartial", "variants": {"fake": entry}}
    partial.write_text(json.dumps(json_partial))
    idle = FakeEngine()
    assert run(monkeypatch, idle, out, "--resume") == 0
    assert idle.loads == 0 and "already measured" in capsys.readouterr().err


def test_new_variants_need_steps_and_guidance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "--variant",
        "fake=/nowhere",
        "--gpu-type",
        "cpu",
        "--out",
        str(tmp_path / "p.json"),
        "--device",
        "cpu",
    ]
    assert latency.main(argv) == 2
    assert "give --steps and --guidance-scale" in capsys.readouterr().err
    assert latency.main([*argv, "--steps", "2", "--guidance-scale", "0"]) == 2
    assert "error: --variant fake: '/nowhere' is not a directory" in capsys.readouterr().err
