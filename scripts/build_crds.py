#!/usr/bin/env python3
"""Write the HadisService CRD generated from the pydantic models to crds/ and to the Helm chart's
crds/ (``make crds``).

    python scripts/build_crds.py

A contract test (tests/contract/test_crds.py) fails when either committed file differs from what
this script writes: Helm installs the chart's copy, so it must be the same bytes as crds/.
"""

from __future__ import annotations

from pathlib import Path

from hadis.reconcile.crd import CRD_FILE, crd_yaml

ROOT = Path(__file__).resolve().parent.parent
OUTS = (ROOT / "crds", ROOT / "charts" / "hadis" / "crds")


def main() -> None:
    text = crd_yaml()
    for out in OUTS:
        out.mkdir(parents=True, exist_ok=True)
        path = out / CRD_FILE
        changed = not path.exists() or path.read_text(encoding="utf-8") != text
        path.write_text(text, encoding="utf-8")
        print(f"{'wrote' if changed else 'unchanged'} {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
