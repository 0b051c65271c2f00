"""Child processes of local mode: one gateway and one worker process per allocated GPU."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from hadis.errors import UserError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Child:
    """A started process, what it serves and where."""

    role: str  # "gateway" or the worker's variant
    pool: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    ready: bool = False
    #: left the routing: stopped once the gateway has applied config generation ``retire_after``
    retiring: bool = False
    retire_after: int = 0
    stop_deadline: float | None = None  # SIGTERM sent; killed if still running after this
    module: str = ""
    env: dict[str, str] = field(default_factory=dict)
    #: the environment variable holding its port, when it may move to another port: a port picked
    #: free can be taken by another program before the child binds it
    port_var: str | None = None
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class ProcessGroup:
    """Starts, watches and stops the children; every child's output goes to a log file."""

    log_dir: Path
    base_env: dict[str, str]
    children: list[Child] = field(default_factory=list)

    def start(
        self,
        role: str,
        module: str,
        env: dict[str, str],
        port: int,
        pool: str = "",
        *,
        port_var: str | None = None,
    ) -> Child:
        """Start ``python -m module``; with ``port_var``, a lost race for its port restarts it elsewhere."""
        child = Child(role, pool, port, self._spawn(role, module, env, port, pool), Path(), module=module)
        child.env, child.port_var, child.log = env, port_var, self._log(role, pool, port)
        self.children.append(child)
        return child

    def free_port(self) -> int:
        """A free port that no child of this group was given already."""
        taken = {c.port for c in self.children}
        while (port := free_port()) in taken:
            pass
        return port

    def _log(self, role: str, pool: str, port: int) -> Path:
        return self.log_dir / f"{role}-{pool or 'main'}-{port}.log"

    def _spawn(
        self, role: str, module: str, env: dict[str, str], port: int, pool: str
    ) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self._log(role, pool, port).open("wb") as out:
            return subprocess.Popen(
                [sys.executable, "-m", module],
                env={**os.environ, **self.base_env, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches hadis up, which stops the children in order
                preexec_fn=_die_with_parent,
            )

    def _restart_elsewhere(self, c: Child) -> bool:
        """Restart a child that lost the race for its port on a new port; False if it did not."""
        if c.port_var is None or c.restarts >= 5 or "address already in use" not in _tail(c.log):
            return False
        c.port = self.free_port()
        c.env = {**c.env, c.port_var: str(c.port)}
        c.proc = self._spawn(c.role, c.module, c.env, c.port, c.pool)
        c.log, c.restarts = self._log(c.role, c.pool, c.port), c.restarts + 1
        return True

    def workers(self, variant: str | None = None) -> list[Child]:
        return [c for c in self.children if c.role != "gateway" and (variant is None or c.role == variant)]

    def poll_ready(self, timeout_s: float = 0.5) -> None:
        """Mark children whose /readyz answers 200; a child that exited is an error naming its log."""
        for c in self.children:
            if c.stop_deadline is not None:
                continue  # being stopped: its exit is expected
            code = c.proc.poll()
            if code is not None and not c.ready and self._restart_elsewhere(c):
                continue
            if code is not None:
                tail = _tail(c.log)
                raise UserError(f"{c.role} on port {c.port} exited with code {code}; log {c.log}:\n{tail}")
            if not c.ready:
                try:
                    c.ready = httpx.get(f"{c.url}/readyz", timeout=timeout_s).status_code == 200
                except httpx.HTTPError:
                    c.ready = False

    def stop(self, child: Child, grace_s: float = 10.0) -> None:
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
            try:
                child.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait(timeout=5)
        if child in self.children:
            self.children.remove(child)

    def terminate(self, child: Child, grace_s: float = 10.0) -> None:
        """SIGTERM without waiting (the worker drains its running batch); :meth:`reap` collects it."""
        if child.stop_deadline is None:
            child.stop_deadline = time.monotonic() + grace_s
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)

    def reap(self) -> None:
        """Forget terminated children that exited; kill those past their grace period."""
        for c in list(self.children):
            if c.stop_deadline is None:
                continue
            if c.proc.poll() is None and time.monotonic() > c.stop_deadline:
                c.proc.kill()
            if c.proc.poll() is not None:
                self.children.remove(c)

    def stop_all(self, grace_s: float = 10.0) -> None:
        for c in list(self.children):
            if c.proc.poll() is None:
                c.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for c in list(self.children):
            try:
                c.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                c.proc.kill()
                c.proc.wait(timeout=5)
        self.children.clear()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when hadis up dies, even by SIGKILL (Linux), so no
    worker or gateway outlives the process that owns it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: hadis up's own shutdown path still stops the children


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-2000:]
    except OSError:
        return ""
