"""Contract: docs/hadisservice-reference.md is exactly what scripts/build_docs.py generates from the
models, and it names every field the CRD accepts."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import BaseModel

from hadis.api.profile import Profile
from hadis.api.service import HadisService

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def build_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_docs", ROOT / "scripts" / "build_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_reference_matches_the_models(build_docs: ModuleType) -> None:
    committed = build_docs.OUT.read_text(encoding="utf-8")
    assert committed == build_docs.build(), (
        "docs/hadisservice-reference.md drifted from hadis.api: run python scripts/build_docs.py"
    )


def _models(root: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    if root in seen:
        return
    seen.add(root)
    for field in root.model_fields.values():
        for candidate in _walk(field.annotation):
            _models(candidate, seen)


def _walk(tp: object) -> list[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [m for arg in getattr(tp, "__args__", ()) for m in _walk(arg)]


def test_every_model_and_field_is_documented(build_docs: ModuleType) -> None:
    text = build_docs.build()
    models: set[type[BaseModel]] = set()
    for root in (HadisService, Profile):
        _models(root, models)
    for model in models:
        section = text.split(f"### {model.__name__}\n", 1)
        assert len(section) == 2, f"no section for {model.__name__}"
        body = section[1].split("\n### ", 1)[0]
        for name, field in model.model_fields.items():
            assert f"| `{field.alias or name}` |" in body, f"{model.__name__}.{name} not documented"


def test_check_mode_reports_drift(
    build_docs: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tmp_path / "reference.md"
    stale.write_text("# stale\n", encoding="utf-8")
    monkeypatch.setattr(build_docs, "OUT", stale)
    monkeypatch.setattr(build_docs, "ROOT", tmp_path)
    assert build_docs.main(["--check"]) == 1
    assert build_docs.main([]) == 0 and build_docs.main(["--check"]) == 0


def _registered_metrics() -> set[str]:
    from hadis.operator.metrics import OperatorMetrics
    from hadis_gateway.endpoints import endpoints_gauge
    from hadis_gateway.metrics import GatewayMetrics
    from hadis_worker.metrics import WorkerMetrics

    gateway = GatewayMetrics()
    endpoints_gauge(gateway.registry)
    names = set()
    for registry in (gateway.registry, WorkerMetrics("v").registry, OperatorMetrics().registry):
        for family in registry.collect():
            if family.name.startswith("process_"):  # the client library's standard process series
                continue
            names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def _family(name: str) -> str:
    """A histogram's series name without its ``_bucket``/``_sum``/``_count`` suffix."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_metrics_page_lists_every_metric_and_no_other() -> None:
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    registered = _registered_metrics()
    listed = set(re.findall(r"^\| `(hadis_\w+)` \|", text, re.MULTILINE))
    assert listed == registered, (
        f"docs/metrics.md: missing {sorted(registered - listed)}, unknown {sorted(listed - registered)}"
    )
    mentioned = set(re.findall(r"\bhadis_(?:gateway|worker|operator)_\w+", text))
    unknown = {m for m in mentioned if m not in registered and _family(m) not in registered}
    assert not unknown, f"docs/metrics.md names metrics that do not exist: {sorted(unknown)}"
