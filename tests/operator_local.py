"""Helpers for tests and benchmarks of the operator: the operator as a real ``kopf run`` subprocess,
and a fake gateway metrics endpoint whose arrival counter grows at a chosen rate (scraped by a real
Prometheus, queried by the operator as in a cluster). ``namespace_fixture`` and ``operator_fixture``
make the module-scoped ``ns`` and ``operator`` fixtures the e2e tests share."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from hadis.local.processes import free_port
from tests.k8s_local import ControlPlane, create_namespace

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ArrivalCounter:
    """``hadis_gateway_arrivals_total`` growing at ``rate`` per second (changeable at any time)."""

    rate: float = 0.0
    _base: float = 0.0
    _since: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set_rate(self, qps: float) -> None:
        with self._lock:
            now = time.monotonic()
            self._base += self.rate * (now - self._since)
            self.rate, self._since = qps, now

    def value(self) -> float:
        with self._lock:
            return self._base + self.rate * (time.monotonic() - self._since)

    def exposition(self) -> bytes:
        return (
            "# HELP hadis_gateway_arrivals_total Images asked for\n"
            "# TYPE hadis_gateway_arrivals_total counter\n"
            f"hadis_gateway_arrivals_total {self.value():.3f}\n"
        ).encode()


@contextmanager
def serving_arrivals(counter: ArrivalCounter) -> Iterator[str]:
    """Serve ``counter`` at ``http://127.0.0.1:PORT/metrics``; yields ``127.0.0.1:PORT``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = counter.exposition()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a scrape timed out
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class OperatorProcess:
    """``kopf run -m hadis.operator --standalone --namespace NS`` with its log in a file."""

    kubeconfig: Path
    namespace: str
    log_path: Path
    metrics_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self, *, python_m: bool = False) -> None:
        """``kopf run -m hadis.operator ...``, or with ``python_m`` ``python -m hadis.operator``
        (scoped by ``HADIS_OPERATOR_NAMESPACES``)."""
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "HADIS_OPERATOR_METRICS_PORT": str(self.metrics_port),
            "HADIS_OPERATOR_NAMESPACES": self.namespace,
            "PYTHONUNBUFFERED": "1",
        }
        kopf = Path(sys.executable).with_name("kopf")
        cmd = [str(kopf), "run", "-m", "hadis.operator", "--standalone", "--namespace", self.namespace]
        if python_m:
            cmd = [sys.executable, "-m", "hadis.operator"]
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start {' '.join(cmd)}\n".encode())
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthz(self) -> int | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=2) as r:
                return int(r.status)
        except OSError:
            return None

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as r:
            return str(r.read().decode())

    def wait_healthy(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"the operator exited:\n{self.log_tail()}")
            if self.healthz() == 200:
                return
            time.sleep(0.2)
        raise AssertionError(f"the operator's /healthz not 200 after {timeout_s} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, n: int = 4000) -> str:
        return self.log()[-n:]


@contextmanager
def running_operator(kubeconfig: Path, namespace: str, log_path: Path) -> Iterator[OperatorProcess]:
    op = OperatorProcess(kubeconfig, namespace, log_path)
    op.start()
    try:
        op.wait_healthy()
        yield op
    finally:
        op.stop()


def namespace_fixture(name: str) -> Any:
    """A module-scoped fixture ``ns``: the namespace ``name`` (after the CRD is installed), deleted at
    the end of the module. In a test module: ``ns = namespace_fixture(NS)``."""

    @pytest.fixture(scope="module", name="ns")
    def ns(control_plane: ControlPlane, hadis_crd: dict[str, Any]) -> Iterator[str]:
        create_namespace(control_plane.api, name)
        yield name
        client.CoreV1Api(control_plane.api).delete_namespace(name)

    return ns


def operator_fixture(tmp_name: str, *, fail_if_died: bool = False) -> Any:
    """A module-scoped fixture ``operator``: the operator for ``ns``, its log in a temporary directory
    named ``tmp_name``; with ``fail_if_died``, the module fails when the operator is dead at its end."""

    @pytest.fixture(scope="module", name="operator")
    def operator(
        control_plane: ControlPlane, ns: str, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[OperatorProcess]:
        log_path = tmp_path_factory.mktemp(tmp_name) / "operator.log"
        with running_operator(control_plane.kubeconfig, ns, log_path) as op:
            yield op
            if fail_if_died and not op.alive():
                pytest.fail(f"the operator died:\n{op.log_tail()}")

    return operator
