"""Train the cascade discriminator's head: frozen CLIP image features → ``Linear(D, 256) → ReLU →
Linear(256, 2)``, real images (class 1) vs generated images (class 0), as in the HADIS paper.

The CLIP features of every image are computed once (the encoder is frozen) and cached in memory;
the head is then trained with Adam and cross-entropy on mini-batches, and the epoch with the best
validation accuracy is kept. The head is written in the format the worker's discriminator loads
(:func:`hadis_worker.discriminator.save_head`). D is the CLIP model's projection dimension (512
for ViT-B/32).

    python -m hadis_worker.training.discriminator --real DIR --generated DIR --clip CLIP_DIR \\
        --out head.safetensors [--epochs 10 --batch 256 --lr 1e-4 --val 0.1 --seed 0 --device cpu]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hadis_worker.discriminator import (
    HIDDEN,
    Discriminator,
    DiscriminatorError,
    DiscriminatorHead,
    image_processor_class,
    save_head,
)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})


class TrainingInputError(ValueError):
    """Bad input (a directory without images, an unreadable image, bad options); exit code 2."""


def image_files(directory: Path) -> list[Path]:
    """The image files under ``directory`` (recursively), sorted."""
    if not directory.is_dir():
        raise TrainingInputError(f"{directory}: not a directory")
    files = sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise TrainingInputError(f"{directory}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def load_encoder(clip_dir: Path, device: str) -> Discriminator:
    """The frozen CLIP image encoder (a saved ``CLIPModel`` or ``CLIPVisionModelWithProjection`` with
    its image processor), wrapped with an untrained head of the matching input size."""
    from transformers import CLIPModel, CLIPVisionModelWithProjection

    config_file = clip_dir / "config.json"
    if not config_file.is_file():
        raise DiscriminatorError(f"{clip_dir}: not a saved CLIP model directory (no config.json)")
    try:
        kind = CLIPModel if json.loads(config_file.read_text()).get("model_type") == "clip" else None
        encoder = (kind or CLIPVisionModelWithProjection).from_pretrained(clip_dir)
        processor = image_processor_class().from_pretrained(clip_dir)
    except Exception as e:
        raise DiscriminatorError(f"{clip_dir}: cannot load the CLIP image encoder: {e}") from None
    encoder.to(device).eval().requires_grad_(False)
    return Discriminator(encoder, processor, DiscriminatorHead(int(encoder.config.projection_dim)), device)


def embed_files(model: Discriminator, files: Sequence[Path], batch: int, label: str) -> torch.Tensor:
    """CLIP features (N × D, float32, CPU) of the image files, ``batch`` images per forward pass."""
    from PIL import Image

    out = []
    for start in range(0, len(files), batch):
        images = []
        for path in files[start : start + batch]:
            try:
                with Image.open(path) as im:
                    images.append(im.convert("RGB"))
            except Exception as e:
                raise TrainingInputError(f"{path}: cannot read the image: {e}") from None
        out.append(model.embed(images).float().cpu())
        print(f"features {label}: {min(start + batch, len(files))}/{len(files)}", flush=True)
    return torch.cat(out)


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    loss: float
    train_acc: float
    val_acc: float | None


def _accuracy(head: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((head(x).argmax(dim=1) == y).float().mean()) if len(y) else float("nan")


def split(n: int, val: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffled (train, validation) indices; the validation share is ``val``, at least one item
    when ``val`` > 0, and never all of them."""
    order = torch.randperm(n, generator=generator)
    n_val = 0 if val <= 0 else min(n - 1, max(1, round(val * n)))
    return order[n_val:], order[:n_val]


