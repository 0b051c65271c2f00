"""``hadis allocate``: one allocation decision for a given load, printed with the reason."""

from __future__ import annotations

import argparse

from hadis.api import Allocation, DecisionInput
from hadis.cli.common import (
    E1,
    add_cluster_options,
    add_profile_options,
    fixed_pair,
    load,
    pareto,
    policy_name,
    pools,
    positive,
    print_json,
    variants,
)
from hadis.errors import UserError
from hadis.policy.registry import decide


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("allocate", help="decide the cascade row, GPUs and batch sizes for a load")
    add_profile_options(p)
    add_cluster_options(p)
    p.add_argument("--qps", type=float, required=True, help="demand to provision for (queries per second)")
    p.add_argument(
        "--e1", action="store_true", help="the paper's E1 setup: --gpus 16 --slo 6 --time-scale 0.1"
    )
    p.add_argument(
        "--queue",
        action="append",
        default=[],
        metavar="VARIANT=LEN@QPS",
        help="observed queue (Little's law)",
    )
    p.add_argument("--reconfiguration-cost", type=float, default=0.0)
    p.set_defaults(run=run)


def apply_e1(args: argparse.Namespace) -> None:
    if args.e1:
        args.gpus = E1["gpus"] if args.gpus is None and not args.pool else args.gpus
        args.slo = E1["slo"] if args.slo is None else args.slo
        args.time_scale = E1["time_scale"] if args.time_scale is None else args.time_scale


def queues(args: argparse.Namespace) -> tuple[dict[str, float], dict[str, float]]:
    lengths, rates = {}, {}
    for q in args.queue:
        try:
            name, rest = q.split("=", 1)
            length, _, rate = rest.partition("@")
            lengths[name] = float(length)
            rates[name] = float(rate) if rate else 0.0
        except ValueError:
            raise UserError(
                f"--queue {q!r}: expected VARIANT=LENGTH@ARRIVAL_QPS, e.g. sd35-medium=12@4.5"
            ) from None
    return lengths, rates


def run(args: argparse.Namespace) -> int:
    apply_e1(args)
    name = policy_name(args)
    qps = positive("--qps", args.qps, allow_zero=True)
    slo = positive("--slo", args.slo)
    profile = load(args)
    names = variants(args, profile)
    lengths, rates = queues(args)
    inp = DecisionInput(
        profile=profile,
        table=pareto(profile, names),
        demand_qps=qps,
        slo_s=slo,
        pools=pools(args, profile),
        variants=names,
        queue_lengths=lengths,
        arrival_qps=rates,
        reconfiguration_cost=positive("--reconfiguration-cost", args.reconfiguration_cost, allow_zero=True),
        fixed_pair=fixed_pair(args, profile),
    )
    alloc = decide(name, inp)
    if args.json:
        print_json(alloc.to_wire())
    else:
        print(describe(alloc, inp))
    return 0


def describe(a: Allocation, inp: DecisionInput) -> str:
    pools_txt = ", ".join(f"{p.name}: {p.gpu_type}×{p.count}" for p in inp.pools)
    lines = [f"policy {a.policy} · demand {a.demand_qps:.2f} QPS · GPUs {pools_txt} · SLO {inp.slo_s:g} s"]
    if a.row is not None:
        r = a.row
        lines.append(f"cascade: {r.light} -> {r.heavy}  θ={r.theta:.2f} τ={r.tau:.2f} (p={r.p:.2f})")
    else:
        lines.append("routing: " + ", ".join(f"{v} {s:.0%}" for v, s in a.split.items()))
    lines.append(f"expected FID {a.expected_fid:.2f} · {a.gpus_used} of {inp.total_gpus} GPUs")
    if a.shed:
        lines.append(f"OVERLOAD: load-shedding plan, {a.shed_qps:.2f} QPS cannot be served within the SLO")
    lines.append(
        f"{'variant':<18} {'pool':<10} {'GPUs':>4} {'batch':>5} {'latency':>9} "
        f"{'capacity':>11} {'demand':>11}"
    )
    for v in a.variants:
        demand = a.share(v.variant) * a.demand_qps
        lines.append(
            f"{v.variant:<18} {v.pool:<10} {v.replicas:>4} {v.batch_size:>5} {v.latency_s:>8.2f}s "
            f"{v.throughput_qps:>7.2f} QPS {demand:>7.2f} QPS"
        )
    lines.append(f"solver: {a.solver_status} in {a.solve_time_s * 1000:.1f} ms")
    if a.reason:
        lines.append(f"why: {a.reason}")
    return "\n".join(lines)
