"""hadis.profiling.profile_check: what `hadis profile all` requires of the profile, sweep and table."""

from __future__ import annotations

from typing import Literal

import pytest

from hadis.api import BatchPoint, CascadeRow, GpuPerf, Profile, Variant
from hadis.policy.pareto import build_pareto_table
from hadis.profiling.profile_check import (
    ProfileCheckError,
    check_allocation,
    check_latencies,
    check_sweep,
    check_table,
    lightest_first,
)

GRID = [0.0, 0.5, 1.0]


def variant(
    name: str,
    l1: float,
    fid: float,
    batches: tuple[int, ...] = (1, 2, 4),
    source: Literal["measured", "rule"] = "measured",
) -> Variant:
    points = [BatchPoint(batch=b, latency_s=l1 * b * 0.9 if b > 1 else l1, source=source) for b in batches]
    return Variant(
        name=name, model=f"local/{name}", steps=2, guidance_scale=0.0, fid=fid,
        perf=[GpuPerf(gpu_type="cpu", batches=points)],
    )  # fmt: skip


def sweep(light: str = "fast", heavy: str = "slow") -> list[CascadeRow]:
    rows = []
    for theta in GRID:
        for tau in GRID:
            p = theta + (1 - theta) * tau
            fid = 30 - 10 * p - 8 * p * (1 - p)
            rows.append(
                CascadeRow(
                    light=light, heavy=heavy, theta=theta, tau=tau, p=p, cost_s=0.1 * (1 - theta) + p, fid=fid
                )
            )
    return rows


def profile(**variants: Variant) -> Profile:
    vs = variants or {"fast": variant("fast", 0.1, 30.0), "slow": variant("slow", 1.0, 20.0)}
    return Profile(name="p", reference_gpu_type="cpu", variants=list(vs.values()), sweep=sweep())


def test_latencies_every_variant_and_batch_size_or_the_smallest_ones() -> None:
    p = profile()
    assert check_latencies(p, ["fast", "slow"], [1, 2, 4], "cpu") == {"fast": [1, 2, 4], "slow": [1, 2, 4]}
    # batch 8 ran out of memory: the measured sizes are the smallest requested ones
    assert check_latencies(p, ["fast"], [4, 2, 1, 8], "cpu") == {"fast": [1, 2, 4]}
    with pytest.raises(ProfileCheckError, match="no variant 'other'"):
        check_latencies(p, ["fast", "other"], [1, 2, 4], "cpu")
    with pytest.raises(ProfileCheckError, match="'fast' has no latencies on GPU type 'L40S'"):
        check_latencies(p, ["fast"], [1, 2, 4], "L40S")
    gap = profile(fast=variant("fast", 0.1, 30.0, (1, 4)), slow=variant("slow", 1.0, 20.0))
    with pytest.raises(
        ProfileCheckError, match=r"'fast' on cpu has batch sizes \[1, 4\]; expected \[1, 2, 4\]"
    ):
        check_latencies(gap, ["fast", "slow"], [1, 2, 4], "cpu")
    rule = profile(fast=variant("fast", 0.1, 30.0, source="rule"), slow=variant("slow", 1.0, 20.0))
    with pytest.raises(ProfileCheckError, match=r"batch sizes \[1, 2, 4\] not measured"):
        check_latencies(rule, ["fast"], [1, 2, 4], "cpu")


def test_sweep_every_pair_theta_tau_cell_once_with_a_cost() -> None:
    rows = sweep()
    assert check_sweep(rows, ["fast", "slow"], GRID) == 9
    with pytest.raises(
        ProfileCheckError, match=r"sweep: 1 of 9 cells missing, e.g. \('fast', 'slow', 1.0, 1.0\)"
    ):
        check_sweep(rows[:-1], ["fast", "slow"], GRID)
    with pytest.raises(ProfileCheckError, match=r"sweep: 1 .* cell.* twice"):
        check_sweep([*rows, rows[0]], ["fast", "slow"], GRID)
    with pytest.raises(ProfileCheckError, match="sweep: 9 of 9 cells missing"):
        check_sweep(sweep("slow", "fast"), ["fast", "slow"], GRID)  # the pair the other way round
    with pytest.raises(ProfileCheckError, match="outside the pairs and grid"):
        check_sweep(rows, ["fast", "slow"], [0.0, 1.0])
    no_cost = [rows[0].model_copy(update={"cost_s": None}), *rows[1:]]
    with pytest.raises(ProfileCheckError, match=r"1 row.* without a cost per query"):
        check_sweep(no_cost, ["fast", "slow"], GRID)


def test_table_is_the_sweeps_pareto_table() -> None:
    rows = sweep()
    table = build_pareto_table(rows)
    assert check_table(table, rows) == len(table) and len(table) > 1
    with pytest.raises(ProfileCheckError, match="not sorted by cost"):
        check_table(table[::-1], rows)
    dominated = max(rows, key=lambda r: (r.cost_s or 0.0, r.fid))
    with pytest.raises(ProfileCheckError, match="dominates"):
        check_table(sorted([*table, dominated], key=lambda r: r.cost_s or 0.0), rows)
    with pytest.raises(ProfileCheckError, match="not the sweep's Pareto table"):
        check_table(table[:-1], rows)
    with pytest.raises(ProfileCheckError, match="table: no rows"):
        check_table([], rows)


def test_the_allocator_decides_on_them() -> None:
    p = profile()
    assert lightest_first(p, ["slow", "fast"], "cpu") == ["fast", "slow"]
    table = build_pareto_table(p.sweep)
    check = check_allocation(p, table, ["fast", "slow"], "cpu")
    assert check.gpus == 2 and check.allocation.feasible
    assert check.demand_qps == pytest.approx(0.25 / 1.0) and check.slo_s == pytest.approx(4 * 4 * 0.9)
    assert check.allocation.row is not None and check.allocation.row.key in {r.key for r in table}