def train_head(
    real: torch.Tensor,
    generated: torch.Tensor,
    *,
    epochs: int = 10,
    batch: int = 256,
    lr: float = 1e-4,
    val: float = 0.1,
    seed: int = 0,
    hidden: int = HIDDEN,
    device: str = "cpu",
    log: Any = print,
) -> tuple[DiscriminatorHead, list[EpochStats]]:
    """Train a head on cached features (real = class 1, generated = class 0); returns the head of
    the epoch with the best validation accuracy (the last epoch when there is no validation set)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x = torch.cat([real, generated]).float()
    y = torch.cat([torch.ones(len(real), dtype=torch.long), torch.zeros(len(generated), dtype=torch.long)])
    train_idx, val_idx = split(len(y), val, gen)
    xt, yt = x[train_idx].to(device), y[train_idx].to(device)
    xv, yv = x[val_idx].to(device), y[val_idx].to(device)
    head = DiscriminatorHead(in_dim=x.shape[1], hidden=hidden).to(device)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    history: list[EpochStats] = []
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    for epoch in range(1, epochs + 1):
        head.train()
        total, seen = 0.0, 0
        for chunk in torch.randperm(len(yt), generator=gen).split(batch):
            opt.zero_grad()
            loss = loss_fn(head(xt[chunk]), yt[chunk])
            loss.backward()
            opt.step()
            total += loss.item() * len(chunk)
            seen += len(chunk)
        head.eval()
        stats = EpochStats(
            epoch, total / max(seen, 1), _accuracy(head, xt, yt), _accuracy(head, xv, yv) if len(yv) else None
        )
        history.append(stats)
        val_text = "-" if stats.val_acc is None else f"{stats.val_acc:.3f}"
        log(
            f"epoch {epoch}/{epochs}: loss {stats.loss:.4f}  "
            f"train acc {stats.train_acc:.3f}  val acc {val_text}"
        )
        score = stats.val_acc if stats.val_acc is not None else float(epoch)
        if best is None or score > best[0]:
            best = (score, {k: v.detach().clone() for k, v in head.state_dict().items()})
    if best is not None:
        head.load_state_dict(best[1])
    head.eval()
    return head.cpu(), history


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hadis train discriminator", description="train the discriminator head (frozen CLIP + MLP)"
    )
    p.add_argument("--real", type=Path, required=True, help="directory of real images (class 1)")
    p.add_argument("--generated", type=Path, required=True, help="directory of generated images (class 0)")
    p.add_argument(
        "--clip", type=Path, required=True, help="a saved transformers CLIP model + image processor"
    )
    p.add_argument("--out", type=Path, required=True, help="the head to write (.safetensors, or .pt)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=256, help="training mini-batch")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate")
    p.add_argument("--val", type=float, default=0.1, help="validation share (0: keep the last epoch)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, default=HIDDEN, help="hidden units of the head")
    p.add_argument("--device", default="cpu")
    p.add_argument("--embed-batch", type=int, default=64, help="images per CLIP forward pass")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        for name in ("epochs", "batch", "hidden", "embed_batch"):
            if getattr(args, name) < 1:
                raise TrainingInputError(f"--{name.replace('_', '-')} must be >= 1")
        if not 0.0 <= args.val < 1.0:
            raise TrainingInputError("--val must be in [0, 1)")
        real_files, gen_files = image_files(args.real), image_files(args.generated)
        model = load_encoder(args.clip, args.device)
        print(f"{len(real_files)} real, {len(gen_files)} generated images; CLIP at {args.clip}", flush=True)
        real = embed_files(model, real_files, args.embed_batch, "real")
        generated = embed_files(model, gen_files, args.embed_batch, "generated")
    except (TrainingInputError, DiscriminatorError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    head, history = train_head(
        real,
        generated,
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        val=args.val,
        seed=args.seed,
        hidden=args.hidden,
        device=args.device,
        log=lambda line: print(line, flush=True),
    )
    save_head(head, args.out)
    with_val = [h for h in history if h.val_acc is not None]
    if with_val:
        best = max(with_val, key=lambda h: h.val_acc or 0.0)  # the first best, as kept
        print(f"kept epoch {best.epoch} (val acc {best.val_acc:.3f}); wrote {args.out}", flush=True)
    else:
        print(f"kept the last epoch (no validation set); wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
