"""Image feature extractors for the quality sweep's FID: ``tiny``, ``clip`` and ``inception``.

An extractor maps RGB images to a (n, d) float64 array; its ``name`` keys the feature cache, so
features of different extractors never mix. FIDs are only comparable between runs of one extractor.

* ``tiny``: a fixed random projection (numpy, seeded) of the image shrunk to 16 × 16 pixels;
  16 dimensions. Instant on a CPU; for tests and smoke runs, not a quality measure.
* ``clip``: the discriminator's CLIP image encoder (its projected embedding, 512-d for ViT-B/32).
* ``inception``: Inception-v3 pool features (2048-d), the FID of the literature, through
  torchmetrics (with torch-fidelity) or clean-fid, whichever is importable. Neither is a
  dependency of HADIS; both pull in torchvision, which the worker does not use, so install them
  without dependencies: ``pip install --no-deps torchmetrics lightning-utilities torch-fidelity``
  or ``pip install --no-deps clean-fid``. Both fetch the Inception weights on first use (from
  GitHub), so run once with network access or pre-populate their cache.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from PIL import Image

FloatArray = npt.NDArray[np.float64]
KINDS = ("tiny", "clip", "inception")
INSTALL_HINT = (
    "the inception features need torchmetrics + torch-fidelity or clean-fid, which are not installed; "
    "install one without its dependencies (they would pull in torchvision): "
    "pip install --no-deps torchmetrics lightning-utilities torch-fidelity "
    "(or: pip install --no-deps clean-fid)"
)


class FeatureError(RuntimeError):
    """A feature extractor that cannot be built; the message says what to install or pass."""


class FeatureExtractor(Protocol):
    name: str

    def extract(self, images: Sequence[Image.Image]) -> FloatArray:
        """(len(images), d) features, in order."""


class TinyFeatures:
    """A fixed random projection of 16 × 16 RGB thumbnails (seeded: the same on every machine)."""

    def __init__(self, dim: int = 16, side: int = 16, seed: int = 0) -> None:
        self.side = side
        self.name = f"tiny-{dim}-{side}-{seed}"
        n_in = side * side * 3
        self._proj = np.random.default_rng(seed).normal(scale=1 / np.sqrt(n_in), size=(n_in, dim))

    def extract(self, images: Sequence[Image.Image]) -> FloatArray:
        from PIL import Image as PilImage

        pixels = [
            np.asarray(im.convert("RGB").resize((self.side, self.side), PilImage.Resampling.BILINEAR))
            for im in images
        ]
        x = np.stack(pixels).reshape(len(pixels), -1).astype(np.float64) / 255.0
        return np.asarray(x @ self._proj, dtype=np.float64)


class ClipFeatures:
    """The projected CLIP image embedding of the discriminator's encoder."""

    def __init__(self, discriminator: Any, clip_name: str) -> None:
        self._disc = discriminator
        self.name = f"clip-{clip_name}"

    def extract(self, images: Sequence[Image.Image]) -> FloatArray:
        return np.asarray(self._disc.embed(images).float().cpu().numpy(), dtype=np.float64)


class TorchmetricsInception:
    """Inception-v3 2048-d pool features as torchmetrics' FID computes them (uint8 input, resized inside)."""

    name = "inception-torchmetrics"

    def __init__(self, device: str) -> None:
        # optional, untyped, not installed by HADIS: imported by name
        net_class = importlib.import_module("torchmetrics.image.fid").NoTrainInceptionV3
        self.device = device
        self._net = net_class(name="inception-v3-compat", features_list=["2048"]).to(device).eval()

    def extract(self, images: Sequence[Image.Image]) -> FloatArray:
        import torch

        x = torch.from_numpy(np.stack([np.asarray(im.convert("RGB")) for im in images])).permute(0, 3, 1, 2)
        with torch.inference_mode():
            out = self._net(x.to(self.device))
        if isinstance(out, (tuple, list)):
            out = out[0]
        return np.asarray(out.reshape(len(images), -1).double().cpu().numpy(), dtype=np.float64)


class CleanFidInception:
    """Inception-v3 features as clean-fid computes them ("clean" mode: PIL bicubic resize to 299)."""

    name = "inception-cleanfid"

    def __init__(self, device: str) -> None:
        import torch

        fid = importlib.import_module("cleanfid.fid")
        make_resizer = importlib.import_module("cleanfid.resize").make_resizer
        self._fid = fid
        self.device = torch.device(device)
        self._model = fid.build_feature_extractor("clean", self.device, use_dataparallel=False)
        self._resize = make_resizer("PIL", False, "bicubic", (299, 299))

    def extract(self, images: Sequence[Image.Image]) -> FloatArray:
        import torch

        resized = [self._resize(np.asarray(im.convert("RGB"))) for im in images]
        batch = torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2)
        return np.asarray(self._fid.get_batch_features(batch, self._model, self.device), dtype=np.float64)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def inception(device: str) -> FeatureExtractor:
    """torchmetrics' Inception if importable (with torch-fidelity), else clean-fid's, else an error."""
    if _importable("torchmetrics") and _importable("torch_fidelity"):
        try:
            return TorchmetricsInception(device)
        except Exception as e:
            raise FeatureError(f"inception features via torchmetrics: {e}") from e
    if _importable("cleanfid"):
        try:
            return CleanFidInception(device)
        except Exception as e:
            raise FeatureError(f"inception features via clean-fid: {e}") from e
    raise FeatureError(INSTALL_HINT)


def build_extractor(
    kind: str, *, device: str = "cpu", discriminator: Any = None, clip_name: str = ""
) -> FeatureExtractor:
    """The extractor named ``kind`` (see :data:`KINDS`); ``clip`` needs the loaded discriminator."""
    if kind == "tiny":
        return TinyFeatures()
    if kind == "clip":
        if discriminator is None:
            raise FeatureError("clip features need the discriminator (--discriminator CLIP_DIR HEAD)")
        return ClipFeatures(discriminator, clip_name)
    if kind == "inception":
        return inception(device)
    raise FeatureError(f"unknown feature extractor {kind!r}; choose one of {list(KINDS)}")
