"""Local mode's process group: a worker that loses the race for its port moves to another one."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from hadis.local.processes import ProcessGroup


def test_worker_whose_port_is_taken_restarts_on_a_free_port(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {"PYTHONPATH": os.pathsep.join(str(root / p) for p in ("operator", "worker"))}
    group = ProcessGroup(tmp_path / "logs", env)
    with socket.socket() as squatter:  # another program holds the port the worker was given
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        worker_env = {
            "HADIS_WORKER_VARIANT": "sd35-medium",
            "HADIS_WORKER_HOST": "127.0.0.1",
            "HADIS_WORKER_PORT": str(taken),
        }
        child = group.start(
            "sd35-medium", "hadis_worker", worker_env, taken, "l40s", port_var="HADIS_WORKER_PORT"
        )
        try:
            deadline = time.monotonic() + 60
            while not child.ready and time.monotonic() < deadline:
                group.poll_ready()
                time.sleep(0.2)
            assert child.ready and child.port != taken and child.restarts >= 1
            assert child.env["HADIS_WORKER_PORT"] == str(child.port)
        finally:
            group.stop_all(grace_s=5)
