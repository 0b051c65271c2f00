"""Tools of the fault-injection tests (tests/e2e/test_faults.py): open-loop load in a thread, the
outcome row of a fault, RSS from /proc, a kube-apiserver restart, and concurrent writers that make
the API server answer the operator's writes with conflicts.

Every signal goes to a PID the test session started (the stack's processes, the operator, this
session's kube-apiserver from its pid file), never to a process found by name.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.k8s_local import ControlPlane, wait_until

PROMPTS = (
    "a red ball",
    "a lighthouse on a cliff at dusk",
    "three astronauts playing chess with a Victorian ghost under a stained-glass dome, oil painting",
    "an abstract allegory of time melting over a baroque cityscape beside the Eiffel Tower at night",
    "a bowl of ramen, studio photo",
    "a watercolor fox in the snow",
)


# --- load -----------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int  # 0: no HTTP answer (the client's timeout or a transport error)
    code: str | None  # the error's code (OpenAI-style body), or the transport error's name
    latency_s: float


@dataclass
class Load:
    """Open-loop Poisson load at ``qps`` for ``seconds`` against the gateway, in a thread."""

    url: str
    qps: float
    seconds: float
    timeout_s: float = 30.0
    seed: int = 0
    sent: int = 0
    answers: list[Answer] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _error: BaseException | None = None

    def start(self) -> Load:
        self._thread = threading.Thread(target=self._main, daemon=True, name="fault-load")
        self._thread.start()
        return self

    def wait(self) -> Load:
        assert self._thread is not None
        self._thread.join(self.seconds + self.timeout_s + 30)
        if self._thread.is_alive():
            raise AssertionError("the load generator did not finish")
        if self._error is not None:
            raise self._error
        return self

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as e:  # handed to wait()
            self._error = e

    async def _run(self) -> None:
        rng = np.random.default_rng(self.seed)
        gaps = rng.exponential(1.0 / self.qps, size=int(self.qps * self.seconds * 2) + 10)
        due = np.cumsum(gaps)
        due = due[due < self.seconds]
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=3)
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        endpoint = f"{self.url}/v1/images/generations"
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def one(i: int) -> None:
                body = {"model": "hadis", "prompt": f"{PROMPTS[i % len(PROMPTS)]}, take {i}", "seed": i}
                t0 = time.perf_counter()
                try:
                    async with session.post(endpoint, json=body) as r:
                        raw = await r.read()
                        code = None
                        if r.status != 200:
                            try:
                                code = str(json.loads(raw)["error"]["code"])
                            except (ValueError, KeyError, TypeError):
                                code = f"http_{r.status}"
                        elif not json.loads(raw)["data"][0]["b64_json"]:
                            code = "no_image"
                        self.answers.append(Answer(r.status, code, time.perf_counter() - t0))
                except (TimeoutError, aiohttp.ClientError) as e:
                    self.answers.append(Answer(0, type(e).__name__, time.perf_counter() - t0))

            start = time.perf_counter()
            tasks = []
            for i, t in enumerate(due):
                delay = float(t) - (time.perf_counter() - start)
                if delay > 0:
                    await asyncio.sleep(delay)
                self.sent += 1
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)

    # --- what came back

    @property
    def answered(self) -> int:
        return sum(a.status != 0 for a in self.answers)

    @property
    def ok(self) -> list[Answer]:
        return [a for a in self.answers if a.status == 200 and a.code is None]

    def errors(self) -> Counter[str]:
        return Counter(f"{a.status} {a.code}" for a in self.answers if a.status != 200 or a.code)

    def within_slo(self, slo_s: float) -> float:
        """Share of the images answered within ``slo_s`` (1 when none were)."""
        ok = self.ok
        return sum(a.latency_s <= slo_s for a in ok) / len(ok) if ok else 1.0


@contextmanager
def load(url: str, qps: float, seconds: float, **kw: Any) -> Iterator[Load]:
    """Run a :class:`Load` around the block; it has finished (every answer in) after the block."""
    run = Load(url, qps, seconds, **kw).start()
    yield run
    run.wait()


# --- outcomes -------------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


@dataclass
class FaultRow:
    fault: str
    sent: int
    answered: int
    ok: int
    errors: Counter[str]
    slo_kept: float  # share of images within the SLO, measured by the client
    gw_slo_kept: float  # the same by the gateway's clock (from when it read the request)
    degraded: str  # what the operator (or the gateway/workers) reported, and whether it recovered
    rss_delta: str
    seconds: float

    @classmethod
    def of(
        cls,
        fault: str,
        run: Load,
        slo_s: float,
        gw_slo_kept: float,
        degraded: str,
        rss_delta: str,
        seconds: float,
    ) -> FaultRow:
        return cls(
            fault,
            run.sent,
            run.answered,
            len(run.ok),
            run.errors(),
            run.within_slo(slo_s),
            gw_slo_kept,
            degraded,
            rss_delta,
            seconds,
        )


def table(rows: Sequence[FaultRow]) -> str:
    head = (
        "fault",
        "sent",
        "answered",
        "2xx",
        "errors by code",
        "SLO kept client/gw",
        "Degraded seen",
        "RSS delta MB",
        "s",
    )
    cells = [
        (
            r.fault,
            str(r.sent),
            str(r.answered),
            str(r.ok),
            ", ".join(f"{k} x{v}" for k, v in sorted(r.errors.items())) or "-",
            f"{r.slo_kept:.0%}/{r.gw_slo_kept:.0%}",
            r.degraded,
            r.rss_delta,
            f"{r.seconds:.0f}",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    line = " | ".join
    out = [line(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    out.append("-+-".join("-" * w for w in widths))
    out += [line(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(out)


class RssWatch:
    """RSS of named PIDs before and after a fault; ``delta()`` formats the change per process."""

    def __init__(self, pids: Callable[[], dict[str, int]]) -> None:
        self._pids = pids
        self.before = self._read()

    def _read(self) -> dict[str, tuple[int, float]]:
        out = {}
        for name, pid in self._pids().items():
            try:
                out[name] = (pid, rss_mb(pid))
            except (OSError, AssertionError):
                continue
        return out

    def delta(self) -> tuple[str, dict[str, float]]:
        after = self._read()
        deltas = {}
        for name, (pid, mb) in after.items():
            prev = self.before.get(name)
            if prev is not None and prev[0] == pid:  # a restarted process is a new one: not compared
                deltas[name] = mb - prev[1]
        text = " ".join(f"{n}{d:+.0f}" for n, d in deltas.items())
        return text, deltas


class GatewayCounters:
    """The gateway's own count of images answered and of SLO violations, before and after a fault:
    the share of its images within the SLO by its clock (admission to answer), which does not see
    the time a request waited in the socket backlog before the gateway read it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.before = self._read()
        self._retries = 0.0
        self._retries = self.retries()

    def _read(self) -> tuple[float, float, float]:
        """(images answered, other answers, SLO violations: late images and every non-image)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        ok = other = late = 0.0
        for line in text.splitlines():
            if line.startswith("hadis_gateway_requests_total{"):
                value = float(line.rsplit(" ", 1)[1])
                if 'outcome="ok"' in line or 'outcome="escalated"' in line:
                    ok += value
                else:
                    other += value
            elif line.startswith("hadis_gateway_slo_violations_total "):
                late = float(line.rsplit(" ", 1)[1])
        return ok, other, late

    def retries(self) -> float:
        """Worker calls retried on another replica since the start (connection failures)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        now = sum(
            float(ln.rsplit(" ", 1)[1])
            for ln in text.splitlines()
            if ln.startswith("hadis_gateway_worker_retries_total ")
        )
        return now - self._retries

    def slo_kept(self) -> float:
        ok, other, late = self._read()
        d_ok, d_other, d_late = ok - self.before[0], other - self.before[1], late - self.before[2]
        return 1.0 - max(0.0, d_late - d_other) / d_ok if d_ok else 1.0


