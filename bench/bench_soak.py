"""Soak benchmark: the real gateway and emulated workers under hours-style load (prints figures; not a test).

Setup: ``python -m hadis_gateway`` and one emulated ``python -m hadis_worker`` per variant of a
fixed cascade row (sdxl-lightning → sd35-large-turbo, θ 0.3, τ 0.3, the paper's L40S latencies ×
``--time-scale``), started by ``tests/process_stack.py``; this process is an open-loop load
generator (aiohttp, keep-alive) sending ``--qps`` on average, alternating ``--phase-s`` phases of
steady traffic (Poisson arrivals, CV 1) and bursty traffic (gamma inter-arrivals, CV ``--cv``,
default 4: long gaps, then bursts far above the mean). Prompts come from the profile's reference
set: the first ``--prompts`` of them in order during warm-up (so the router's score cache holds
them all before the memory baseline is taken), then drawn at random from those.

Every ``--report-s`` seconds it prints what was sent and answered (by HTTP status and error
code), the period's latency percentiles and SLO attainment, and per process (the gateway, its
router child, each worker): RSS, open file descriptors, TCP connections and threads (from
/proc; the gateway exposes no asyncio task count, so its ``/metrics`` in-flight and
waiting gauges stand for the work it holds). At the end: the whole run's figures, and per process
RSS at start (ready, idle), after warm-up, peak and at the end (after the load stopped and
keep-alive connections expired), with the growth after warm-up against the 10 % budget; file
descriptors and connections at the end against the idle start (a leak shows as a difference);
requests sent against answered (every request must get an HTTP answer: an image or an explicit
error).

``python bench/bench_soak.py [--minutes 30] [--qps 6] [--cv 4] [--phase-s 60] [--report-s 60]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.process_stack import ProcessStack, running_stack  # noqa: E402

from hadis.profiles import load_reference_prompts  # noqa: E402

LIGHT, HEAVY = "sdxl-lightning", "sd35-large-turbo"
ROW = {"light": LIGHT, "heavy": HEAVY, "theta": 0.3, "tau": 0.3, "p": 0.51, "fid": 25.5}
GROWTH_BUDGET = 0.10
SETTLE_S = 100.0  # after the load: longer than every keep-alive timeout (the workers' is 75 s)


# --------------------------------------------------------------------------- arrivals


def arrivals(qps: float, cv: float, phase_s: float, total_s: float, seed: int) -> Iterator[tuple[float, str]]:
    """(time from start, phase) of each request: steady (Poisson) and bursty (gamma, CV ``cv``)
    phases of ``phase_s`` alternating, steady first, all at mean rate ``qps``."""
    rng = np.random.default_rng(seed)
    t = 0.0
    while True:
        phase_no = int(t // phase_s)
        bursty = phase_no % 2 == 1
        c = cv if bursty else 1.0
        k = 1.0 / c**2
        t += float(rng.gamma(k, 1.0 / (qps * k)))
        if t >= total_s:
            return
        # a gap that crosses into the next phase is drawn again from there (phases keep their law)
        if int(t // phase_s) != phase_no:
            t = (phase_no + 1) * phase_s
            continue
        yield t, "bursty" if bursty else "steady"


# --------------------------------------------------------------------------- outcomes


@dataclass
class Tally:
    """Answers of one period (or the whole run)."""

    sent: int = 0
    answered: int = 0  # an HTTP answer came (any status)
    transport: Counter[str] = field(default_factory=Counter)  # no answer: why
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)  # error code of non-2xx answers
    latency_ok: list[float] = field(default_factory=list)  # seconds, 200s only
    within_slo: int = 0

    def add(self, status: int, code: str | None, latency_s: float, slo_s: float) -> None:
        if status == 0:
            self.transport[code or "?"] += 1
            return
        self.answered += 1
        self.statuses[status] += 1
        if status == 200:
            self.latency_ok.append(latency_s)
            self.within_slo += latency_s <= slo_s
        else:
            self.codes[f"{status} {code}"] += 1

    def merge(self, other: Tally) -> None:
        self.sent += other.sent
        self.answered += other.answered
        self.transport.update(other.transport)
        self.statuses.update(other.statuses)
        self.codes.update(other.codes)
        self.latency_ok.extend(other.latency_ok)
        self.within_slo += other.within_slo

    def line(self) -> str:
        ok = self.statuses[200]
        lat = np.array(self.latency_ok) if self.latency_ok else np.array([math.nan])
        p50, p95, p99 = (float(np.percentile(lat, q)) * 1000 for q in (50, 95, 99))
        slo = f"{self.within_slo / ok:.1%}" if ok else "-"
        errs = ", ".join(f"{k} x{v}" for k, v in sorted(self.codes.items())) or "none"
        tr = ", ".join(f"{k} x{v}" for k, v in sorted(self.transport.items()))
        return (
            f"sent {self.sent} answered {self.answered}{f' NO ANSWER {tr}' if tr else ''}; "
            f"200 x{ok}, errors: {errs}; 200 latency p50 {p50:.0f} p95 {p95:.0f} p99 {p99:.0f} ms, "
            f"within SLO {slo}"
        )


# --------------------------------------------------------------------------- processes


@dataclass
class ProcStats:
    rss: float = 0.0
    fds: int = 0
    conns: int = 0  # TCP sockets not listening (established, closing...)
    threads: int = 0


def _status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def _tcp_not_listening() -> set[str]:
    """Socket inodes of every TCP socket in this network namespace that is not listening."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                f = line.split()
                if len(f) > 9 and f[3] != "0A":  # 0A: LISTEN
                    inodes.add(f[9])
    return inodes


