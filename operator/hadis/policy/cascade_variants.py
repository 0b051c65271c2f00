"""Restricted cascade policies (the paper's baselines and ablations) on the same MILP as HADIS.

Each builds its own Pareto table from ``profile.sweep`` with :func:`hadis.policy.pareto.table_for`,
keeping only the rows the policy may use, and hands it to :func:`solve_cascade`:

* ``diffserve``: DiffServe's cascade, one fixed pair with the discriminator only (θ = 0). The pair
  is sd35-large-turbo → sd35-large when both are allowed (the paper's DiffServe setting on the SD3.5
  family); otherwise the lightest → the best-quality allowed variant (:func:`default_pair`).
  DiffServe's published allocator bounds each stage by one batch latency, so this baseline keeps
  :data:`~hadis.policy.allocator.PAPER_BATCH_WAIT_FACTOR` and plans for the demand only (no
  backlog drain); the ablations below share HADIS's worst-case form
  (:data:`~hadis.policy.allocator.BATCH_WAIT_FACTOR`) and its backlog drain.
* ``router-only``: any pair, router only (τ = 0).
* ``disc-only``: any pair, discriminator only (θ = 0).
* ``fixed-pair``: one pair (``inp.fixed_pair``; the DiffServe pair when unset), any θ and τ.

Like HADIS they return the explicit load-shedding plan when no row is feasible.
"""

from __future__ import annotations

from collections.abc import Callable

from hadis.api.allocation import Allocation, DecisionInput
from hadis.api.profile import CascadeRow
from hadis.policy.allocator import BATCH_WAIT_FACTOR, PAPER_BATCH_WAIT_FACTOR, solve_cascade
from hadis.policy.pareto import table_for
from hadis.policy.shedding import lightest_allowed, shedding_plan

#: DiffServe's pair in the SD3.5 family of the packaged profile.
DIFFSERVE_PAIR = ("sd35-large-turbo", "sd35-large")
_ZERO = 1e-9


def default_pair(inp: DecisionInput) -> tuple[str, str]:
    """:data:`DIFFSERVE_PAIR` if both are allowed, else (lightest allowed, best-FID allowed variant)."""
    allowed = inp.allowed_variants
    if all(v in allowed for v in DIFFSERVE_PAIR):
        return DIFFSERVE_PAIR
    best = min((inp.profile.variant(n) for n in allowed), key=lambda v: (v.fid, v.name))
    return (lightest_allowed(inp).name, best.name)


def _restricted(
    inp: DecisionInput,
    policy: str,
    what: str,
    keep: Callable[[CascadeRow], bool],
    batch_wait_factor: float = BATCH_WAIT_FACTOR,
    drain_backlog: bool = True,
) -> Allocation:
    table = table_for(inp.profile, variants=inp.allowed_variants, keep=keep)
    if not table:
        why = f"Policy {policy}: the profile's sweep has no {what} row among the allowed variants"
        return shedding_plan(inp, policy, why)
    return solve_cascade(inp, table, policy, batch_wait_factor=batch_wait_factor, drain_backlog=drain_backlog)


def _pair(pair: tuple[str, str]) -> Callable[[CascadeRow], bool]:
    return lambda r: (r.light, r.heavy) == pair


def decide_diffserve(inp: DecisionInput) -> Allocation:
    """DiffServe: the fixed pair of :func:`default_pair`, discriminator only (θ = 0)."""
    pair = default_pair(inp)
    is_pair = _pair(pair)
    return _restricted(
        inp,
        "diffserve",
        f"{pair[0]}->{pair[1]} θ=0",
        lambda r: is_pair(r) and r.theta <= _ZERO,
        batch_wait_factor=PAPER_BATCH_WAIT_FACTOR,
        drain_backlog=False,
    )


def decide_router_only(inp: DecisionInput) -> Allocation:
    """Router only: rows with τ = 0 (no image is escalated by the discriminator)."""
    return _restricted(inp, "router-only", "τ=0", lambda r: r.tau <= _ZERO)


def decide_disc_only(inp: DecisionInput) -> Allocation:
    """Discriminator only: rows with θ = 0 (no prompt is routed straight to the heavy model)."""
    return _restricted(inp, "disc-only", "θ=0", lambda r: r.theta <= _ZERO)


def decide_fixed_pair(inp: DecisionInput) -> Allocation:
    """One pair, ``inp.fixed_pair`` (the DiffServe pair if unset), with every θ and τ of the sweep."""
    pair = inp.fixed_pair or default_pair(inp)
    return _restricted(inp, "fixed-pair", f"{pair[0]}->{pair[1]}", _pair(pair))
