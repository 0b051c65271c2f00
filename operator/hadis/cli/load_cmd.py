"""``hadis load``: open-loop replay of a trace against a gateway; prints a summary, writes plots."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

from hadis.cli.common import positive, print_json, progress
from hadis.cli.simulate_cmd import read_trace
from hadis.errors import InputFileError, UserError
from hadis.loadgen.runner import replay
from hadis.loadgen.summary import LoadSummary, Outcome, summarise
from hadis.profiles import DEFAULT_PROFILE, load_profile, load_reference_prompts

API_KEY_ENV = "HADIS_API_KEY"


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("load", help="replay a trace against a gateway (open loop) and summarise")
    p.add_argument("--trace", type=Path, required=True, help="'arrival_ms,prompt_id' file or TIMESTAMP CSV")
    p.add_argument("--url", required=True, help="gateway base URL, e.g. http://127.0.0.1:8000")
    p.add_argument(
        "--slo", type=float, required=True, help="latency SLO in seconds (for the violation ratio)"
    )
    p.add_argument(
        "--prompts", type=Path, default=None, help="prompts, one per line (the profile's by default)"
    )
    p.add_argument("--profile", default=DEFAULT_PROFILE, help="profile whose FIDs value the served mix")
    p.add_argument("--model", default="hadis")
    p.add_argument(
        "--api-key",
        default=None,
        help=f"the gateway's API key (default: ${API_KEY_ENV}); sent as Authorization: Bearer",
    )
    p.add_argument("--size", default="512x512")
    p.add_argument(
        "--target-qps", type=float, default=None, help="compress/stretch the trace to this mean rate"
    )
    p.add_argument("--max-requests", type=int, default=None, help="send only the first N requests")
    p.add_argument(
        "--timeout", type=float, default=120.0, help="give up on one answer after this many seconds"
    )
    p.add_argument("--out", type=Path, default=None, help="write outcomes (JSON) and a latency plot here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)


def _prompts(path: Path | None, profile: str) -> list[str]:
    if path is None:
        return load_reference_prompts(profile)
    try:
        lines = [line.strip() for line in path.read_text().splitlines()]
    except OSError as e:
        raise InputFileError(f"--prompts {path}: cannot read: {e.strerror}") from None
    prompts = [line for line in lines if line]
    if not prompts:
        raise InputFileError(f"--prompts {path}: no prompts")
    return prompts


def run(args: argparse.Namespace) -> int:
    slo = positive("--slo", args.slo)
    if not args.url.startswith(("http://", "https://")):
        raise UserError(f"--url {args.url!r}: expected http://HOST:PORT")
    trace = read_trace(args.trace, args.target_qps, 0)
    prompts = _prompts(args.prompts, args.profile)
    fids = {v.name: v.fid for v in load_profile(args.profile).variants}
    n = (
        len(trace)
        if args.max_requests is None
        else min(len(trace), int(positive("--max-requests", args.max_requests)))
    )
    progress(f"replaying {n} requests over {float(trace.arrival_s[n - 1]):.0f} s against {args.url}")
    step = max(1, n // 10)

    def tick(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            progress(f"  {done}/{total} answered")

    outcomes = asyncio.run(
        replay(
            args.url,
            trace.arrival_s[:n].tolist(),
            trace.prompt_id[:n].tolist(),
            prompts,
            model=args.model,
            size=args.size,
            timeout_s=positive("--timeout", args.timeout),
            progress=tick,
            api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
        )
    )
    summary = summarise(outcomes, slo, fids)
    if args.out is not None:
        write_outputs(outcomes, summary, args.out)
    if args.json:
        print_json(summary.to_dict())
    else:
        print(describe(summary))
    return 0


def describe(s: LoadSummary) -> str:
    fid = "-" if s.mean_fid is None else f"{s.mean_fid:.2f}"
    lines = [
        f"requests {s.requests} · answered with an image {s.ok} · "
        f"errors {sum(s.errors.values())} {s.errors or ''}",
        f"SLO {s.slo_s:g} s: violations {s.violations} (ratio {s.slo_violation_ratio:.4f})",
        f"mean FID of the served mix {fid} · mix "
        + ", ".join(f"{v} {share:.0%}" for v, share in s.served_mix.items()),
        f"throughput {s.throughput_qps:.2f} QPS · goodput {s.goodput_qps:.2f} QPS · latency p50 "
        f"{s.latency_p50_s or 0:.3f} s p99 {s.latency_p99_s or 0:.3f} s",
        f"max send lag {s.max_send_lag_s * 1000:.1f} ms (open loop: sends never wait for answers)",
    ]
    return "\n".join(lines)


def write_outputs(outcomes: list[Outcome], summary: LoadSummary, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary.to_dict(), indent=1))
        (out / "outcomes.json").write_text(json.dumps([o.__dict__ for o in outcomes]))
        fig, ax = plt.subplots(figsize=(10, 4))
        ok = [o for o in outcomes if o.ok]
        bad = [o for o in outcomes if not o.ok]
        ax.scatter([o.due_s for o in ok], [o.latency_s for o in ok], s=2, label="image")
        ax.scatter([o.due_s for o in bad], [o.latency_s for o in bad], s=4, c="red", label="error")
        ax.axhline(summary.slo_s, color="gray", linestyle="--", label="SLO")
        ax.set_xlabel("arrival (s)")
        ax.set_ylabel("latency (s)")
        ax.legend(loc="upper right")
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=100)
        plt.close(fig)
    except OSError as e:
        raise UserError(f"--out {out}: cannot write: {e.strerror}") from None
    progress(f"wrote summary, outcomes and latency.png to {out}/")
