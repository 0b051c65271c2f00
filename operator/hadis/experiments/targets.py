"""The data plane's E1 targets, checked on a bench's result rows (pure).

HADIS must beat the paper's own artifact on both axes (violations ≤ 0.011, mean FID ≤ 22.5) and
have ≥ 2.7× fewer violations than the best quality-competitive baseline at no worse FID. The
Clipper baselines are single-model extremes (all-light: no violations at FID 29.8; all-heavy:
FID 19.95 with most requests late), so "best baseline" is the one with the fewest violations
among DiffServe, Proteus and INFaaS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MAX_VIOLATIONS = 0.011
MAX_FID = 22.5
MIN_FACTOR = 2.7
COMPETITIVE_BASELINES = ("diffserve", "proteus", "infaas")


def check_e1(rows: Sequence[Mapping[str, Any]], mode: str) -> list[tuple[str, bool | None, str]]:
    """(target, met or ``None`` when it cannot be judged from these rows, figures) for one mode."""
    by = {r["policy"]: r for r in rows if r.get("mode") == mode}
    h = by.get("hadis")
    if h is None:
        return []
    v, fid = float(h["slo_violation_ratio"]), h.get("mean_fid")
    out: list[tuple[str, bool | None, str]] = [
        (f"violations ≤ {MAX_VIOLATIONS}", v <= MAX_VIOLATIONS, f"{v:.4f}"),
        (
            f"mean FID ≤ {MAX_FID}",
            None if fid is None else float(fid) <= MAX_FID,
            "-" if fid is None else f"{float(fid):.2f}",
        ),
    ]
    base = [by[p] for p in COMPETITIVE_BASELINES if p in by]
    if base and fid is not None:
        best = min(base, key=lambda r: float(r["slo_violation_ratio"]))
        bv, bfid = float(best["slo_violation_ratio"]), best.get("mean_fid")
        factor = float("inf") if v == 0 else bv / v
        fid_ok = bfid is None or float(fid) <= float(bfid)
        shown = "∞" if factor == float("inf") else f"{factor:.1f}×"
        out.append(
            (
                f"≥ {MIN_FACTOR}× fewer violations than the best baseline at no worse FID",
                (factor >= MIN_FACTOR or (v == 0 and bv == 0)) and fid_ok,
                f"{best['policy']} {bv:.4f} / FID {'-' if bfid is None else f'{float(bfid):.2f}'}: {shown}",
            )
        )
    return out
