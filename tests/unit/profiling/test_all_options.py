"""hadis.profiling.all_options: `hadis profile all`'s defaults, checks and the stages' command lines."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from hadis.profiling import all_options as opts
from hadis.profiling.latency_options import add_latency_arguments


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    opts.add_all_arguments(p)
    return p.parse_args([*argv, "--out-dir", "out/run"])


FULL = (
    "--variant", "light=org/light", "--variant", "heavy=/models/heavy", "--unet", "heavy=h.safetensors",
    "--discriminator", "clip", "head.safetensors", "--prompts", "p.txt", "--reference-stats", "ref.npz",
    "--gpu-type", "L40S", "--steps", "4", "--guidance-scale", "0", "--features", "clip",
)  # fmt: skip


def test_tiny_defaults_and_overrides() -> None:
    ns = opts.resolve(parse("--tiny", "--k", "1"))
    assert (ns.device, ns.gpu_type, ns.features, ns.batches, ns.repeats, ns.warmup) == (
        "cpu", "cpu", "tiny", [1, 2], 1, 0,
    )  # fmt: skip
    assert ns.k == 1 and ns.steps == 2 and ns.size == 64


def test_what_is_missing_or_does_not_go_together_is_named() -> None:
    missing = "--variant (at least two), --discriminator, --prompts, --reference-images or --reference-stats"
    with pytest.raises(opts.OptionError, match=re.escape(f"{missing}, --gpu-type: required (or --tiny")):
        opts.resolve(parse())
    with pytest.raises(opts.OptionError, match="--variant, --prompts: --tiny builds its own"):
        opts.resolve(parse("--tiny", "--variant", "a=b", "--prompts", "p.txt"))
    with pytest.raises(opts.OptionError, match="--inception-weights: required with --features inception"):
        opts.resolve(parse(*FULL[:-2]))
    with pytest.raises(opts.OptionError, match="--steps and --guidance-scale: required without --merge"):
        opts.resolve(parse(*FULL[:-6], "--features", "clip"))
    assert opts.resolve(parse(*FULL[:-6], "--features", "clip", "--merge", "hadis-paper-l40s")).steps is None
    with pytest.raises(opts.OptionError, match="--namespace: only with --export"):
        opts.resolve(parse(*FULL, "--namespace", "ns"))
    with pytest.raises(opts.OptionError, match="--variant: duplicate names"):
        opts.resolve(parse(*FULL, "--variant", "light=x"))


def test_stage_command_lines_parse_back_into_the_same_settings() -> None:
    ns = opts.resolve(parse(*FULL, "--batches", "1,4", "--size", "512", "--k", "3", "--name", "mine"))
    p = argparse.ArgumentParser()
    add_latency_arguments(p)
    lat = p.parse_args(opts.latency_argv(ns))
    assert lat.variant == [("light", "org/light"), ("heavy", "/models/heavy")]
    assert lat.unet == [("heavy", "h.safetensors")] and lat.batches == [1, 4] and lat.repeats == 5
    assert (lat.steps, lat.guidance_scale, lat.size, lat.gpu_type, lat.name) == (4, 0.0, 512, "L40S", "mine")
    assert lat.out == Path("out/run/profile.json") and lat.discriminator == [
        Path("clip"),
        Path("head.safetensors"),
    ]
    assert lat.merge is None and not lat.resume

    quality_options = pytest.importorskip("hadis_worker.profiling.quality_options")
    q = quality_options.parser().parse_args(opts.quality_argv(ns))
    assert q.variant == lat.variant and q.unet == lat.unet and q.discriminator == lat.discriminator
    assert (q.k, q.steps, q.size, q.features, q.reference_stats) == (3, 4, 512, "clip", Path("ref.npz"))
    assert q.profile == lat.out and q.cache == Path("out/run/cache")
    assert (q.out, q.table) == (Path("out/run/sweep.csv"), Path("out/run/table.csv"))


def test_without_a_name_the_profile_is_named_after_the_directory() -> None:
    lat = opts.latency_argv(opts.resolve(parse(*FULL)))
    assert "--name=run" in lat
    merged = opts.latency_argv(opts.resolve(parse(*FULL, "--merge", "base.json")))
    assert not any(a.startswith("--name") for a in merged) and "--merge=base.json" in merged
