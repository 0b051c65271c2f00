"""``hadis up SPEC.yaml``: run a HadisService on this machine (gateway, workers, control loop)."""

from __future__ import annotations

import argparse
import signal
import tempfile
import time
from pathlib import Path
from types import FrameType

from hadis.cli.common import positive, progress
from hadis.local.control import LocalService
from hadis.local.processes import free_port
from hadis.specs import load_spec


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("up", help="run a HadisService spec locally: gateway, worker processes, control loop")
    p.add_argument("spec", type=Path, help="a HadisService YAML file (e.g. examples/local-emulated.yaml)")
    p.add_argument("--port", type=int, default=None, help="gateway port (default: the spec's gateway.port)")
    p.add_argument("--workdir", type=Path, default=None, help="config and logs (default: a temporary folder)")
    p.add_argument("--initial-qps", type=float, default=0.0, help="demand for the first allocation")
    p.add_argument(
        "--duration", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)"
    )
    p.add_argument("--ready-timeout", type=float, default=120.0, help="seconds to wait for every process")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    svc = load_spec(args.spec)
    port = args.port if args.port is not None else svc.spec.gateway.port
    if port == 0:  # --port 0: any free port
        port = free_port()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"hadis-{svc.metadata.name}-"))
    local = LocalService(svc, workdir, port, progress)
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    end = None if args.duration is None else time.monotonic() + positive("--duration", args.duration)
    try:
        progress(
            f"starting {svc.metadata.name}: policy {svc.spec.policy}, engine {svc.spec.engine}, "
            f"logs in {workdir}"
        )
        local.start(positive("--initial-qps", args.initial_qps, allow_zero=True))
        local.wait_ready(positive("--ready-timeout", args.ready_timeout))
        progress(f"ready: gateway http://127.0.0.1:{port}/v1/images/generations (Ctrl-C stops everything)")
        local.run(lambda: stopping or (end is not None and time.monotonic() >= end))
    finally:
        progress("stopping gateway and workers")
        local.group.stop_all()
        progress("stopped")
    return 0
