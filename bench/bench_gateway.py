"""Benchmark of the gateway's overhead against issue 3's targets (prints figures; not a test).

Targets: **≤ 5 ms p99 added latency at 500 req/s on one core with instant workers**, router
feature extraction ≤ 2 ms p50 per prompt (bench/bench_router.py), **gateway RSS ≤ 300 MB**.

Setup, as the target states it (three kinds of processes):

* the gateway, ``python -m hadis_gateway`` as deployed (uvicorn, one worker process, the real
  rule-based router, thresholds from the profile), pinned to CPU 0;
* instant workers: one minimal asyncio HTTP/1.1 process per variant (light, heavy) speaking the
  worker wire contract (``POST /v1/generate`` → ``GenerateResponse``) with no work at all, pinned
  to the other CPU(s);
* this process: an open-loop load generator (raw asyncio HTTP/1.1, keep-alive connections) that
  sends at a fixed rate whatever the answers do; a request's latency runs from its *scheduled*
  send time to its answer, so a stalled gateway cannot hide behind a slowed-down client.

Phases, each at ``--rate`` req/s:

1. direct: the worker wire request straight to the light worker (the baseline: load generator,
   HTTP and the instant worker);
2. gateway, cold: each of the profile's 5,000 reference prompts once (no router cache hit);
3. ``--repeats`` times a direct run then a gateway warm run: prompts drawn at random from the same
   set (the router's cache holds them all, as in the E1 experiment, whose prompts are these
   5,000). The machine's other load drifts, so each warm run has its own baseline beside it and
   the target is judged on the median run.

Added latency = gateway-path quantile − direct quantile. Each gateway run also prints the gateway's
CPU time per request (its own process and the router's), the share of its core that it used and the
share that other processes took (the figures are pessimistic when that is high). During the gateway
phases ``/metrics`` is fetched every 100 ms on its own connection (it must stay prompt: the control
loop reads it). The gateway's peak RSS is VmHWM from /proc. The cascade: θ = 0.3 (the router's top
30 % go to heavy), τ = 0 (no escalation), so every request makes exactly one worker call, like the
direct baseline; batch size 4 per variant (the gateway hands a replica requests only while it is
idle, up to a batch at once; the rest wait in its queue).

``python bench/bench_gateway.py [--rate 500] [--seconds 20] [--cold-seconds 10] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_ADDED_P99_MS = 5.0
TARGET_RSS_MB = 300.0
TARGET_RATE = 500.0


# --------------------------------------------------------------------------- instant worker process


def serve_instant_worker(port: int, image_bytes: int) -> None:
    """A worker that answers every ``POST /v1/generate`` at once (run in its own process)."""
    from tests.gateway_fakes import PNG_B64

    image = PNG_B64 if image_bytes <= 0 else ("A" * (image_bytes * 4 // 3 // 4 * 4))

    class Proto(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.t: asyncio.Transport = transport  # type: ignore[assignment]
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while True:
                head_end = self.buf.find(b"\r\n\r\n")
                if head_end < 0:
                    return
                head = self.buf[:head_end].decode("latin-1")
                length = 0
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                end = head_end + 4 + length
                if len(self.buf) < end:
                    return
                body, self.buf = self.buf[head_end + 4 : end], self.buf[end:]
                self.answer(head, body)

        def answer(self, head: str, body: bytes) -> None:
            if not head.startswith("POST /v1/generate"):
                out = b'{"status":"ok"}'
            else:
                req = json.loads(body)
                resp: dict[str, object] = {
                    "requestId": req["requestId"],
                    "variant": req["variant"],
                    "imageB64": image,
                    "queueMs": 0.0,
                    "generationMs": 0.0,
                    "batchSize": 1,
                }
                if req.get("discriminate"):
                    resp["pReal"] = 0.9
                out = json.dumps(resp).encode()
            self.t.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                % (len(out), out)
            )

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Proto, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --------------------------------------------------------------------------- load generator


class Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host
        self.last_used = time.monotonic()

    @property
    def stale(self) -> bool:
        """Idle long enough that the server may be closing it (uvicorn's keep-alive is 5 s)."""
        return time.monotonic() - self.last_used > 3.0

    @classmethod
    async def open(cls, host: str, port: int) -> Conn:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 24)
        return cls(reader, writer, f"{host}:{port}")

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nhost: {self.host}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        body = await self.reader.readexactly(length)
        self.last_used = time.monotonic()
        return status, body

    def close(self) -> None:
        self.writer.close()


