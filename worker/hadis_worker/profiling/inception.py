"""Inception-v3 pool features (2048-d) for the FID, from a local weights file; nothing is downloaded.

The network is torch-fidelity's ``FeatureExtractorInceptionV3``: the TensorFlow FID Inception
(2015-12-05) ported to PyTorch, with the TF 1.x bilinear resize to 299 × 299 inside; torchmetrics'
FID runs the same network. It takes uint8 RGB images of any size.

torch-fidelity is not a dependency of HADIS, and its package ``__init__`` imports torchvision (which
pulls in a CUDA build of torch): install it without dependencies (``pip install --no-deps
torch-fidelity==0.4.0``). The network's own module needs only torch, so it is imported here without
running that ``__init__`` (when torchvision is absent), and torchvision is never needed.

The weights come from ``--inception-weights FILE``: torch-fidelity's
``weights-inception-2015-12-05-6726825d.pth`` (:data:`WEIGHTS_URL`; fetch it once where there is
network access). The file is first read as plain tensors (``torch.load(weights_only=True)``), so a
file that is not a state dict is refused before torch-fidelity unpickles it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from PIL import Image

FloatArray = npt.NDArray[np.float64]
PACKAGE = "torch_fidelity"
MODULE = "torch_fidelity.feature_extractor_inceptionv3"
WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
INSTALL_HINT = (
    "needs torch-fidelity (not installed); install it without its dependencies, which would pull in "
    "torchvision: pip install --no-deps torch-fidelity==0.4.0"
)
WEIGHTS_HINT = (
    f"the Inception-v3 weights file (torch-fidelity's weights-inception-2015-12-05-6726825d.pth, from "
    f"{WEIGHTS_URL}); nothing is downloaded"
)


class InceptionError(RuntimeError):
    """The Inception network cannot be built; the message names the option or the package."""


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def network_class() -> Any:
    """torch-fidelity's ``FeatureExtractorInceptionV3``, imported without torchvision when it is absent."""
    if PACKAGE not in sys.modules and not _importable("torchvision"):
        spec = importlib.util.find_spec(PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise InceptionError(INSTALL_HINT)
        # the package's submodules without its __init__ (which imports torchvision)
        package = types.ModuleType(PACKAGE)
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules[PACKAGE] = package
    try:
        return importlib.import_module(MODULE).FeatureExtractorInceptionV3
    except ImportError as e:
        raise InceptionError(f"{INSTALL_HINT} ({e})") from None


def check_weights(path: Path | None) -> Path:
    """The weights file, which must exist and hold tensors only."""
    import torch

    if path is None:
        raise InceptionError(f"--inception-weights: required with --features inception: {WEIGHTS_HINT}")
    if not path.is_file():
        raise InceptionError(f"--inception-weights {path}: no such file; expected {WEIGHTS_HINT}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InceptionError(f"--inception-weights {path}: not a PyTorch state dict ({e})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InceptionError(f"--inception-weights {path}: not a state dict of tensors")
    return path


class InceptionFeatures:
    """2048-d Inception-v3 pool features (torch-fidelity's network) of RGB images, on ``device``."""

    def __init__(self, weights: Path | None, device: str = "cpu") -> None:
        import torch

        path = check_weights(weights)
        net_class = network_class()
        st = path.stat()
        key = hashlib.sha256(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:10]
        self.name = f"inception-v3-{key}"
        self.device = torch.device(device)
        try:
            net = net_class("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
        except RuntimeError as e:  # load_state_dict: missing or unexpected keys, wrong shapes
            first = str(e).strip().splitlines()[0:2]
            raise InceptionError(
                f"--inception-weights {path}: not Inception-v3 weights ({' '.join(first)})"
            ) from None
        self._net = net.to(self.device).eval()

    def extract(self, images: Sequence[Image.Image]) -> FloatArray:
        """(len(images), 2048) features, in order; images of one size go through in one batch."""
        import torch

        arrays = [np.asarray(im.convert("RGB")) for im in images]
        out = np.zeros((len(arrays), 2048), dtype=np.float64)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, a in enumerate(arrays):
            by_shape.setdefault(a.shape, []).append(i)
        for idx in by_shape.values():
            x = torch.from_numpy(np.stack([arrays[i] for i in idx])).permute(0, 3, 1, 2).contiguous()
            with torch.inference_mode():
                (features,) = self._net(x.to(self.device))
            out[idx] = features.double().cpu().numpy()
        return out
