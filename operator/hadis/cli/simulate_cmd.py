"""``hadis simulate``: run policies over a trace in the discrete-event simulator, compare, plot."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from hadis.api import Profile
from hadis.api.scores import PromptScores
from hadis.cli.common import (
    add_cluster_options,
    add_profile_options,
    fixed_pair,
    load,
    policy_name,
    pools,
    positive,
    print_json,
    progress,
    variants,
)
from hadis.errors import UserError
from hadis.policy.registry import POLICIES, get_policy
from hadis.profiles import load_prompt_scores
from hadis.sim import presets
from hadis.sim.config import SimConfig
from hadis.sim.engine import simulate
from hadis.sim.report import SimReport
from hadis.sim.trace_io import read_arrival_ms, read_timestamp_csv
from hadis.sim.traces import Trace, compress_to_qps

#: The control interval of a HadisService (allocation.intervalSeconds) before time scaling.
DEFAULT_INTERVAL_S = 50.0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "simulate",
        help="simulate policies on a trace (discrete-event, no GPUs)",
        description="Simulate one policy (--policy) or all of them (--compare) on a trace.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--trace", type=Path, help="an 'arrival_ms,prompt_id' file or a CSV with a TIMESTAMP column"
    )
    src.add_argument(
        "--e1",
        action="store_true",
        help="the paper's E1: packaged trace, --gpus 16 --slo 6 --time-scale 0.1, re-plan every 5 s",
    )
    add_profile_options(p)
    add_cluster_options(p)
    p.add_argument("--compare", action="store_true", help="run every policy and print a comparison table")
    p.add_argument(
        "--target-qps", type=float, default=None, help="compress/stretch the trace to this mean rate"
    )
    p.add_argument("--interval", type=float, default=None, help="re-allocation interval, seconds (50)")
    p.add_argument(
        "--ewma-alpha", type=float, default=None, help="EWMA weight of the newest observation (0.5)"
    )
    p.add_argument("--over-provisioning", type=float, default=None, help="demand multiplier (1.05)")
    p.add_argument(
        "--admission-factor", type=float, default=None, help="drop if not done in factor × SLO (1.5)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out", type=Path, default=None, help="write PNG timelines and JSON reports here (out/<trace name>)"
    )
    p.add_argument("--no-plots", action="store_true", help="write no PNG timelines or JSON reports")
    p.set_defaults(run=run)


def read_trace(path: Path, target_qps: float | None, seed: int) -> Trace:
    try:
        with path.open() as f:
            first = f.readline()
    except OSError as e:
        raise UserError(f"--trace {path}: cannot read: {e.strerror}") from None
    if "TIMESTAMP" in first:
        return read_timestamp_csv(path, np.random.default_rng(seed), target_qps=target_qps)
    return read_arrival_ms(path, target_qps=target_qps)


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    out: dict[str, object] = {}
    for flag, field in (
        ("interval", "interval_s"),
        ("ewma_alpha", "ewma_alpha"),
        ("over_provisioning", "over_provisioning"),
        ("admission_factor", "admission_factor"),
    ):
        value = getattr(args, flag)
        if value is not None:
            out[field] = positive(f"--{flag.replace('_', '-')}", value)
    out["seed"] = args.seed
    return out


def configs(args: argparse.Namespace, names: list[str]) -> tuple[Trace, dict[str, SimConfig]]:
    """The trace and one simulator configuration per policy."""
    over = _overrides(args)
    if args.e1:
        if args.pool or args.gpus is not None or args.slo is not None or args.time_scale is not None:
            raise UserError("--e1 fixes --gpus/--pool, --slo and --time-scale; use --trace for another setup")
        trace = presets.e1_trace()
        if args.target_qps is not None:
            trace = compress_to_qps(trace, positive("--target-qps", args.target_qps))
        names_v, pair = _policy_extras(args, presets.e1_config().profile)
        return trace, {n: presets.e1_config(n, **over, variants=names_v, fixed_pair=pair) for n in names}
    trace = read_trace(args.trace, args.target_qps, args.seed)
    profile = load(args)
    slo = positive("--slo", args.slo)
    scores = _scores(args.profile)
    names_v, pair = _policy_extras(args, profile)
    cfg = SimConfig(
        profile=profile,
        pools=tuple(pools(args, profile)),
        slo_s=slo,
        scores=scores,
        variants=names_v,
        fixed_pair=pair,
    )
    # the control loop runs in the profile's time units: a time-compressed run re-plans as often
    # relative to its latencies (the paper's E1: 50 s × 0.1 = 5 s), observing the load every second
    cfg = dataclasses.replace(
        cfg,
        interval_s=DEFAULT_INTERVAL_S * (args.time_scale or 1.0),
        observe_s=min(presets.ARTIFACT_OBSERVE_S, DEFAULT_INTERVAL_S * (args.time_scale or 1.0)),
        ewma_alpha=presets.ARTIFACT_EWMA_ALPHA,
        over_provisioning=presets.ARTIFACT_OVER_PROVISIONING,
    )
    cfg = dataclasses.replace(cfg, **over)  # type: ignore[arg-type]
    return trace, dict.fromkeys(names, cfg)


def _scores(ref: str) -> PromptScores | None:
    """The profile's per-prompt scores if it ships them; else the simulator draws them at random."""
    try:
        return load_prompt_scores(ref)
    except UserError:
        progress(f"profile {ref}: no per-prompt scores; router and discriminator scores are drawn at random")
        return None


