"""The offline Pareto table: cascade configurations that no other configuration beats.

A row is kept when no other row is at least as cheap (expected cost per query) and at least as
good (FID) while strictly better in one of the two (strict dominance). Rows with identical
(cost, FID) do not dominate each other, so all of them stay; the table is sorted by (cost, FID,
θ, τ, light, heavy), so it is deterministic whatever the order of the sweep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from hadis.api.profile import CascadeRow, Profile


def _cost(row: CascadeRow) -> float:
    if row.cost_s is None:
        raise ValueError(f"cascade row {row.label} has no cost_s; the Pareto table needs a cost per query")
    return row.cost_s


def dominates(a: CascadeRow, b: CascadeRow) -> bool:
    """True when ``a`` is no worse than ``b`` in cost and FID, and strictly better in one."""
    ca, cb = _cost(a), _cost(b)
    return ca <= cb and a.fid <= b.fid and (ca < cb or a.fid < b.fid)


def build_pareto_table(rows: Iterable[CascadeRow]) -> list[CascadeRow]:
    """The Pareto-optimal rows, sorted by cost ascending (so FID descending).

    O(n log n): sort by (cost, FID, tie-break key) and sweep, keeping a row when its FID is
    strictly below every cheaper row's FID, or when it ties the last kept row exactly.
    """
    ordered = sorted(rows, key=lambda r: (_cost(r), r.fid, r.theta, r.tau, r.light, r.heavy))
    table: list[CascadeRow] = []
    best_fid = float("inf")
    for r in ordered:
        if r.fid < best_fid or (table and (_cost(table[-1]), table[-1].fid) == (_cost(r), r.fid)):
            table.append(r)
            best_fid = r.fid
    return table


def table_for(
    profile: Profile,
    *,
    variants: Sequence[str] | None = None,
    keep: Callable[[CascadeRow], bool] | None = None,
) -> list[CascadeRow]:
    """The Pareto table of a profile's sweep, restricted to ``variants`` and to rows ``keep`` accepts."""
    allowed = set(variants) if variants else None
    rows = [
        r
        for r in profile.sweep
        if (allowed is None or (r.light in allowed and r.heavy in allowed)) and (keep is None or keep(r))
    ]
    return build_pareto_table(rows)


def overlap(table: Sequence[CascadeRow], reference: Sequence[CascadeRow]) -> tuple[int, list[CascadeRow]]:
    """How many ``reference`` rows (by light, heavy, θ, τ) are in ``table``, and the ones that are not."""
    keys = {r.key for r in table}
    missing = [r for r in reference if r.key not in keys]
    return len(reference) - len(missing), missing