def read_stats(pid: int) -> ProcStats:
    """RSS, open descriptors, TCP connections and threads of ``pid`` from /proc."""
    st = _status(pid)
    fd_dir = f"/proc/{pid}/fd"
    sockets: set[str] = set()
    fds = 0
    for fd in os.listdir(fd_dir):
        fds += 1
        with contextlib.suppress(OSError):
            target = os.readlink(f"{fd_dir}/{fd}")
            if target.startswith("socket:["):
                sockets.add(target[8:-1])
    return ProcStats(
        rss=int(st["VmRSS"].split()[0]) / 1024,
        fds=fds,
        conns=len(sockets & _tcp_not_listening()),
        threads=int(st["Threads"]),
    )


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return out


@dataclass
class Watched:
    """One process's samples: start (idle, ready), after warm-up, peak, end."""

    name: str
    pid: int
    start: ProcStats | None = None
    warm: ProcStats | None = None
    last: ProcStats | None = None
    peak_rss: float = 0.0

    def sample(self) -> ProcStats:
        s = read_stats(self.pid)
        self.peak_rss = max(self.peak_rss, s.rss)
        self.last = s
        return s

    def rss(self) -> float:
        return int(_status(self.pid)["VmRSS"].split()[0]) / 1024


def watch_list(stack: ProcessStack) -> list[Watched]:
    gw = stack.pid("gateway")
    out = [Watched("gateway", gw)]
    out += [Watched(f"gateway child (pid {c})", c) for c in children(gw)]
    out += [Watched(f"worker {n}", stack.pid(n)) for n in stack.worker_names()]
    return out


def histogram_quantiles(text: str, name: str, qs: tuple[float, ...]) -> list[float]:
    """Quantiles of a Prometheus histogram in an exposition (linear within a bucket, as
    histogram_quantile does); NaN when it has no observations."""
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((math.inf if bound == "+Inf" else float(bound), float(line.rsplit(" ", 1)[1])))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0.0
    out = []
    for q in qs:
        if not total:
            out.append(math.nan)
            continue
        rank, lo, below = q * total, 0.0, 0.0
        for le, count in buckets:
            if count >= rank:
                top = le if math.isfinite(le) else lo
                out.append(lo + (top - lo) * ((rank - below) / (count - below) if count > below else 1.0))
                break
            lo, below = le, count
    return out


def gateway_gauges(text: str) -> dict[str, float]:
    """The gateway's in-flight and waiting gauges, rejections and config reloads from /metrics."""
    wanted = (
        "hadis_gateway_in_flight_requests",
        "hadis_gateway_waiting_requests",
        "hadis_gateway_queue_length_requests",
        "hadis_gateway_requests_total",
    )
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in wanted:
            out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


# --------------------------------------------------------------------------- the run


@dataclass
class Args:
    minutes: float
    qps: float
    cv: float
    phase_s: float
    report_s: float
    warmup_s: float
    prompts: int
    slo_s: float
    time_scale: float
    queue: int
    seed: int


