"""Local mode's process group: a worker that loses the race for its port moves to another one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
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


def test_children_die_with_their_owner_even_on_sigkill(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    script = tmp_path / "owner.py"
    script.write_text(
        "import sys, time\n"
        "from pathlib import Path\n"
        "from hadis.local.processes import ProcessGroup\n"
        "g = ProcessGroup(Path(sys.argv[1]), {})\n"
        "c = g.start('sleeper', 'http.server', {}, 0)\n"  # any long-running module
        "print(c.proc.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(root / p) for p in ("operator", "worker"))}
    owner = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "logs")], stdout=subprocess.PIPE, env=env
    )
    assert owner.stdout is not None
    child_pid = int(owner.stdout.readline())
    owner.kill()  # no chance to clean up
    owner.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child_pid):
        time.sleep(0.1)
    assert not _alive(child_pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for init counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
