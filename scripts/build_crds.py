#!/usr/bin/env python3
"""Write the HadisService CRD generated from the pydantic models to crds/ (``make crds``).

    python scripts/build_crds.py

A contract test (tests/contract/test_crds.py) fails when the committed file differs from what
this script writes.
"""

from __future__ import annotations

from pathlib import Path

from hadis.reconcile.crd import CRD_FILE, crd_yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crds"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    path = OUT / CRD_FILE
    text = crd_yaml()
    changed = not path.exists() or path.read_text(encoding="utf-8") != text
    path.write_text(text, encoding="utf-8")
    print(f"{'wrote' if changed else 'unchanged'} {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
