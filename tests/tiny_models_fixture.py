"""Session fixture: the tiny random-weight diffusers pipelines and discriminator, built once, offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Paths of hadis_worker.tiny_models.build_all (skips when the diffusers extra is not installed)."""
    pytest.importorskip("diffusers", reason="needs the diffusers extra (pip install 'hadis[diffusers]')")
    os.environ["HF_HUB_OFFLINE"] = "1"
    from hadis_worker.tiny_models import build_all

    return build_all(tmp_path_factory.mktemp("tiny-models"))
