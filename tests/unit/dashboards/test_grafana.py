"""The dashboard model builder: layout, targets, variables (pure)."""

from __future__ import annotations

from typing import Any

from hadis.dashboards.grafana import DATASOURCE, Panel, Target, Variable, dashboard


def _build(panels: list[Panel], variables: list[Variable] | None = None) -> dict[str, Any]:
    return dashboard(uid="u", title="t", description="", panels=panels, variables=variables or [], tags=[])


def _panels(n: int) -> list[Panel]:
    return [Panel(f"p{i}", "d", (Target("up", "a"), Target("vector(1)", "b")), unit="s") for i in range(n)]


def test_panels_are_laid_out_two_per_row_with_unique_ids() -> None:
    grid = [(p["id"], p["gridPos"]["x"], p["gridPos"]["y"]) for p in _build(_panels(3))["panels"]]
    assert grid == [(1, 0, 0), (2, 12, 0), (3, 0, 8)]


def test_targets_get_ref_ids_legends_and_the_datasource_variable() -> None:
    panel = _build(_panels(1))["panels"][0]
    assert [(t["refId"], t["expr"], t["legendFormat"]) for t in panel["targets"]] == [
        ("A", "up", "a"),
        ("B", "vector(1)", "b"),
    ]
    assert DATASOURCE == {"type": "prometheus", "uid": "${datasource}"}
    assert all(t["datasource"] == DATASOURCE for t in panel["targets"])
    assert panel["fieldConfig"]["defaults"]["unit"] == "s" and panel["type"] == "timeseries"


def test_instant_table_panels_ask_for_tables() -> None:
    panel = _build([Panel("rows", "d", (Target("up", "", instant=True),), kind="table")])["panels"][0]
    assert panel["type"] == "table"
    assert panel["targets"][0]["instant"] and panel["targets"][0]["format"] == "table"


def test_variables_default_to_all_matching_everything() -> None:
    var = Variable("service", "Service", "m_total", "instance_label", '{ns=~"$namespace"}')
    source, service = _build([], [var])["templating"]["list"]
    assert source["type"] == "datasource" and source["query"] == "prometheus"
    assert service["query"]["query"] == 'label_values(m_total{ns=~"$namespace"}, instance_label)'
    assert service["includeAll"] and service["multi"] and service["allValue"] == ".*"
    assert service["current"]["value"] == ["$__all"]
