"""The cascade's discriminator: CLIP ViT-B/32 image encoder + an MLP head scoring p_real.

As in the HADIS paper: the frozen CLIP image encoder's projected embedding (512-d for ViT-B/32,
not normalised) goes through ``Linear(512, 256) → ReLU → Linear(256, 2)``, and
``p_real = softmax(logits)[:, 1]`` (class 1 = real). The light workers score their own outputs;
the gateway escalates the lowest-p_real share τ to the heavy model.

Files (local paths only, nothing is fetched):

- the CLIP model: a directory written by ``save_pretrained`` of a transformers
  ``CLIPVisionModelWithProjection`` or ``CLIPModel`` (``config.json`` + weights) together with its
  image processor (``preprocessor_config.json``);
- the head: a state dict, ``.safetensors`` or a torch ``.pt``/``.pth`` file, with exactly

  =============  =============  ===================================
  key            shape          meaning
  =============  =============  ===================================
  ``0.weight``   (256, D)       first linear layer (D = CLIP's projection dim, 512)
  ``0.bias``     (256,)
  ``2.weight``   (2, 256)       second linear layer; row 1 is "real"
  ``2.bias``     (2,)
  =============  =============  ===================================

  (the keys of ``nn.Sequential(Linear, ReLU, Linear)``). :func:`load_head` also accepts the paper
  artifact's whole-module checkpoint, whose head keys carry an ``fc.`` prefix (other keys are
  ignored). :func:`save_head` writes this format (``hadis train discriminator`` uses it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger("hadis_worker.discriminator")

HEAD_KEYS = ("0.weight", "0.bias", "2.weight", "2.bias")
HIDDEN = 256
EMBED_DIM = 512


class DiscriminatorError(ValueError):
    """A discriminator file that is missing or not in the expected format; the message names it."""


class DiscriminatorHead(nn.Sequential):  # type: ignore[misc]  # torch is Any to mypy
    """``Linear(in_dim, 256) → ReLU → Linear(256, 2)``; its state dict has the keys of :data:`HEAD_KEYS`."""

    def __init__(self, in_dim: int = EMBED_DIM, hidden: int = HIDDEN) -> None:
        super().__init__(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    @property
    def in_dim(self) -> int:
        first = self[0]
        assert isinstance(first, nn.Linear)
        return int(first.in_features)

    def p_real(self, embeddings: torch.Tensor) -> torch.Tensor:
        """p_real per row of ``embeddings`` (N × in_dim)."""
        return torch.softmax(self(embeddings).float(), dim=-1)[:, 1]


def save_head(head: DiscriminatorHead, path: Path) -> None:
    """Write the head's state dict: safetensors for ``.safetensors``, else ``torch.save``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)


def load_head(path: Path) -> DiscriminatorHead:
    """Read a head written by :func:`save_head` (or the paper artifact's checkpoint); checks its shapes."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            raw: dict[str, Any] = load_file(str(path))
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DiscriminatorError(f"{path}: no such discriminator head file") from None
    except Exception as e:
        raise DiscriminatorError(f"{path}: cannot read the discriminator head: {e}") from None
    if not isinstance(raw, dict):
        raise DiscriminatorError(f"{path}: expected a state dict, got {type(raw).__name__}")
    state = {k.removeprefix("fc."): v for k, v in raw.items() if k in HEAD_KEYS or k.startswith("fc.")}
    missing = [k for k in HEAD_KEYS if k not in state]
    if missing:
        raise DiscriminatorError(f"{path}: head state dict lacks {missing} (has {sorted(raw)[:8]})")
    w1, w2 = state["0.weight"], state["2.weight"]
    if w1.ndim != 2 or w2.ndim != 2 or w2.shape != (2, w1.shape[0]):
        raise DiscriminatorError(
            f"{path}: expected 0.weight (H, D) and 2.weight (2, H), "
            f"got {tuple(w1.shape)} and {tuple(w2.shape)}"
        )
    head = DiscriminatorHead(in_dim=int(w1.shape[1]), hidden=int(w1.shape[0]))
    head.load_state_dict({k: state[k] for k in HEAD_KEYS})
    head.eval()
    return head


def image_processor_class() -> Any:
    """transformers' CLIP image processor without torchvision (``CLIPImageProcessorPil`` if it exists)."""
    import transformers

    return getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor


class Discriminator:
    """CLIP image encoder + head on one device; :meth:`score` is batched and blocking."""

    def __init__(self, encoder: Any, processor: Any, head: DiscriminatorHead, device: str = "cpu") -> None:
        self.encoder = encoder  # CLIPVisionModelWithProjection or CLIPModel
        self.processor = processor
        self.head = head.to(device)
        self.device = device

    @classmethod
    def load(cls, clip_dir: Path, head_path: Path, device: str = "cpu") -> Discriminator:
        """Load from local paths (see the module docstring); a problem is a :class:`DiscriminatorError`."""
        from transformers import CLIPModel, CLIPVisionModelWithProjection

        config_file = clip_dir / "config.json"
        if not config_file.is_file():
            raise DiscriminatorError(f"{clip_dir}: not a saved CLIP model directory (no config.json)")
        try:
            model_type = json.loads(config_file.read_text()).get("model_type", "")
            kind = CLIPModel if model_type == "clip" else CLIPVisionModelWithProjection
            encoder = kind.from_pretrained(clip_dir)
            processor = image_processor_class().from_pretrained(clip_dir)
        except Exception as e:
            raise DiscriminatorError(f"{clip_dir}: cannot load the CLIP image encoder: {e}") from None
        head = load_head(head_path)
        dim = int(encoder.config.projection_dim)
        if head.in_dim != dim:
            raise DiscriminatorError(
                f"{head_path}: the head takes {head.in_dim}-d embeddings, "
                f"the CLIP model at {clip_dir} gives {dim}-d"
            )
        encoder.to(device).eval()
        return cls(encoder, processor, head, device)

    def embed(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """CLIP image embeddings (N × projection dim, not normalised) of RGB images."""
        pixels = self.processor(images=[im.convert("RGB") for im in images], return_tensors="pt")
        values = pixels["pixel_values"].to(self.device, dtype=next(self.encoder.parameters()).dtype)
        with torch.inference_mode():
            if hasattr(self.encoder, "get_image_features"):  # a whole CLIPModel
                out = self.encoder.get_image_features(pixel_values=values)
                # transformers 5 returns the projected features as pooler_output, 4 a tensor
                return out if isinstance(out, torch.Tensor) else out.pooler_output
            return self.encoder(pixel_values=values).image_embeds

    def score(self, images: Sequence[Image.Image]) -> list[float]:
        """p_real ∈ [0, 1] per image, in order (one forward pass for the whole list)."""
        if not images:
            return []
        with torch.inference_mode():
            emb = self.embed(images).to(next(self.head.parameters()).dtype)
            p = self.head.p_real(emb).cpu().tolist()
        return [min(1.0, max(0.0, float(x))) for x in p]
