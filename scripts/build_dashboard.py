#!/usr/bin/env python3
"""Write the Grafana dashboard hadis.dashboards generates to charts/hadis/dashboards/ (``make dashboards``).

    python scripts/build_dashboard.py

A contract test (tests/contract/test_dashboard.py) fails when the committed file differs from what
this script writes.
"""

from __future__ import annotations

from pathlib import Path

from hadis.dashboards.overview import DASHBOARD_FILE, dashboard_text

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "charts" / "hadis" / "dashboards"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / DASHBOARD_FILE
    text = dashboard_text()
    changed = not path.exists() or path.read_text(encoding="utf-8") != text
    path.write_text(text, encoding="utf-8")
    print(f"{'wrote' if changed else 'unchanged'} {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
