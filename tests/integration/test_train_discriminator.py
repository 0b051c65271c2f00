"""``hadis train discriminator`` on CPU: the tiny random CLIP, a few dozen synthetic images whose
classes differ in brightness; the head it writes loads through the worker's real loader."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from hadis.cli.main import main
from hadis.training.metrics import auroc

pytestmark = pytest.mark.slow

REAL = (70, 230)  # bright uniform noise
GENERATED = (30, 190)  # dark uniform noise, overlapping


def noise_images(directory: Path, n: int, pixel_range: tuple[int, int], seed: int) -> list[Path]:
    from PIL import Image

    directory.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = directory / f"{i:03}.png"
        Image.fromarray(rng.integers(*pixel_range, size=(32, 32, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_trained_head_loads_in_the_worker_and_separates_real_from_generated(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("transformers", reason="needs the diffusers extra (pip install 'hadis[diffusers]')")
    from PIL import Image

    from hadis_worker.discriminator import Discriminator
    from hadis_worker.tiny_models import build_discriminator

    clip_dir, _ = build_discriminator(tmp_path / "tiny")
    noise_images(tmp_path / "real", 30, REAL, seed=1)
    noise_images(tmp_path / "generated", 30, GENERATED, seed=2)
    head_path = tmp_path / "out" / "head.safetensors"
    # the paper's settings (Adam 1e-4, 10 epochs, batch 256), a larger validation share for 60 images
    code = main(
        [
            "train", "discriminator",
            "--real", str(tmp_path / "real"),
            "--generated", str(tmp_path / "generated"),
            "--clip", str(clip_dir),
            "--out", str(head_path),
            "--val", "0.3",
        ]
    )  # fmt: skip
    out, err = capfd.readouterr()
    assert code == 0, err
    epochs = re.findall(r"epoch (\d+)/10: loss ([\d.]+)  train acc ([\d.]+)  val acc ([\d.]+)", out)
    assert len(epochs) == 10, out
    kept = re.search(r"kept epoch (\d+) \(val acc ([\d.]+)\)", out)
    assert kept is not None, out
    assert float(kept.group(2)) == max(float(e[3]) for e in epochs)
    assert float(kept.group(2)) >= 0.8, out  # chance is 0.5
    assert float(epochs[-1][1]) < float(epochs[0][1])  # the loss falls

    disc = Discriminator.load(clip_dir, head_path)
    fresh_real = [Image.open(p) for p in noise_images(tmp_path / "fresh-real", 12, REAL, seed=3)]
    fresh_gen = [Image.open(p) for p in noise_images(tmp_path / "fresh-gen", 12, GENERATED, seed=4)]
    real_scores, gen_scores = disc.score(fresh_real), disc.score(fresh_gen)
    assert np.mean(real_scores) > np.mean(gen_scores)
    assert auroc(real_scores + gen_scores, [1] * 12 + [0] * 12) >= 0.9


def test_bad_input_is_a_clear_error(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("transformers", reason="needs the diffusers extra (pip install 'hadis[diffusers]')")
    (tmp_path / "empty").mkdir()
    noise_images(tmp_path / "gen", 2, GENERATED, seed=0)
    code = main(
        [
            "train", "discriminator",
            "--real", str(tmp_path / "empty"),
            "--generated", str(tmp_path / "gen"),
            "--clip", str(tmp_path / "no-clip"),
            "--out", str(tmp_path / "head.safetensors"),
        ]
    )  # fmt: skip
    _, err = capfd.readouterr()
    assert code == 2
    assert "empty: no images" in err
    assert not (tmp_path / "head.safetensors").exists()
