"""The Pareto builder against its definition (strict dominance in cost and FID)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.factories import row

from hadis.api import CascadeRow
from hadis.policy.pareto import build_pareto_table, dominates, overlap, table_for


def brute_force(rows: list[CascadeRow]) -> set[tuple[str, str, float, float]]:
    return {r.key for r in rows if not any(dominates(o, r) for o in rows)}


grid = st.sampled_from([0.0, 0.1, 0.2, 0.5, 1.0])


@st.composite
def sweeps(draw: st.DrawFn) -> list[CascadeRow]:
    n = draw(st.integers(1, 30))
    rows = {}
    for _ in range(n):
        th, tau = draw(grid), draw(grid)
        light, heavy = draw(st.sampled_from([("a", "b"), ("b", "c"), ("a", "c")]))
        # a coarse grid of costs and FIDs makes ties and duplicates frequent
        cost = draw(st.integers(1, 6)) / 2
        fid = draw(st.integers(10, 16))
        rows[(light, heavy, th, tau)] = row(light, heavy, th, tau, cost, float(fid))
    return list(rows.values())


@given(sweeps())
@settings(max_examples=300, deadline=None)
def test_table_is_exactly_the_non_dominated_rows(rows: list[CascadeRow]) -> None:
    table = build_pareto_table(rows)
    assert {r.key for r in table} == brute_force(rows)
    assert len(table) == len({r.key for r in table})


@given(sweeps())
@settings(max_examples=100, deadline=None)
def test_table_is_sorted_cheapest_first_and_order_independent(rows: list[CascadeRow]) -> None:
    table = build_pareto_table(rows)
    costs = [r.cost_s or 0 for r in table]
    fids = [r.fid for r in table]
    assert costs == sorted(costs)
    assert fids == sorted(fids, reverse=True)
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    assert build_pareto_table(shuffled) == table


def test_equal_rows_do_not_dominate_each_other() -> None:
    a = row("a", "b", 0.0, 0.0, 1.0, 20.0)
    b = row("a", "c", 0.0, 0.0, 1.0, 20.0)
    worse = row("a", "b", 0.1, 0.0, 1.0, 21.0)
    assert not dominates(a, b) and not dominates(b, a)
    assert dominates(a, worse)
    assert {r.key for r in build_pareto_table([worse, b, a])} == {a.key, b.key}


def test_paper_sweep_keeps_52_rows_and_46_of_the_artifacts(paper_profile, shared_data) -> None:  # type: ignore[no-untyped-def]
    import csv

    table = build_pareto_table(paper_profile.sweep)
    assert len(paper_profile.sweep) == 726
    assert len(table) == 52
    names = {v.index: v.name for v in paper_profile.variants}
    with open(shared_data / "hadis-l40s" / "pareto_table_artifact.csv") as f:
        artifact = [
            row(
                names[int(r["light_model"])],
                names[int(r["heavy_model"])],
                float(r["router_ratio"]),
                float(r["disc_ratio"]),
                1.0,
                float(r["fid"]),
            )
            for r in csv.DictReader(f)
        ]
    shared, missing = overlap(table, artifact)
    print(f"\nartifact table: {len(artifact)} rows, {shared} shared with ours, {len(missing)} dominated:")
    for r in missing:
        print("  ", r.label, "fid", r.fid)
    assert (len(artifact), shared, len(missing)) == (49, 46, 3)
    by_key = {r.key: r for r in paper_profile.sweep}
    for r in missing:  # each row the artifact keeps and we drop is beaten by a cheaper-or-equal row
        assert any(dominates(t, by_key[r.key]) for t in table)


def test_table_for_restricts_variants_and_rows(paper_profile) -> None:  # type: ignore[no-untyped-def]
    only_disc = table_for(paper_profile, keep=lambda r: r.theta == 0)
    assert only_disc and all(r.theta == 0 for r in only_disc)
    pair = table_for(paper_profile, variants=["sd35-large-turbo", "sd35-large"])
    assert pair and all((r.light, r.heavy) == ("sd35-large-turbo", "sd35-large") for r in pair)
    # restricting never adds rows the unrestricted sweep would call dominated within the subset
    sub = [r for r in paper_profile.sweep if r.theta == 0]
    assert {r.key for r in only_disc} == brute_force(sub)
