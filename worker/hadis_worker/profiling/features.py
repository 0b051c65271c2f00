"""Image feature extractors for the quality sweep's FID: ``tiny``, ``clip`` and ``inception``.

An extractor maps RGB images to a (n, d) float64 array; its ``name`` keys the feature cache, so
features of different extractors never mix. FIDs are only comparable between runs of one extractor.

* ``tiny``: a fixed random projection (numpy, seeded) of the image shrunk to 16 × 16 pixels;
  16 dimensions. Instant on a CPU; for tests and smoke runs, not a quality measure.
* ``clip``: the discriminator's CLIP image encoder (its projected embedding, 512-d for ViT-B/32).
* ``inception``: Inception-v3 pool features (2048-d), the FID of the literature: torch-fidelity's
  network (installed with ``--no-deps``; torchvision is not needed) with the weights of a local
  file (``--inception-weights``), see :mod:`hadis_worker.profiling.inception`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from hadis_worker.profiling.inception import InceptionError, InceptionFeatures

if TYPE_CHECKING:
    from PIL import Image

FloatArray = npt.NDArray[np.float64]
KINDS = ("tiny", "clip", "inception")


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


def build_extractor(
    kind: str,
    *,
    device: str = "cpu",
    discriminator: Any = None,
    clip_name: str = "",
    inception_weights: Path | None = None,
) -> FeatureExtractor:
    """The extractor named ``kind`` (see :data:`KINDS`); ``clip`` needs the loaded discriminator,
    ``inception`` its weights file."""
    if kind == "tiny":
        return TinyFeatures()
    if kind == "clip":
        if discriminator is None:
            raise FeatureError("clip features need the discriminator (--discriminator CLIP_DIR HEAD)")
        return ClipFeatures(discriminator, clip_name)
    if kind == "inception":
        try:
            return InceptionFeatures(inception_weights, device)
        except InceptionError as e:
            raise FeatureError(str(e)) from None
    raise FeatureError(f"unknown feature extractor {kind!r}; choose one of {list(KINDS)}")