@dataclass
class Run:
    name: str
    latencies_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    seconds: float = 0.0
    metrics_s: list[float] = field(default_factory=list)
    rss_peak_mb: float | None = None
    cpu_s: float | None = None  # the gateway's CPU time (user + system) during the phase
    rss_detail: str = ""
    trace: list[tuple[float, float]] = field(default_factory=list)  # (scheduled send, latency) s
    core_busy_s: float | None = None  # the gateway's CPU, all processes (the gateway's and others')

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


async def open_loop(
    run: Run,
    host: str,
    port: int,
    path: str,
    bodies: Callable[[int], bytes],
    n: int,
    rate: float,
    *,
    probe: tuple[str, int] | None = None,
    check: Callable[[bytes], bool] | None = None,
) -> None:
    """Send ``n`` requests at ``rate`` req/s on schedule (open loop), whatever the answers do."""
    idle: list[Conn] = [await Conn.open(host, port) for _ in range(32)]
    pending: set[asyncio.Task[None]] = set()
    done = asyncio.Event()

    async def one(i: int, scheduled: float) -> None:
        conn = idle.pop() if idle else None
        while conn is not None and conn.stale:
            conn.close()
            conn = idle.pop() if idle else None
        try:
            if conn is None:
                conn = await Conn.open(host, port)
            status, body = await conn.request("POST", path, bodies(i))
            end = time.perf_counter()
            if status != 200:
                run.error(f"HTTP {status}")
            elif check is not None and not check(body):
                run.error("bad body")
            else:
                run.latencies_s.append(end - scheduled)
                run.trace.append((scheduled, end - scheduled))
            idle.append(conn)
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            run.error(type(e).__name__)
            if conn is not None:
                conn.close()

    async def prober() -> None:
        assert probe is not None
        conn = await Conn.open(*probe)
        while not done.is_set():
            t = time.perf_counter()
            try:
                status, _ = await asyncio.wait_for(conn.request("GET", "/metrics"), 10)
            except (TimeoutError, OSError, asyncio.IncompleteReadError):
                run.metrics_s.append(10.0)
                conn.close()
                conn = await Conn.open(*probe)
                continue
            run.metrics_s.append(time.perf_counter() - t if status == 200 else 10.0)
            await asyncio.sleep(0.1)
        conn.close()

    probe_task = asyncio.create_task(prober()) if probe else None
    t0 = time.perf_counter()
    i = 0
    while i < n:
        now = time.perf_counter()
        while i < n and t0 + i / rate <= now:  # everything that is due now
            task = asyncio.create_task(one(i, t0 + i / rate))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
        if i < n:
            await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
    run.sent = n
    await asyncio.wait(pending, timeout=60) if pending else None
    run.seconds = time.perf_counter() - t0
    done.set()
    if probe_task is not None:
        await probe_task
    for c in idle:
        c.close()


async def closed_loop(
    host: str, port: int, path: str, bodies: Callable[[int], bytes], n: int, concurrency: int
) -> int:
    """Send ``n`` requests, ``concurrency`` at a time; the number answered with HTTP 200."""
    ok = 0
    queue = list(range(n))

    async def client() -> None:
        nonlocal ok
        conn = await Conn.open(host, port)
        while queue:
            status, _ = await conn.request("POST", path, bodies(queue.pop()))
            ok += status == 200
        conn.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return ok


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pinned(cpus: set[int]) -> Callable[[], None]:
    def pin() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    return pin


