"""The Grafana dashboard model (schemaVersion 39): panels, targets and template variables as data.

:class:`Panel` and :class:`Target` describe what a panel shows; :func:`dashboard` turns a list of
panels into the dashboard JSON model Grafana imports (and its sidecar loads from a ConfigMap).
Every query goes to the data source picked in the ``datasource`` variable; the ``namespace`` and
``service`` variables are multi-value with an ``All`` option whose value is ``.*``, so the panels'
regex matchers (``=~"$namespace"``) also match series that lack those labels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PANEL_WIDTH, PANEL_HEIGHT, GRID_COLUMNS = 12, 8, 24


@dataclass(frozen=True)
class Target:
    """One PromQL query of a panel and the legend of the series it returns."""

    expr: str
    legend: str
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    """A panel: a title, a description, its queries and the unit of their values (a Grafana unit id)."""

    title: str
    description: str
    targets: tuple[Target, ...]
    unit: str = "short"
    kind: str = "timeseries"  # or "table" for instant label listings
    decimals: int | None = None
    extra_defaults: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Variable:
    """A query variable over one label of one metric, optionally narrowed by the variables before it."""

    name: str
    label: str
    metric: str
    source_label: str
    matchers: str = ""

    def model(self) -> dict[str, Any]:
        query = f"label_values({self.metric}{self.matchers}, {self.source_label})"
        return {
            "type": "query",
            "name": self.name,
            "label": self.label,
            "datasource": DATASOURCE,
            "definition": query,
            "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "refresh": 2,  # on time range change: new services show up
            "includeAll": True,
            "allValue": ".*",  # also matches series without the label
            "multi": True,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": [],
            "regex": "",
            "sort": 1,
            "hide": 0,
            "skipUrlSync": False,
        }


def datasource_variable() -> dict[str, Any]:
    return {
        "type": "datasource",
        "name": "datasource",
        "label": "Data source",
        "query": "prometheus",
        "current": {},
        "options": [],
        "refresh": 1,
        "regex": "",
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "skipUrlSync": False,
    }


def _target(t: Target, ref: str) -> dict[str, Any]:
    return {
        "datasource": DATASOURCE,
        "refId": ref,
        "expr": t.expr,
        "legendFormat": t.legend,
        "range": not t.instant,
        "instant": t.instant,
        "format": "table" if t.instant else "time_series",
        "editorMode": "code",
    }


def _panel(p: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": p.unit, **p.extra_defaults}
    if p.decimals is not None:
        defaults["decimals"] = p.decimals
    model: dict[str, Any] = {
        "id": pid,
        "type": p.kind,
        "title": p.title,
        "description": p.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": PANEL_HEIGHT, "w": PANEL_WIDTH, "x": x, "y": y},
        "targets": [_target(t, chr(ord("A") + i)) for i, t in enumerate(p.targets)],
    }
    if p.kind == "timeseries":
        defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "spanNulls": False}
        model["options"] = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    else:
        model["options"] = {"showHeader": True}
        model["transformations"] = [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True}}},
        ]
    model["fieldConfig"] = {"defaults": defaults, "overrides": []}
    return model


def dashboard(
    *, uid: str, title: str, description: str, panels: list[Panel], variables: list[Variable], tags: list[str]
) -> dict[str, Any]:
    """The dashboard JSON model: panels laid out two per row, in order."""
    per_row = GRID_COLUMNS // PANEL_WIDTH
    laid = [
        _panel(p, i + 1, (i % per_row) * PANEL_WIDTH, (i // per_row) * PANEL_HEIGHT)
        for i, p in enumerate(panels)
    ]
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": tags,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,  # shared crosshair
        "timezone": "browser",
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {"list": [datasource_variable(), *(v.model() for v in variables)]},
        "panels": laid,
    }


def to_json(model: dict[str, Any]) -> str:
    """Stable text: the committed file is compared with this byte for byte."""
    return json.dumps(model, indent=2, ensure_ascii=False) + "\n"
