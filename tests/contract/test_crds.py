"""Contract: the committed CRD is exactly what the models generate (`make crds` rewrites it)."""

from __future__ import annotations

from pathlib import Path

from hadis.reconcile.crd import CRD_FILE, crd_yaml

CRDS = Path(__file__).resolve().parents[2] / "crds"


def test_committed_crd_matches_the_models() -> None:
    committed = (CRDS / CRD_FILE).read_text(encoding="utf-8")
    assert committed == crd_yaml(), f"crds/{CRD_FILE} drifted from hadis.api.service: run `make crds`"


def test_crds_folder_holds_only_generated_files() -> None:
    assert sorted(p.name for p in CRDS.glob("*.yaml")) == [CRD_FILE]
