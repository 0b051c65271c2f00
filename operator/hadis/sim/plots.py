"""PNG timelines of simulation reports (matplotlib, Agg backend; the only writer in hadis.sim).

One figure per report has four stacked panels sharing the time axis: load (arrivals and the
policy's demand estimate), SLO violations per step, FID, and GPUs per variant. The comparison
figure overlays several reports panel by panel (GPUs as the total in use).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from hadis.sim.report import SimReport


def _fid(values: list[float | None]) -> list[float]:
    return [float("nan") if v is None else v for v in values]


def plot_timeline(report: SimReport, path: str | Path) -> Path:
    """Write the four-panel timeline of one report to ``path`` (PNG) and return the path."""
    tl = report.timeline
    fig, axes = plt.subplots(4, 1, figsize=(10, 9), sharex=True)
    ax = axes[0]
    ax.plot(tl.time_s, tl.arrivals_qps, lw=0.8, label="arrivals")
    ax.plot(tl.time_s, tl.demand_qps, lw=1.2, label="demand estimate")
    ax.set_ylabel("QPS")
    ax.legend(loc="upper right", fontsize=8)
    axes[1].plot(tl.time_s, tl.violations, lw=0.8, color="tab:red")
    axes[1].set_ylabel(f"violations / {tl.step_s:g} s")
    axes[2].plot(tl.time_s, _fid(tl.fid), lw=1.0, color="tab:green")
    axes[2].set_ylabel("FID")
    ax = axes[3]
    bottom = [0] * len(tl.time_s)
    for v, series in tl.gpus.items():
        if any(series):
            top = [b + s for b, s in zip(bottom, series, strict=True)]
            ax.fill_between(tl.time_s, bottom, top, step="post", label=v, alpha=0.7)
            bottom = top
    ax.set_ylabel("GPUs")
    ax.set_xlabel("time (s)")
    ax.legend(loc="upper right", fontsize=8)
    fid = "n/a" if report.mean_fid is None else f"{report.mean_fid:.2f}"
    fig.suptitle(
        f"{report.policy} on {report.trace}: SLO violations {report.slo_violation_ratio:.3f}, mean FID {fid}"
    )
    fig.tight_layout()
    return _save(fig, path)


def plot_comparison(reports: Sequence[SimReport], path: str | Path) -> Path:
    """Overlay several reports (e.g. one per policy on the same trace) in one PNG."""
    if not reports:
        raise ValueError("plot_comparison needs at least one report")
    fig, axes = plt.subplots(4, 1, figsize=(10, 9), sharex=True)
    first = reports[0].timeline
    axes[0].plot(first.time_s, first.arrivals_qps, lw=0.8, color="black", label="arrivals")
    for r in reports:
        tl = r.timeline
        axes[0].plot(tl.time_s, tl.demand_qps, lw=1.0, label=r.policy)
        axes[1].plot(tl.time_s, tl.violations, lw=0.8, label=f"{r.policy} ({r.slo_violation_ratio:.3f})")
        axes[2].plot(tl.time_s, _fid(tl.fid), lw=1.0, label=r.policy)
        total = [sum(vals) for vals in zip(*tl.gpus.values(), strict=True)] if tl.gpus else []
        axes[3].step(tl.time_s, total, where="post", lw=1.0, label=r.policy)
    for ax, label in zip(axes, ["QPS (demand)", "violations", "FID", "GPUs in use"], strict=True):
        ax.set_ylabel(label)
        ax.legend(loc="upper right", fontsize=7)
    axes[3].set_xlabel("time (s)")
    fig.suptitle(f"{len(reports)} policies on {reports[0].trace}")
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Figure, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
