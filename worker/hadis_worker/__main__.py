"""``python -m hadis_worker``: serve one variant with the settings from the environment.

Exit codes: 2 for bad settings, 3 when the engine fails to warm up (weights that do not load, say),
0 after a stop. On SIGTERM/SIGINT the worker stops being ready and refuses new requests at once,
serves what is queued and running (up to HADIS_WORKER_DRAIN_S; what is left then is answered
``shutting_down``) and exits.
"""

from __future__ import annotations

import logging
import sys
from types import FrameType

import uvicorn

from hadis.errors import UserError
from hadis_worker.server import WorkerState, create_app
from hadis_worker.settings import SettingsError, WorkerSettings


class DrainingServer(uvicorn.Server):
    """A uvicorn server that starts draining the worker as soon as a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, state: WorkerState) -> None:
        super().__init__(config)
        self.state = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        loop = self.state.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.state.begin_drain)
        super().handle_exit(sig, frame)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = WorkerSettings.from_env()
        app = create_app(settings)
    except (SettingsError, UserError, NotImplementedError) as e:
        print(f"hadis-worker: {e}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        timeout_graceful_shutdown=int(settings.drain_s) + 5,
        log_level="info",
        access_log=False,  # one line per request is CPU a busy machine lacks; metrics count them
        timeout_keep_alive=75,  # outlive the gateway's pooled connections (60 s): no reuse-after-close
    )
    server = DrainingServer(config, app.state.worker)
    failed: list[str] = []

    def stop_on_failed_warmup(reason: str) -> None:  # a model that does not load: exit, say why
        failed.append(reason)
        server.should_exit = True

    app.state.worker.on_warmup_failure = stop_on_failed_warmup
    server.run()
    if failed:
        print(f"hadis-worker: warm-up failed: {failed[0]}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
