"""``hadis bench e1``: the paper's E1 on the real local stack (emulated) and in the simulator."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from hadis.cli.common import print_json, progress
from hadis.cli.load_cmd import write_outputs as write_load_outputs
from hadis.cli.simulate_cmd import summary as sim_summary
from hadis.cli.simulate_cmd import write_outputs as write_sim_outputs
from hadis.errors import UserError
from hadis.experiments.e1 import EmulatedRun, run_emulated, time_weighted_fid, truncate
from hadis.experiments.targets import check_e1
from hadis.loadgen.summary import LoadSummary, summarise
from hadis.local.processes import free_port
from hadis.policy.registry import POLICIES, get_policy
from hadis.profiles import DEFAULT_PROFILE, load_profile, load_reference_prompts
from hadis.sim import presets
from hadis.sim.engine import simulate

MODES = ("emulated", "simulated")
E1_POLICIES = [p for p in POLICIES if p != "fixed-pair"]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("bench", help="run the paper's experiments on the local stack and in the simulator")
    exp = p.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    e1 = exp.add_parser(
        "e1",
        help="E1: 16 emulated L40S (latencies × 0.1), SLO 6 s, the packaged 10→64 QPS trace",
        description="Run E1 for every policy (or --policy) in emulation (real gateway, worker "
        "processes and control loop) and in the simulator, and print one comparison table.",
    )
    e1.add_argument(
        "--policy", action="append", choices=E1_POLICIES, help="run this policy only (repeatable)"
    )
    e1.add_argument("--mode", choices=(*MODES, "both"), default="both")
    e1.add_argument("--max-requests", type=int, default=None, help="replay only the first N requests")
    e1.add_argument("--out", type=Path, default=Path("out/bench-e1"), help="plots and JSON reports")
    e1.add_argument("--no-plots", action="store_true")
    e1.add_argument("--json", action="store_true", help='print {"results": [...]} as hadis simulate --json')
    e1.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    policies = args.policy or E1_POLICIES
    modes = MODES if args.mode == "both" else (args.mode,)
    if args.max_requests is not None and args.max_requests < 1:
        raise UserError(f"--max-requests: must be ≥ 1, got {args.max_requests}")
    trace = truncate(presets.e1_trace(), args.max_requests)
    progress(
        f"E1: {len(trace)} requests over {trace.duration_s:.0f} s (mean {trace.mean_qps:.1f} QPS) · "
        f"{presets.E1_GPUS} L40S (emulated) · SLO {presets.E1_SLO_S:g} s · policies {', '.join(policies)}"
    )
    rows: list[dict[str, Any]] = []
    if "simulated" in modes:
        reports = []
        for name in policies:
            rep = simulate(trace, get_policy(name), presets.e1_config(name), policy_name=name)
            progress(f"simulated {name:<14} violations {rep.slo_violation_ratio:.4f}  FID {_f(rep.mean_fid)}")
            reports.append(rep)
            rows.append({**sim_summary(rep), "served_fid": rep.served_fid, "mode": "simulated"})
        if not args.no_plots:
            write_sim_outputs(reports, args.out / "simulated")
    if "emulated" in modes:
        prompts = load_reference_prompts(DEFAULT_PROFILE)
        fids = {v.name: v.fid for v in load_profile(DEFAULT_PROFILE).variants}
        for name in policies:
            # the stack's spec, logs and routing log stay beside the plots (a temporary folder otherwise)
            with tempfile.TemporaryDirectory(prefix=f"hadis-e1-{name}-") as tmp:
                workdir = Path(tmp) if args.no_plots else args.out / "emulated" / name
                run = run_emulated(name, trace, prompts, workdir, free_port(), progress)
                s = summarise(run.outcomes, presets.E1_SLO_S, fids)
                if not args.no_plots:
                    write_load_outputs(run.outcomes, s, workdir)
                    # when the replay started: aligns routing.jsonl's clock with outcomes' due times
                    (workdir / "replay.json").write_text(json.dumps({"start_unix": run.start_unix}))
            row = emulated_row(name, s, run)
            progress(
                f"emulated  {name:<14} violations {s.slo_violation_ratio:.4f}  FID {_f(row['mean_fid'])}"
            )
            rows.append(row)
    if args.json:
        print_json({"results": rows})
    else:
        full = len(presets.e1_trace())
        print(table(rows))
        if len(trace) < full:
            print(f"\n(a partial run: {len(trace)} of E1's {full} requests; targets are for all)")
    return 0


def emulated_row(policy: str, s: LoadSummary, run: EmulatedRun) -> dict[str, Any]:
    """One emulated run in the shape of ``hadis simulate --json``'s entries (plus what only it has).

    ``mean_fid`` has the simulator's definition: for a cascade policy the active row's FID averaged
    over the run's time (the profiled quality of the mixed output), else the served mix's FID.
    """
    end = run.start_unix + max((o.done_s for o in run.outcomes), default=0.0)
    row_fid = time_weighted_fid(run.routing, run.start_unix, end)
    return {
        "policy": policy,
        "mode": "emulated",
        "slo_violation_ratio": s.slo_violation_ratio,
        "mean_fid": s.mean_fid if row_fid is None else row_fid,
        "served_fid": s.mean_fid,
        "goodput_qps": s.goodput_qps,
        "requests": s.requests,
        "dropped": s.requests - s.ok,
        "finished_late": s.violations - (s.requests - s.ok),
        "latency_p99_s": s.latency_p99_s,
        "escalation_fraction": s.escalation_fraction,
        "errors": s.errors,
        "served_mix": s.served_mix,
        "throughput_qps": s.throughput_qps,
        "max_send_lag_s": s.max_send_lag_s,
    }


def _f(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def table(rows: list[dict[str, Any]]) -> str:
    head = f"{'policy':<14} {'mode':<9} {'SLO viol.':>9} {'mean FID':>8} {'goodput':>8} {'requests':>8}"
    head += f" {'dropped':>7} {'late':>6}  paper viol./FID"
    lines = [head, "-" * len(head)]
    for r in sorted(rows, key=lambda r: (E1_POLICIES.index(r["policy"]), r["mode"])):
        paper = presets.PAPER_E1.get(r["policy"])
        lines.append(
            f"{r['policy']:<14} {r['mode']:<9} {r['slo_violation_ratio']:>9.4f} {_f(r['mean_fid']):>8} "
            f"{r['goodput_qps']:>8.2f} {r['requests']:>8} {r['dropped']:>7} {r['finished_late']:>6}  "
            + (f"{paper[0]:.3f} / {paper[1]:.2f}" if paper else "")
        )
    for mode in MODES:
        checks = check_e1(rows, mode)
        if checks:
            lines.append(f"\ntargets ({mode}, hadis):")
            for target, met, figures in checks:
                mark = "n/a " if met is None else ("MET " if met else "MISS")
                lines.append(f"  [{mark}] {target}: {figures}")
    return "\n".join(lines)
