"""The real serving stack as local processes, for tests that need it end to end.

``running_stack`` writes a cascade configuration file, starts one emulated ``python -m hadis_worker``
per variant of the row and a ``python -m hadis_gateway`` in front of them (all on loopback, each
with its log in a file), waits until every one answers ``/readyz`` with 200, yields their URLs and
stops them all (SIGTERM, then SIGKILL after 15 s). A process that exits or does not get ready in
time fails the start with the tail of its log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hadis.local.processes import free_port
from tests.prometheus_local import Target

LOOPBACK = "127.0.0.1"


@dataclass
class ProcessStack:
    gateway: str
    workers: dict[str, str]  # variant -> url, in the row's order (light, heavy)
    ports: dict[str, int]  # "gateway" or the variant -> port
    logs: dict[str, Path]  # "gateway" or the variant -> its log file

    def targets(self, namespace: str, service: str) -> list[Target]:
        """Scrape targets labelled as the Kubernetes pod scrape job would label the pods."""
        labels = {"namespace": namespace, "app_kubernetes_io_instance": service}
        return [Target.of(u, **labels) for u in (self.gateway, *self.workers.values())]


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
    ready_timeout_s: float = 90.0,
) -> Iterator[ProcessStack]:
    """The gateway and a worker for ``row["light"]`` and ``row["heavy"]``, configured with ``row``.

    The configuration (``tmp/cascade.json``) names each worker ``http://ENDPOINT_HOST:PORT``
    (``endpoint_host`` may be a host name the gateway resolves); ``config`` adds keys to it
    (e.g. ``admissionFactor``), ``gateway_env`` environment variables to the gateway's. Logs go to
    ``tmp/NAME.log``.
    """
    variants = (str(row["light"]), str(row["heavy"]))
    ports = {"gateway": free_port(), **{v: free_port() for v in variants}}
    urls = {k: f"http://{LOOPBACK}:{p}" for k, p in ports.items()}
    cascade: dict[str, Any] = {
        "generation": 1,
        "row": dict(row),
        "variants": {
            v: {"batchSize": batch_size, "endpoints": [f"http://{endpoint_host}:{ports[v]}"]}
            for v in variants
        },
        "sloS": slo_s,
        "timeScale": time_scale,
        **(config or {}),
    }
    config_path = tmp / "cascade.json"
    config_path.write_text(json.dumps(cascade))
    base = {**os.environ, "HADIS_CONFIG_PATH": str(config_path), "HADIS_CONFIG_POLL_S": "0.2"}
    specs = [
        (v, "hadis_worker", {"HADIS_WORKER_VARIANT": v, "HADIS_WORKER_HOST": LOOPBACK}, "HADIS_WORKER_PORT")
        for v in variants
    ]
    gateway_vars = {"HADIS_GATEWAY_HOST": LOOPBACK, **(gateway_env or {})}
    specs.append(("gateway", "hadis_gateway", gateway_vars, "HADIS_GATEWAY_PORT"))
    logs = {name: tmp / f"{name}.log" for name, *_ in specs}
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for name, module, env, port_var in specs:
            with logs[name].open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", module],
                    env={**base, **env, port_var: str(ports[name])},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            procs.append((name, proc))
        for name, proc in procs:
            _wait_ready(urls[name], proc, logs[name], ready_timeout_s)
        yield ProcessStack(urls["gateway"], {v: urls[v] for v in variants}, ports, logs)
    finally:
        for _, proc in procs:
            proc.terminate()
        for _, proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
