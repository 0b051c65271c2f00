"""The worker package (emulated engine) never imports torch: checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import hadis_worker.__main__, hadis_worker.server, hadis_worker.engines.emulated
from hadis_worker.settings import WorkerSettings
from hadis_worker.server import create_app
create_app(WorkerSettings(variant="sdxl-lightning"))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "diffusers", "transformers", "PIL"))
print(",".join(heavy))
"""


def test_worker_never_imports_torch() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == ""