# --- the control plane ----------------------------------------------------------------------------


def apiserver_pid(cp: ControlPlane) -> int:
    return int(Path(cp.env["HADIS_K8S_DIR"], "kube-apiserver.pid").read_text().strip())


def apiserver_ready(cp: ControlPlane) -> bool:
    """``/readyz`` answers ok (a restarted apiserver answers /version, and 503 "server is
    starting" to everything else, for a while before that)."""
    try:
        m, url, h, b, post = cp.api.param_serialize(
            method="GET", resource_path="/readyz", header_params={}, auth_settings=["BearerToken"]
        )
        resp = cp.api.call_api(m, url, h, b, post, _request_timeout=2)
        return int(resp.status) == 200 and (resp.response.data or b"").strip() == b"ok"
    except Exception:
        return False


def restart_apiserver(cp: ControlPlane, down_s: float, during: Callable[[], None] | None = None) -> float:
    """Kill this session's kube-apiserver (SIGKILL to the PID it was started with: a crash; its
    graceful SIGTERM shutdown waits for open watches for up to a minute), keep it down
    ``down_s`` seconds (calling ``during`` then), start it again with the same command line and
    wait until it answers; returns the seconds it was unavailable."""
    t0 = time.monotonic()
    _restart(cp, "kube-apiserver", down_s, during)
    wait_until("the kube-apiserver to answer again", lambda: apiserver_ready(cp), timeout=120, every=0.5)
    return time.monotonic() - t0


