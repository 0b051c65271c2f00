"""Contract: the committed CRD is exactly what the models generate (`make crds` rewrites it), and the
Helm chart ships the same bytes."""

from __future__ import annotations

from pathlib import Path

from hadis.reconcile.crd import CRD_FILE, crd_yaml

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
CHART_CRDS = ROOT / "charts" / "hadis" / "crds"


def test_committed_crd_matches_the_models() -> None:
    committed = (CRDS / CRD_FILE).read_text(encoding="utf-8")
    assert committed == crd_yaml(), f"crds/{CRD_FILE} drifted from hadis.api.service: run `make crds`"


def test_crds_folder_holds_only_generated_files() -> None:
    assert sorted(p.name for p in CRDS.glob("*.yaml")) == [CRD_FILE]


def test_the_chart_ships_the_generated_crd_byte_for_byte() -> None:
    chart_copy = (CHART_CRDS / CRD_FILE).read_bytes()
    assert chart_copy == (CRDS / CRD_FILE).read_bytes(), (
        f"charts/hadis/crds/{CRD_FILE} differs from crds/{CRD_FILE}: run `make crds`"
    )
    assert chart_copy == crd_yaml().encode("utf-8")


def test_the_chart_crds_folder_holds_only_the_generated_crd() -> None:
    # Helm installs every file in a chart's crds/ folder: nothing hand-written may hide there
    assert sorted(p.name for p in CHART_CRDS.iterdir()) == [CRD_FILE]
