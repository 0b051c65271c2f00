"""The production FID path: the real Inception-v3 network (torch-fidelity's, without torchvision) with
weights from a local file, through the quality sweep of the tiny pipelines on the CPU.

The weights are random (He-initialised, seeded) and saved to a file the way the real
``weights-inception-2015-12-05-6726825d.pth`` is (a state dict): the architecture, the loading
path, the 2048-d features and the sweep's FID are the production ones; the values are not.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hadis.policy.pareto import dominates
from hadis.profiles import read_sweep_csv

pytestmark = pytest.mark.slow
pytest.importorskip("diffusers")
if importlib.util.find_spec("torch_fidelity") is None:  # importing it would need torchvision
    pytest.skip("needs torch-fidelity: pip install --no-deps torch-fidelity==0.4.0", allow_module_level=True)

LIGHT, HEAVY = "tiny-sd", "tiny-sdxl-lightning"
PROMPTS = ["a red ball on a green field", "two dogs running along a beach at sunset"]


def random_inception_weights(path: Path, seed: int = 0) -> Path:
    """torch-fidelity's Inception-v3 with seeded He-normal weights, saved as a state dict at ``path``.

    Its constructor always loads weights, so the layers are built by running it up to that load
    (a missing file) and the state dict is taken from the half-built network.
    """
    import torch

    from hadis_worker.profiling.inception import network_class

    cls = network_class()
    net = cls.__new__(cls)
    with pytest.raises(FileNotFoundError):
        cls.__init__(net, "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path) + ".none")
    torch.manual_seed(seed)
    state = net.state_dict()
    for name, t in state.items():
        if name.endswith("conv.weight"):  # keep the activations' scale through the 94 convolutions
            fan_in = t.shape[1] * t.shape[2] * t.shape[3]
            t.normal_(0.0, math.sqrt(2.0 / fan_in))
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_inception_weights(tmp_path_factory.mktemp("inception") / "inception-random.pth")


def quality_argv(models: dict[str, Path], root: Path, weights: Path | None) -> list[str]:
    from PIL import Image

    (root / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
    (root / "scores.csv").write_text(
        "prompt,router_score\n" + "".join(f"{p},{i}\n" for i, p in enumerate(PROMPTS))
    )
    ref = root / "reference"
    ref.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i, side in enumerate((64, 64, 80)):  # two sizes: batched by size inside the extractor
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(ref / f"{i}.png")
    argv = [
        "--prompts", str(root / "prompts.txt"), "--k", "1", "--device", "cpu", "--dtype", "float32",
        "--steps", "2", "--guidance-scale", "0", "--size", "64", "--batch-size", "2",
        "--variant", f"{LIGHT}={models['sd']}", "--variant", f"{HEAVY}={models['sdxl']}",
        "--unet", f"{HEAVY}={models['unet_checkpoint']}",
        "--discriminator", str(models["clip"]), str(models["head"]),
        "--router-scores", str(root / "scores.csv"), "--reference-images", str(ref),
        "--features", "inception", "--grid-step", "0.5",
        "--latency", f"{LIGHT}=0.2", "--latency", f"{HEAVY}=0.4",
        "--cache", str(root / "cache"), "--out", str(root / "sweep.csv"), "--table", str(root / "table.csv"),
    ]  # fmt: skip
    if weights is not None:
        argv += ["--inception-weights", str(weights)]
    return argv


def test_quality_sweep_fid_through_inception_from_a_local_weights_file(
    tiny_models: dict[str, Path], weights: Path, tmp_path: Path
) -> None:
    from hadis_worker.profiling import quality

    summary: dict[str, Any] = quality.run(
        quality.parser().parse_args(quality_argv(tiny_models, tmp_path, weights))
    )
    assert "torchvision" not in sys.modules
    assert summary["generated"] == {LIGHT: 2, HEAVY: 2} and summary["sweepRows"] == 9
    assert all(math.isfinite(f) and f > 0 for f in summary["fid"].values())
    assert summary["fid"][LIGHT] != pytest.approx(summary["fid"][HEAVY])
    # the features are the network's 2048-d pool features, cached per image under the weights' key
    (cache,) = (tmp_path / "cache" / LIGHT).glob("*/features-inception-v3-*.npz")
    with np.load(cache) as data:
        assert len(data.files) == 2 and all(data[k].shape == (2048,) for k in data.files)
    (ref_stats,) = (tmp_path / "cache").glob("reference-inception-v3-*.npz")
    with np.load(ref_stats) as data:
        assert data["mu"].shape == (2048,) and int(data["n"]) == 3
    names = {0: LIGHT, 1: HEAVY}
    rows = read_sweep_csv(tmp_path / "sweep.csv", names)
    assert {(r.theta, r.tau) for r in rows} == {(t, u) for t in (0.0, 0.5, 1.0) for u in (0.0, 0.5, 1.0)}
    by = {(r.theta, r.tau): r for r in rows}
    assert by[(0.0, 0.0)].fid == pytest.approx(summary["fid"][LIGHT], rel=1e-5)
    assert by[(1.0, 0.0)].fid == pytest.approx(summary["fid"][HEAVY], rel=1e-5)
    table = read_sweep_csv(tmp_path / "table.csv", names)
    assert table and not any(dominates(a, b) for a in table for b in table)


def test_inception_features_are_deterministic_and_batched_by_size(weights: Path) -> None:
    from PIL import Image

    from hadis_worker.profiling.features import build_extractor

    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 256, (s, s, 3), dtype=np.uint8)) for s in (64, 48, 64)]
    extractor = build_extractor("inception", inception_weights=weights)
    together = extractor.extract(images)
    assert together.shape == (3, 2048) and np.isfinite(together).all()
    alone = np.concatenate([extractor.extract([im]) for im in images])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-6)
    assert not np.allclose(together[0], together[2])
    assert extractor.name == build_extractor("inception", inception_weights=weights).name


def test_inception_weights_errors_name_the_option(tmp_path: Path) -> None:
    import torch

    from hadis_worker.profiling.features import FeatureError, build_extractor

    with pytest.raises(FeatureError, match=r"--inception-weights: required with --features inception.*"
                       r"weights-inception-2015-12-05-6726825d\.pth.*nothing is downloaded"):  # fmt: skip
        build_extractor("inception")
    with pytest.raises(FeatureError, match=r"--inception-weights .*missing\.pth: no such file"):
        build_extractor("inception", inception_weights=tmp_path / "missing.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(FeatureError, match=r"--inception-weights .*garbage\.pth: not a PyTorch state dict"):
        build_extractor("inception", inception_weights=garbage)
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(FeatureError, match=r"--inception-weights .*other\.pth: not Inception-v3 weights"):
        build_extractor("inception", inception_weights=other)