def _policy_extras(
    args: argparse.Namespace, profile: Profile
) -> tuple[tuple[str, ...] | None, tuple[str, str] | None]:
    names = variants(args, profile)
    return (tuple(names) if names else None), fixed_pair(args, profile)


def run(args: argparse.Namespace) -> int:
    if args.compare:
        names = [n for n in POLICIES if n != "fixed-pair" or args.fixed_pair]
    else:
        names = [policy_name(args)]
    trace, cfgs = configs(args, names)
    cfg0 = next(iter(cfgs.values()))
    progress(
        f"trace {trace.name}: {trace.requests} requests over {trace.duration_s:.0f} s "
        f"(mean {trace.mean_qps:.1f} QPS) · {sum(p.count for p in cfg0.pools)} GPUs · SLO {cfg0.slo_s:g} s"
    )
    reports: list[SimReport] = []
    for i, name in enumerate(names, start=1):
        rep = simulate(trace, get_policy(name), cfgs[name], policy_name=name)
        progress(
            f"[{i}/{len(names)}] {name:<14} violations {rep.slo_violation_ratio:.3f}  "
            f"FID {_fmt(rep.mean_fid)}  ({rep.wall_time_s:.2f} s)"
        )
        reports.append(rep)
    if not args.no_plots:
        write_outputs(reports, args.out if args.out is not None else Path("out") / trace.name)
    if args.json:
        print_json({"results": [summary(r) for r in reports]})
    else:
        print(table(reports, paper=presets.PAPER_E1 if args.e1 else {}))
    return 0


def summary(r: SimReport) -> dict[str, object]:
    return {
        "policy": r.policy,
        "slo_violation_ratio": r.slo_violation_ratio,
        "mean_fid": r.mean_fid,
        "goodput_qps": r.goodput_qps,
        "requests": r.requests,
        "dropped": r.dropped,
        "finished_late": r.finished_late,
        "latency_p99_s": r.latency_p99_s,
        "router_hard_fraction": r.router_hard_fraction,
        "escalation_fraction": r.escalation_fraction,
        "gpu_utilisation": r.gpu_utilisation,
        "decisions": r.decisions,
        "infeasible_decisions": r.infeasible_decisions,
        "wall_time_s": r.wall_time_s,
    }


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def table(reports: list[SimReport], paper: dict[str, tuple[float, float]]) -> str:
    head = f"{'policy':<14} {'SLO viol.':>9} {'mean FID':>8} {'goodput':>8} {'requests':>8} "
    head += f"{'dropped':>7} {'late':>6}"
    head += f" {'p99 s':>6}" + ("  paper viol./FID" if paper else "")
    lines = [head, "-" * len(head)]
    for r in reports:
        line = (
            f"{r.policy:<14} {r.slo_violation_ratio:>9.3f} {_fmt(r.mean_fid):>8} {r.goodput_qps:>8.2f} "
            f"{r.requests:>8} {r.dropped:>7} {r.finished_late:>6} {_fmt(r.latency_p99_s):>6}"
        )
        if r.policy in paper:
            line += f"  {paper[r.policy][0]:.3f} / {paper[r.policy][1]:.2f}"
        lines.append(line)
    return "\n".join(lines)


def write_outputs(reports: list[SimReport], out: Path) -> None:
    from hadis.sim.plots import plot_comparison, plot_timeline

    try:
        out.mkdir(parents=True, exist_ok=True)
        for r in reports:
            plot_timeline(r, out / f"{r.policy}.png")
            (out / f"{r.policy}.json").write_text(r.to_json())
        if len(reports) > 1:
            plot_comparison(reports, out / "comparison.png")
    except OSError as e:
        raise UserError(f"--out {out}: cannot write: {e.strerror}") from None
    progress(f"wrote {len(reports)} report(s) and PNG timelines to {out}/")
