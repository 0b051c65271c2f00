"""``python -m hadis_gateway.score_prompts PROMPTS OUT.csv``: the gateway router's score of every prompt.

PROMPTS has one prompt per line (blank lines skipped); OUT.csv gets ``prompt_index,prompt,router_score``
with the rule-based router the gateway serves with (:class:`hadis_gateway.router.PromptRouter`, the
packaged weights and reference statistics), so offline profiling (``hadis profile quality
--router-scores OUT.csv``) routes exactly as the gateway will. The worker cannot import the
gateway's package, which is why the scores travel through this file.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

COLUMNS = ("prompt_index", "prompt", "router_score")


def read_prompts(path: Path) -> list[str]:
    """Non-blank lines of ``path``, stripped."""
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_scores(path: Path, prompts: list[str], scores: list[float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        for i, (p, s) in enumerate(zip(prompts, scores, strict=True)):
            w.writerow([i, p, repr(float(s))])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hadis_gateway.score_prompts",
        description="Score prompts with the gateway's rule-based router (for hadis profile quality).",
    )
    parser.add_argument("prompts", type=Path, help="text file, one prompt per line")
    parser.add_argument("out", type=Path, help="CSV to write: prompt_index,prompt,router_score")
    parser.add_argument(
        "--spacy-model",
        default=None,
        help="spaCy pipeline (default: $HADIS_ROUTER_SPACY_MODEL or the router's default)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="prompts per spaCy batch")
    args = parser.parse_args(argv)
    try:
        prompts = read_prompts(args.prompts)
    except OSError as e:
        print(f"score_prompts: {args.prompts}: {e.strerror}", file=sys.stderr)
        return 2
    if not prompts:
        print(f"score_prompts: {args.prompts}: no prompts", file=sys.stderr)
        return 2
    from hadis_gateway.router import PromptRouter, RouterModelError

    started = time.perf_counter()
    try:
        router = PromptRouter(args.spacy_model)
    except RouterModelError as e:
        print(f"score_prompts: {e}", file=sys.stderr)
        return 2
    scores = router.score_many(prompts, batch_size=args.batch_size)
    write_scores(args.out, prompts, list(scores))
    print(
        f"scored {len(prompts)} prompts with {router.loaded_model} in {time.perf_counter() - started:.1f} s "
        f"-> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
