"""``hadis profile latency`` end to end on the tiny pipelines (CPU): interrupted, resumed, then read
by ``hadis table``/``allocate`` and exported as a ConfigMap that parses back into the same profile."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hadis.profiles import load_profile, parse_profile

pytestmark = pytest.mark.slow

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def hadis(*argv: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hadis.cli.main", *argv],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=timeout,
    )


def test_latency_profile_resumes_and_feeds_table_allocate_and_export(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    tiny = load_profile(tiny_models["profile"])
    out = tmp_path / "cpu.json"
    partial = tmp_path / "cpu.partial.json"
    argv = [
        "profile", "latency", "--variant", f"tiny-sd={tiny_models['sd']}", "--device", "cpu",
        "--batches", "1,2", "--repeats", "2", "--warmup", "0", "--gpu-type", "cpu",
        "--merge", str(tiny_models["profile"]), "--out", str(out),
    ]  # fmt: skip

    # 1. interrupted (Ctrl-C to the process group) right after the first batch size was measured
    proc = subprocess.Popen(
        [sys.executable, "-m", "hadis.cli.main", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=True,
        # a Ctrl-C must reach it even when this test runs in a background job (where SIGINT is ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("[tiny-sd] batch 1:"):
            os.killpg(proc.pid, signal.SIGINT)
            break
    _, rest = proc.communicate(timeout=120)
    err = "".join(seen) + rest
    assert proc.returncode == 130, err
    assert "--resume continues" in err and not out.exists()
    done = json.loads(partial.read_text())["variants"]["tiny-sd"]
    assert [b["batch"] for b in done["batches"]] == [1] and len(done["batches"][0]["latenciesS"]) == 2

    # 2. resumed: only batch 2 is measured (batch 1's figures are the first run's), plus the discriminator
    clip, head = tiny_models["clip"], tiny_models["head"]
    res = hadis(*argv, "--resume", "--discriminator", str(clip), str(head))
    assert res.returncode == 0, res.stderr
    assert "[tiny-sd] loaded in" in res.stderr and "batches to measure: [2]" in res.stderr
    assert "[tiny-sd] batch 2: p50" in res.stderr and "largest batch that fits 2" in res.stdout
    assert not partial.exists()
    profile = load_profile(out)
    perf = profile.variant("tiny-sd").perf_on("cpu")
    assert [(p.batch, p.source, p.memory_gib) for p in perf.batches] == [
        (1, "measured", None),
        (2, "measured", None),
    ]
    assert perf.latency(1) == pytest.approx(done["batches"][0]["p50S"], abs=1e-6)
    # what --merge kept: the other variant, the FIDs, the sweep
    assert profile.variant("tiny-sdxl-lightning") == tiny.variant("tiny-sdxl-lightning")
    assert profile.variant("tiny-sd").fid == tiny.variant("tiny-sd").fid and profile.sweep == tiny.sweep
    report = json.loads((tmp_path / "cpu.latency.json").read_text())
    (variant,) = report["variants"]
    assert variant["swapS"] is None and variant["loadS"] > 0 and variant["discriminatorSPerImage"] > 0
    assert variant["largestBatch"] == 2 and "not measured on the CPU" in report["memory"]

    # 3. the planning commands accept it
    table = hadis("table", "--profile", str(out), "--json")
    assert table.returncode == 0, table.stderr
    assert json.loads(table.stdout)["rows"]
    alloc = hadis("allocate", "--profile", str(out), "--gpus", "2", "--qps", "0.5", "--slo", "60", "--json")
    assert alloc.returncode == 0, alloc.stderr

    # 4. exported as a ConfigMap whose data is the same profile
    cm_file = tmp_path / "cm.yaml"
    exp = hadis(
        "profile", "export", str(out), "--name", "tiny-cpu", "--namespace", "diffusion", "-o", str(cm_file)
    )
    assert exp.returncode == 0, exp.stderr
    cm = yaml.safe_load(cm_file.read_text())
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "tiny-cpu"
    assert parse_profile(cm["data"]["profile.json"], "ConfigMap") == profile