def wait_http(port: int, path: str, timeout: float = 60.0) -> None:
    async def probe() -> bool:
        try:
            conn = await Conn.open("127.0.0.1", port)
        except OSError:
            return False
        try:
            status, _ = await conn.request("GET", path)
            return status == 200
        except (OSError, asyncio.IncompleteReadError):
            return False
        finally:
            conn.close()

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if asyncio.run(probe()):
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered {path} on port {port} within {timeout:.0f} s")


def cpu_busy_s(cpu: int) -> float:
    """Busy (non-idle) seconds of CPU ``cpu`` since boot, all processes together."""
    for row in Path("/proc/stat").read_text().splitlines():
        if row.startswith(f"cpu{cpu} "):
            ticks = [int(x) for x in row.split()[1:]]
            return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    return float("nan")


def family(pid: int) -> list[int]:
    """``pid`` and its descendants (the gateway and its router process)."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            out += family(int(child))
    return out


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid``, its threads and its child processes so far."""
    total = 0.0
    for p in family(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def family_rss_mb(pid: int) -> list[tuple[int, float, float]]:
    """(pid, current RSS, peak RSS) of ``pid`` and each of its descendants."""
    return [(p, *rss_mb(p)) for p in family(pid)]


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of ``pid`` in MB, from /proc."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = float(value.split()[0]) / 1024
    return fields.get("VmRSS", float("nan")), fields.get("VmHWM", float("nan"))


# --------------------------------------------------------------------------- report


def q_ms(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) * 1e3 if xs else float("nan")


def line(run: Run) -> str:
    lat = run.latencies_s
    ok = len(lat)
    errors = sum(run.errors.values())
    rate = (ok + errors) / run.seconds if run.seconds else 0.0
    errs = ", ".join(f"{k} ×{v}" for k, v in sorted(run.errors.items())) or "none"
    cpu = f", gateway CPU {run.cpu_s / run.sent * 1e3:.2f} ms/request" if run.cpu_s and run.sent else ""
    if run.cpu_s and run.core_busy_s and run.seconds:
        others = max(run.core_busy_s - run.cpu_s, 0.0) / run.seconds
        cpu += f" ({run.cpu_s / run.seconds:.0%} of its core; other processes took {others:.0%} of it)"
    return (
        f"{run.name:<22} p50 {q_ms(lat, 50):7.2f}  p95 {q_ms(lat, 95):7.2f}  p99 {q_ms(lat, 99):8.2f} ms"
        f"  | {rate:6.1f} req/s answered, {ok}/{run.sent} ok, errors: {errs}{cpu}"
    )


def metrics_line(run: Run) -> str:
    m = run.metrics_s
    if not m:
        return ""
    return (
        f"{'':<22} /metrics while loaded: p50 {q_ms(m, 50):.1f} ms, p99 {q_ms(m, 99):.1f} ms, "
        f"max {max(m) * 1e3:.1f} ms ({len(m)} probes)"
    )


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=TARGET_RATE, help="requests per second (open loop)")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the direct and warm phases")
    ap.add_argument("--cold-seconds", type=float, default=10.0, help="length of the cold phase")
    ap.add_argument("--repeats", type=int, default=3, help="direct + warm pairs (median reported)")
    ap.add_argument("--image-kb", type=int, default=0, help="worker image size (0: a tiny PNG)")
    ap.add_argument("--serve-instant-worker", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_instant_worker:
        serve_instant_worker(args.serve_instant_worker, args.image_kb * 1024)
        return 0

    from hadis.profiles import load_reference_prompts

    prompts = load_reference_prompts()
    cpus = sorted(os.sched_getaffinity(0))
    gateway_cpus = {cpus[0]}
    args.gateway_cpu = cpus[0]
    others = set(cpus[1:]) or set(cpus)
    os.sched_setaffinity(0, others)
    print(
        f"gateway overhead: gateway on CPU {cpus[0]} (one uvicorn process); load generator and instant "
        f"workers on CPU {sorted(others)}; {args.rate:.0f} req/s open loop; {len(prompts)} reference prompts"
    )
    print(
        f"targets: added latency p99 ≤ {TARGET_ADDED_P99_MS:.0f} ms at {TARGET_RATE:.0f} req/s; "
        f"gateway RSS ≤ {TARGET_RSS_MB:.0f} MB; router features ≤ 2 ms p50 (bench_router.py)"
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {len(cpus)} CPUs, load average {load} (other processes share the gateway's core)")
    procs: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        ports = {"light": free_port(), "heavy": free_port()}
        for port in ports.values():
            cmd = [sys.executable, __file__, "--serve-instant-worker", str(port)]
            cmd += ["--image-kb", str(args.image_kb)]
            procs.append(subprocess.Popen(cmd, env=env, preexec_fn=pinned(others)))
        for port in ports.values():
            wait_http(port, "/healthz")
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "cascade.json"
            config.write_text(json.dumps(cascade(ports)))
            gw_port = free_port()
            gw_env = {
                **env,
                "HADIS_CONFIG_PATH": str(config),
                "HADIS_GATEWAY_HOST": "127.0.0.1",
                "HADIS_GATEWAY_PORT": str(gw_port),
                "HADIS_QUEUE_CAPACITY": "1024",
            }
            gw = subprocess.Popen(
                [sys.executable, "-m", "hadis_gateway"], env=gw_env, preexec_fn=pinned(gateway_cpus)
            )
            procs.append(gw)
            wait_http(gw_port, "/readyz")
            rss = " + ".join(f"{cur:.0f}" for _, cur, _ in family_rss_mb(gw.pid))
            print(f"gateway started, RSS {rss} MB (gateway process + router process)")
            cold_pair, pairs = asyncio.run(phases(args, prompts, ports["light"], gw_port, gw.pid))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    report(cold_pair, pairs)
    return 0


def cascade(ports: dict[str, int]) -> dict[str, object]:
    return {
        "generation": 1,
        "row": {"light": "light", "heavy": "heavy", "theta": 0.3, "tau": 0.0, "p": 0.3, "fid": 20.0},
        "variants": {v: {"batchSize": 4, "endpoints": [f"http://127.0.0.1:{p}"]} for v, p in ports.items()},
        "sloS": 60.0,
        "profile": "hadis-paper-l40s",
    }


async def phases(
    args: argparse.Namespace, prompts: list[str], worker_port: int, gw_port: int, pid: int
) -> tuple[tuple[Run, Run], list[tuple[Run, Run]]]:
    rate = args.rate
    rng = random.Random(0)
    gw_bodies = [json.dumps({"prompt": p, "n": 1, "size": "512x512"}).encode() for p in prompts]

    def direct_body(i: int) -> bytes:
        body = {"requestId": f"r{i}", "prompt": prompts[i % len(prompts)], "variant": "light",
                "deadlineUnixS": time.time() + 60, "discriminate": True}  # fmt: skip
        return json.dumps(body).encode()

    def gateway_ok(body: bytes) -> bool:
        return b'"x_hadis"' in body

    def gateway_warm(_: int) -> bytes:
        return gw_bodies[rng.randrange(len(gw_bodies))]

    # a few requests so every process is warm (imports, connection pools, first-call paths)
    await open_loop(Run("warm-up"), "127.0.0.1", worker_port, "/v1/generate", direct_body, 200, 200.0)
    order = list(range(len(prompts)))
    rng.shuffle(order)
    warmup_gw = Run("warm-up")  # 200 prompts that the cold phase below does not use
    await open_loop(warmup_gw, "127.0.0.1", gw_port, "/v1/images/generations",
                    lambda i: gw_bodies[order[-1 - i]], 200, 100.0)  # fmt: skip

    n = int(rate * args.seconds)
    cold_direct = Run("direct to worker")
    await open_loop(cold_direct, "127.0.0.1", worker_port, "/v1/generate", direct_body, n, rate)

    cold = Run("gateway, cold prompts")
    n_cold = min(int(rate * args.cold_seconds), len(prompts) - 200)
    await measured(cold, args, pid, open_loop(cold, "127.0.0.1", gw_port, "/v1/images/generations",
                   lambda i: gw_bodies[order[i]], n_cold, rate, probe=("127.0.0.1", gw_port),
                   check=gateway_ok))  # fmt: skip

    # every prompt scored once (as fast as the gateway goes), so the warm phase is all cache hits
    path = "/v1/images/generations"
    await closed_loop("127.0.0.1", gw_port, path, lambda i: gw_bodies[i], len(prompts), 16)
    pairs = []
    for k in range(args.repeats):  # a direct run beside each warm run: the machine's load drifts
        direct = Run(f"direct to worker #{k + 1}")
        await open_loop(direct, "127.0.0.1", worker_port, "/v1/generate", direct_body, n, rate)
        warm = Run(f"gateway, warm #{k + 1}")
        await measured(warm, args, pid, open_loop(warm, "127.0.0.1", gw_port, path, gateway_warm, n, rate,
                       probe=("127.0.0.1", gw_port), check=gateway_ok))  # fmt: skip
        pairs.append((direct, warm))
    cold.rss_detail = ", ".join(f"pid {p}: peak {peak:.0f} MB" for p, _, peak in family_rss_mb(pid))
    cold.rss_peak_mb = sum(peak for *_, peak in family_rss_mb(pid))
    return (cold_direct, cold), pairs


async def measured(run: Run, args: argparse.Namespace, pid: int, load: Awaitable[None]) -> None:
    """Run ``load``, recording the gateway's CPU time and its core's busy time meanwhile."""
    cpu0, busy0 = cpu_s(pid), cpu_busy_s(args.gateway_cpu)
    await load
    run.core_busy_s = cpu_busy_s(args.gateway_cpu) - busy0
    run.cpu_s = cpu_s(pid) - cpu0


def added_ms(run: Run, direct: Run, q: float) -> float:
    return q_ms(run.latencies_s, q) - q_ms(direct.latencies_s, q)


def report(cold_pair: tuple[Run, Run], pairs: list[tuple[Run, Run]]) -> None:
    print("\nlatency from scheduled send to answer, and what the gateway adds (gateway − direct):")
    for direct, run in [cold_pair, *pairs]:
        print(line(direct))
        print(line(run))
        print(metrics_line(run))
        added = {q: added_ms(run, direct, q) for q in (50, 95, 99)}
        print(f"{'':<22} added: p50 {added[50]:+7.2f}  p95 {added[95]:+7.2f}  p99 {added[99]:+8.2f} ms")
    direct, cold = cold_pair
    warm_p99 = sorted(added_ms(w, d, 99) for d, w in pairs)
    median = warm_p99[len(warm_p99) // 2]
    errors = sum(sum(w.errors.values()) for _, w in pairs)
    cold_p99 = added_ms(cold, direct, 99)
    met = {True: "MET", False: "NOT MET"}
    print("\ntargets:")
    runs = ", ".join(f"{x:.2f}" for x in warm_p99)
    print(f"  added p99 ≤ {TARGET_ADDED_P99_MS:.0f} ms, warm (cached prompts): median {median:.2f} ms of "
          f"{len(pairs)} runs ({runs})  {met[median <= TARGET_ADDED_P99_MS and not errors]}")  # fmt: skip
    print(f"  added p99 ≤ {TARGET_ADDED_P99_MS:.0f} ms, cold (unique prompts): {cold_p99:.2f} ms  "
          f"{met[cold_p99 <= TARGET_ADDED_P99_MS and not cold.errors]}")  # fmt: skip
    rss = cold.rss_peak_mb or 0.0
    print(f"  gateway peak RSS ≤ {TARGET_RSS_MB:.0f} MB: {rss:.0f} MB  {met[rss <= TARGET_RSS_MB]}  "
          f"(gateway, resource tracker, router process: {cold.rss_detail})")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