async def run_load(
    stack: ProcessStack, a: Args, watched: list[Watched], why: Counter[str]
) -> tuple[Tally, dict[str, float]]:
    total_s = a.minutes * 60.0
    prompts = load_reference_prompts()[: a.prompts]
    rng = random.Random(a.seed)
    endpoint = f"{stack.gateway}/v1/images/generations"
    total, period = Tally(), Tally()
    inflight: set[asyncio.Task[None]] = set()
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=3)
    timeout = aiohttp.ClientTimeout(total=60)
    start = time.perf_counter()
    warmed = False
    gauges: dict[str, float] = {}

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int, prompt: str) -> None:
            t0 = time.perf_counter()
            body = json.dumps({"model": "hadis", "prompt": prompt, "seed": i, "size": "512x512"})
            status, code = 0, None
            try:
                async with session.post(
                    endpoint, data=body, headers={"Content-Type": "application/json"}
                ) as r:
                    raw = await r.read()
                    status = r.status
                    if status != 200:
                        try:
                            code = str(json.loads(raw)["error"]["code"])
                        except (ValueError, KeyError, TypeError):
                            code = f"http_{status}"
            except (TimeoutError, aiohttp.ClientError) as e:
                code = type(e).__name__
                why[f"{code}: {e}"[:160]] += 1
            period.add(status, code, time.perf_counter() - t0, a.slo_s)

        async def report() -> None:
            nonlocal period, warmed, gauges
            next_at = a.report_s
            while True:
                await asyncio.sleep(max(next_at - (time.perf_counter() - start), 0.0))
                now = time.perf_counter() - start
                next_at += a.report_s
                snapshot, period = period, Tally()
                total.merge(snapshot)
                try:
                    async with session.get(f"{stack.gateway}/metrics") as r:
                        gauges = gateway_gauges(await r.text())
                except aiohttp.ClientError:
                    gauges = {}
                procs = []
                for w in watched:
                    s = w.sample()
                    if not warmed and now >= a.warmup_s:
                        w.warm = s
                    procs.append(f"{w.name.split(' (')[0]} {s.rss:.0f}MB/{s.fds}fd/{s.conns}c/{s.threads}t")
                warmed = warmed or now >= a.warmup_s
                print(
                    f"[{now / 60:5.1f} min] {snapshot.line()}; client in flight {len(inflight)}; "
                    f"gateway in flight {gauges.get('hadis_gateway_in_flight_requests', math.nan):.0f}, "
                    f"waiting {gauges.get('hadis_gateway_waiting_requests', math.nan):.0f}; "
                    f"machine load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n"
                    f"             {'; '.join(procs)}",
                    flush=True,
                )

        async def rss_peaks() -> None:  # peaks between reports too
            while True:
                await asyncio.sleep(1.0)
                for w in watched:
                    with contextlib.suppress(OSError, KeyError, ValueError):
                        w.peak_rss = max(w.peak_rss, w.rss())

        reporter = asyncio.create_task(report())
        peaks = asyncio.create_task(rss_peaks())
        for i, (due, _phase) in enumerate(arrivals(a.qps, a.cv, a.phase_s, total_s, a.seed)):
            delay = due - (time.perf_counter() - start)
            if delay > 0:
                await asyncio.sleep(delay)
            prompt = prompts[i] if i < len(prompts) else rng.choice(prompts)
            period.sent += 1
            task = asyncio.create_task(one(i, prompt))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        if inflight:
            await asyncio.gather(*inflight)
        reporter.cancel()
        peaks.cancel()
        await asyncio.gather(reporter, peaks, return_exceptions=True)
        total.merge(period)
        if not warmed:  # a run shorter than its warm-up: the baseline is the end of the load
            for w in watched:
                w.warm = w.sample()
        async with session.get(f"{stack.gateway}/metrics") as r:
            text = await r.text()
            gauges = gateway_gauges(text)
        p50, p95, p99 = histogram_quantiles(text, "hadis_gateway_request_latency_seconds", (0.5, 0.95, 0.99))
        gauges |= {"gw_p50": p50, "gw_p95": p95, "gw_p99": p99}
    return total, gauges


def settle(watched: list[Watched]) -> float | None:
    """Wait (up to ``SETTLE_S``) until every process is back to its idle start's TCP connections
    and file descriptors (+2): the workers close idle keep-alive connections after 75 s, the
    gateway's side follows. Returns the seconds it took, ``None`` if it never did (the last sample
    is the end state)."""
    t0 = time.monotonic()
    while True:
        time.sleep(5.0)
        done = True
        for w in watched:
            s = w.sample()
            assert w.start is not None
            done = done and s.conns <= w.start.conns + 2 and s.fds <= w.start.fds + 2
        if done:
            return time.monotonic() - t0
        if time.monotonic() - t0 > SETTLE_S:
            return None