def restart_controller_manager(cp: ControlPlane) -> None:
    """Restart this session's kube-controller-manager (same command line). After an apiserver crash
    its garbage collector retries every object it failed to sync with growing back-offs, so the
    tests that share this control plane later could wait minutes for owner-reference collection:
    a fresh one rebuilds its graph at once."""
    _restart(cp, "kube-controller-manager", 0.0, None)


def _restart(cp: ControlPlane, name: str, down_s: float, during: Callable[[], None] | None) -> None:
    run_dir = Path(cp.env["HADIS_K8S_DIR"])
    pid = int((run_dir / f"{name}.pid").read_text().strip())
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait_until(f"the {name} to exit", lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 30)
    if during is not None:
        during()
    time.sleep(max(0.0, down_s - (time.monotonic() - t0)))
    with (run_dir / "logs" / f"{name}.log").open("ab") as log:
        proc = subprocess.Popen(
            [c.decode() for c in cmd],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (run_dir / f"{name}.pid").write_text(f"{proc.pid}\n")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


class ConflictWriters:
    """Threads that keep rewriting what the operator owns: they set a label the operator sets on a
    worker Deployment (``app.kubernetes.io/name``) to another value and bump an annotation on the
    HadisService, each write a new resourceVersion, so the operator's read-modify-write of those
    objects meets 409 Conflicts. (A label, not the replicas: replicas would make the
    controller-manager create and delete Pods, load that starves a 2-core machine.)"""

    def __init__(
        self, cp: ControlPlane, namespace: str, deployment: str, service: str, threads: int = 3
    ) -> None:
        self.cp, self.ns, self.deployment, self.service = cp, namespace, deployment, service
        self.n = threads
        self.writes = 0
        self.stop_flag = threading.Event()
        self._threads: list[threading.Thread] = []

    def _loop(self, k: int) -> None:
        apps = client.AppsV1Api(self.cp.api)
        crs = client.CustomObjectsApi(self.cp.api)
        i = 0
        while not self.stop_flag.is_set():
            i += 1
            try:
                if k % 2 == 0:
                    body = {"metadata": {"labels": {"app.kubernetes.io/name": f"intruder-{k}-{i}"}}}
                    apps.patch_namespaced_deployment(self.deployment, self.ns, body)
                else:
                    body = {"metadata": {"annotations": {"faults.hadis.io/bump": f"{k}-{i}"}}}
                    crs.patch_namespaced_custom_object(
                        "hadis.io", "v1alpha1", self.ns, "hadisservices", self.service, body
                    )
                self.writes += 1
            except ApiException:
                time.sleep(0.01)

    def __enter__(self) -> ConflictWriters:
        self._threads = [threading.Thread(target=self._loop, args=(k,), daemon=True) for k in range(self.n)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_flag.set()
        for t in self._threads:
            t.join(10)
