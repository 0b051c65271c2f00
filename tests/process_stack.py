"""The real serving stack as local processes, for tests that need it end to end.

``running_stack`` writes a cascade configuration file, starts emulated ``python -m hadis_worker``
processes for the variants of the row (one each, or ``replicas`` of them) and a
``python -m hadis_gateway`` in front of them (all on loopback, each with its log in a file), waits
until every one answers ``/readyz`` with 200, yields their URLs and stops them all (SIGTERM, then
SIGKILL after 15 s). A process that exits or does not get ready in time fails the start with the
tail of its log.

Processes are named ``gateway``, the variant (its first worker) and ``VARIANT-1``, ``VARIANT-2``
... (further replicas). Fault tests use :meth:`ProcessStack.signal`, :meth:`ProcessStack.kill` and
:meth:`ProcessStack.restart` on those names: every signal goes to the PID this helper started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from hadis.local.processes import free_port
from tests.prometheus_local import Target

LOOPBACK = "127.0.0.1"


@dataclass
class _Spec:
    module: str
    env: dict[str, str]


@dataclass
class ProcessStack:
    gateway: str
    workers: dict[str, str]  # variant -> url of its first worker, in the row's order (light, heavy)
    ports: dict[str, int]  # process name ("gateway", a variant, "VARIANT-i") -> port
    logs: dict[str, Path]  # process name -> its log file
    replicas: dict[str, list[str]] = field(default_factory=dict)  # variant -> its workers' names
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)  # name -> its process
    config_path: Path | None = None  # the watched cascade configuration file
    _specs: dict[str, _Spec] = field(default_factory=dict, repr=False)

    def targets(self, namespace: str, service: str) -> list[Target]:
        """Scrape targets labelled as the Kubernetes pod scrape job would label the pods."""
        labels = {"namespace": namespace, "app_kubernetes_io_instance": service}
        return [Target.of(self.url(n), **labels) for n in ("gateway", *self.worker_names())]

    def worker_names(self) -> list[str]:
        return [n for names in self.replicas.values() for n in names]

    def url(self, name: str) -> str:
        return f"http://{LOOPBACK}:{self.ports[name]}"

    def pid(self, name: str) -> int:
        return int(self.procs[name].pid)

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def signal(self, name: str, sig: int) -> None:
        """Send ``sig`` to the process this stack started as ``name`` (if it still runs)."""
        if self.alive(name):
            os.kill(self.pid(name), sig)

    def kill(self, name: str) -> None:
        """SIGKILL ``name`` (no drain, no goodbye) and reap it."""
        self.signal(name, signal.SIGKILL)
        self.procs[name].wait(10)

    def restart(self, name: str, ready_timeout_s: float = 60.0) -> None:
        """Start ``name`` again on its port (after it exited or was killed) and wait until ready."""
        proc = self.procs[name]
        if proc.poll() is None:
            proc.terminate()
            proc.wait(15)
        self.procs[name] = _spawn(self._specs[name], self.logs[name], append=True)
        _wait_ready(self.url(name), self.procs[name], self.logs[name], ready_timeout_s)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout_s} s:\n{log.read_text()[-3000:]}")


def _spawn(spec: _Spec, log: Path, *, append: bool = False) -> subprocess.Popen[bytes]:
    with log.open("ab" if append else "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", spec.module],
            env=spec.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _stop(procs: Mapping[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a stopped (SIGSTOP) process cannot handle SIGTERM
            proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextmanager
def running_stack(
    tmp: Path,
    row: Mapping[str, Any],
    *,
    slo_s: float,
    time_scale: float,
    batch_size: int = 4,
    endpoint_host: str = LOOPBACK,
    config: Mapping[str, Any] | None = None,
    gateway_env: Mapping[str, str] | None = None,
    worker_env: Mapping[str, str] | None = None,
    replicas: Mapping[str, int] | None = None,
    ready_timeout_s: float = 90.0,
) -> Iterator[ProcessStack]:
    """The gateway and workers for ``row["light"]`` and ``row["heavy"]``, configured with ``row``.

    The configuration (``tmp/cascade.json``) names each worker ``http://ENDPOINT_HOST:PORT``
    (``endpoint_host`` may be a host name the gateway resolves); ``config`` adds keys to it
    (e.g. ``admissionFactor``), ``gateway_env``/``worker_env`` environment variables to the
    gateway's/workers', ``replicas`` the number of workers of a variant (default 1). Logs go to
    ``tmp/NAME.log``.
    """
    variants = (str(row["light"]), str(row["heavy"]))
    replicas = replicas or {}
    names = {v: [v, *(f"{v}-{i}" for i in range(1, max(1, replicas.get(v, 1))))] for v in variants}
    ports = {"gateway": free_port(), **{n: free_port() for ns in names.values() for n in ns}}
    cascade: dict[str, Any] = {
        "generation": 1,
        "row": dict(row),
        "variants": {
            v: {
                "batchSize": batch_size,
                "endpoints": [f"http://{endpoint_host}:{ports[n]}" for n in names[v]],
            }
            for v in variants
        },
        "sloS": slo_s,
        "timeScale": time_scale,
        **(config or {}),
    }
    config_path = tmp / "cascade.json"
    config_path.write_text(json.dumps(cascade))
    base = {**os.environ, "HADIS_CONFIG_PATH": str(config_path), "HADIS_CONFIG_POLL_S": "0.2"}
    specs: dict[str, _Spec] = {}
    for v in variants:
        for n in names[v]:
            env = {"HADIS_WORKER_VARIANT": v, "HADIS_WORKER_HOST": LOOPBACK, **(worker_env or {})}
            specs[n] = _Spec("hadis_worker", {**base, **env, "HADIS_WORKER_PORT": str(ports[n])})
    gateway_vars = {"HADIS_GATEWAY_HOST": LOOPBACK, **(gateway_env or {})}
    specs["gateway"] = _Spec(
        "hadis_gateway", {**base, **gateway_vars, "HADIS_GATEWAY_PORT": str(ports["gateway"])}
    )
    logs = {name: tmp / f"{name}.log" for name in specs}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stack = ProcessStack(
        f"http://{LOOPBACK}:{ports['gateway']}",
        {v: f"http://{LOOPBACK}:{ports[v]}" for v in variants},
        ports,
        logs,
        replicas=names,
        procs=procs,
        config_path=config_path,
        _specs=specs,
    )
    try:
        for name, spec in specs.items():
            procs[name] = _spawn(spec, logs[name])
        for name, proc in procs.items():
            _wait_ready(stack.url(name), proc, logs[name], ready_timeout_s)
        yield stack
    finally:
        _stop(procs)