def growth(a: float, b: float) -> str:
    return f"{(b - a) / a:+.1%}" if a else "-"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0, help="load duration (default 30)")
    p.add_argument("--qps", type=float, default=6.0, help="mean request rate (default 6)")
    p.add_argument("--cv", type=float, default=4.0, help="inter-arrival CV of bursty phases (default 4)")
    p.add_argument("--phase-s", type=float, default=60.0, help="length of each steady/bursty phase")
    p.add_argument("--report-s", type=float, default=60.0, help="seconds between progress lines")
    p.add_argument("--warmup-s", type=float, default=None, help="default: max(60 s, 10 %% of the run)")
    p.add_argument("--prompts", type=int, default=300, help="distinct prompts (default 300)")
    p.add_argument("--slo", type=float, default=2.0, help="SLO in seconds (default 2)")
    p.add_argument("--time-scale", type=float, default=0.1, help="emulated latency factor (default 0.1)")
    p.add_argument("--queue", type=int, default=64, help="gateway queue capacity (default 64)")
    p.add_argument("--seed", type=int, default=0)
    ns = p.parse_args()
    minutes = float(ns.minutes)
    warmup = ns.warmup_s if ns.warmup_s is not None else max(60.0, 0.1 * minutes * 60)
    a = Args(
        minutes,
        ns.qps,
        ns.cv,
        ns.phase_s,
        ns.report_s,
        warmup,
        ns.prompts,
        ns.slo,
        ns.time_scale,
        ns.queue,
        ns.seed,
    )
    print(
        f"soak: {a.minutes:g} min at {a.qps:g} QPS mean, {a.phase_s:g} s phases steady (Poisson) / bursty "
        f"(gamma CV {a.cv:g}); SLO {a.slo_s:g} s; time scale {a.time_scale:g}; gateway queue {a.queue}; "
        f"{a.prompts} prompts; warm-up {a.warmup_s:.0f} s; row {LIGHT} -> {HEAVY} θ 0.3 τ 0.3, batch 4",
        flush=True,
    )
    t_start = time.time()
    with (
        tempfile.TemporaryDirectory(prefix="hadis-soak-") as tmp,
        running_stack(
            Path(tmp),
            ROW,
            slo_s=a.slo_s,
            time_scale=a.time_scale,
            config={"admissionFactor": 1.0},
            gateway_env={"HADIS_QUEUE_CAPACITY": str(a.queue)},
        ) as stack,
    ):
        watched = watch_list(stack)
        time.sleep(2.0)
        for w in watched:
            w.start = w.sample()
        print("idle start: " + "; ".join(f"{w.name} {w.start.rss:.0f} MB" for w in watched if w.start))
        why: Counter[str] = Counter()
        total, gauges = asyncio.run(run_load(stack, a, watched, why))
        settled_s = settle(watched)
        gw_counted = gauges.get("hadis_gateway_requests_total", math.nan)
    print(f"\n=== soak summary ({(time.time() - t_start) / 60:.1f} min wall) ===")
    print(total.line())
    for msg, n in why.most_common(5):
        print(f"no HTTP answer x{n}: {msg}")
    by_status = ", ".join(f"{s} x{n}" for s, n in sorted(total.statuses.items()))
    print(f"answers by HTTP status: {by_status}; the gateway counted {gw_counted:.0f} answered images")
    unanswered = total.sent - total.answered
    print(
        "the gateway's own latency, every answer, arrival (request read) to answer, from its histogram: "
        + " ".join(f"{q} {gauges['gw_' + q] * 1000:.0f}" for q in ("p50", "p95", "p99"))
        + " ms "
        "(the client's figures also hold the time a request waits before the gateway reads it)"
    )
    print(f"requests sent {total.sent}, answered {total.answered}: {'OK' if unanswered == 0 else 'FAIL'}")
    print(
        f"gateway at the end: in flight {gauges.get('hadis_gateway_in_flight_requests', math.nan):.0f}, "
        f"waiting {gauges.get('hadis_gateway_waiting_requests', math.nan):.0f} "
        f"(no asyncio task count is exported; these gauges hold every request task)"
    )
    print(
        f"\n{'process':<28}{'RSS start':>10}{'warm':>8}{'peak':>8}{'end':>8}{'growth':>9}  "
        f"{'fds start/warm/end':>19}  {'tcp start/warm/end':>19}  {'threads':>9}"
    )
    ok = unanswered == 0
    for w in watched:
        s, m, e = w.start, w.warm, w.last
        assert s is not None and m is not None and e is not None
        g = (e.rss - m.rss) / m.rss if m.rss else 0.0
        leak_fd = e.fds > s.fds + 2
        leak_conn = e.conns > s.conns + 2
        verdict = "OK" if g <= GROWTH_BUDGET and not leak_fd and not leak_conn else "FAIL"
        ok = ok and verdict == "OK"
        print(
            f"{w.name:<28}{s.rss:>8.1f}MB{m.rss:>8.1f}{w.peak_rss:>8.1f}{e.rss:>8.1f}"
            f"{growth(m.rss, e.rss):>9}  "
            f"{f'{s.fds}/{m.fds}/{e.fds}':>19}  {f'{s.conns}/{m.conns}/{e.conns}':>19}  "
            f"{f'{s.threads}/{e.threads}':>9}  {verdict}"
        )
    print(
        f"\nbudget: RSS growth after warm-up ≤ {GROWTH_BUDGET:.0%}; fds and TCP connections back to the "
        f"idle start (+2) once idle keep-alive connections expire (within {SETTLE_S:g} s of the load's "
        f"end: {'took ' + format(settled_s, '.0f') + ' s' if settled_s is not None else 'NOT REACHED'}); "
        f"every request answered -> {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
