"""A worker whose engine fails to warm up never becomes ready, and its liveness says why."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from tests.unit.worker.workerkit import VARIANT, FakeEngine

from hadis_worker.server import create_app
from hadis_worker.settings import SettingsError, WorkerSettings


class BrokenEngine(FakeEngine):
    async def warmup(self) -> None:
        raise SettingsError("HADIS_MODEL: cannot load the pipeline '/models/x': no such file")


def test_failed_warmup_is_reported_not_ready() -> None:
    app = create_app(WorkerSettings(variant=VARIANT), engine=BrokenEngine())
    with TestClient(app) as client:
        deadline = time.monotonic() + 5
        while client.get("/healthz").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        health = client.get("/healthz")
        assert health.status_code == 500 and "HADIS_MODEL" in health.json()["status"]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "HADIS_MODEL" in ready.json()["warmupError"]
