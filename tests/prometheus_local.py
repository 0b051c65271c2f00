"""A real Prometheus for the tests (Debian's ``prometheus``; ``make prometheus-local`` installs it).

``running_prometheus(targets)`` starts ``prometheus`` on a free loopback port with a temporary
storage directory and a generated config (scrape and evaluation interval 1 s): the static targets
given, plus a ``file_sd`` job whose targets a test can set later with ``add_targets``. It waits
for ``/-/ready`` and, with static targets, until each has been scraped once — Prometheus'
discovery manager hands targets over every 5 s, so first scrapes come about 5 s after the start
(and about 5–7 s after an ``add_targets``) — so a test's rates start from a scraped zero. It stops
the server at the end. When the binary is missing it raises ``PrometheusMissing``: the fixtures
turn that into a test failure, never a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

START_TIMEOUT_S = 30.0


class PrometheusMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Target:
    """``host:port`` scraped at ``/metrics``, with extra labels on every series it exposes."""

    address: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, url_or_address: str, **labels: str) -> Target:
        parts = urllib.parse.urlsplit(url_or_address if "//" in url_or_address else f"//{url_or_address}")
        return cls(parts.netloc, dict(labels))


def prometheus_binary() -> str:
    path = os.environ.get("HADIS_PROMETHEUS_BIN") or shutil.which("prometheus")
    if not path or not os.access(path, os.X_OK):
        raise PrometheusMissing(
            "the prometheus binary is not installed (Debian's prometheus package): run "
            "`make prometheus-local` (.ci/prometheus-local.sh install) or set HADIS_PROMETHEUS_BIN"
        )
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _groups(targets: Sequence[Target]) -> list[dict[str, Any]]:
    return [{"targets": [t.address], "labels": dict(t.labels)} for t in targets]


@dataclass
class LocalPrometheus:
    url: str
    workdir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    file_sd: Path
    _file_targets: list[Target] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)  # how it was started (``restart`` runs it again)

    def add_targets(self, *targets: Target) -> None:
        """Scrape these too (the file_sd job); the first scrape follows about 5–7 s later."""
        self._file_targets.extend(targets)
        tmp = self.file_sd.with_suffix(".tmp")
        tmp.write_text(json.dumps(_groups(self._file_targets)))
        os.replace(tmp, self.file_sd)

    def set_targets(self, targets: Sequence[Target]) -> None:
        """Scrape exactly these in the file_sd job (a discovery loop's current view)."""
        self._file_targets = list(targets)
        tmp = self.file_sd.with_suffix(".tmp")
        tmp.write_text(json.dumps(_groups(self._file_targets)))
        os.replace(tmp, self.file_sd)

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=5) as resp:
            return json.loads(resp.read())

    def query(self, promql: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("/api/v1/query", query=promql)["data"]["result"]
        return result

    def active_targets(self) -> list[dict[str, Any]]:
        targets: list[dict[str, Any]] = self.api("/api/v1/targets", state="active")["data"]["activeTargets"]
        return targets

    def wait_until_scraped(self, address: str, *, scrapes: int = 1, timeout_s: float = 20.0) -> None:
        """Wait until ``address`` is up and has been scraped ``scrapes`` times (``up`` samples)."""
        deadline = time.monotonic() + timeout_s
        while True:
            seen = self.query(f'count_over_time(up{{instance="{address}"}}[1m])')
            up = self.query(f'up{{instance="{address}"}}')
            if seen and up and float(up[0]["value"][1]) == 1 and float(seen[0]["value"][1]) >= scrapes:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus did not scrape {address} {scrapes}× in {timeout_s} s: {up}")
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def restart(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start it again after :meth:`stop` (or a crash): same port, config and storage, so the
        URL stays valid and the series scraped before are still there."""
        self.stop()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        _wait_ready(self, timeout_s)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _config(
    static: Sequence[Target], file_sd: Path, scrape_interval: str, extra: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    return {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": scrape_interval,
        },
        "scrape_configs": [
            {"job_name": "static", "static_configs": _groups(static)},
            {
                "job_name": "file_sd",
                "file_sd_configs": [{"files": [str(file_sd)], "refresh_interval": "1s"}],
            },
            *(dict(job) for job in extra),
        ],
    }


def _wait_first_scrapes(prom: LocalPrometheus, n: int, timeout_s: float) -> None:
    """Prometheus takes its first targets about 5 s after the start: wait until each has an ``up``."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = prom.query('count(up{job="static"})')
        if seen and float(seen[0]["value"][1]) >= n:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"prometheus did not scrape its {n} static targets in {timeout_s} s")
        time.sleep(0.1)


def _wait_ready(prom: LocalPrometheus, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if prom.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {prom.proc.returncode}:\n{prom.log()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    prom.stop()
    raise RuntimeError(f"prometheus not ready after {timeout_s} s:\n{prom.log()[-3000:]}")


def _start(binary: str, workdir: Path, config: Path, file_sd: Path, host: str) -> LocalPrometheus:
    port = _free_port()
    log_path = workdir / f"prometheus-{port}.log"
    cmd = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address={host}:{port}",
        "--storage.tsdb.retention.time=1h",
        "--log.level=warn",
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return LocalPrometheus(f"http://{host}:{port}", workdir, proc, log_path, file_sd, cmd=cmd)


@contextmanager
def running_prometheus(
    targets: Sequence[Target] = (),
    *,
    scrape_interval: str = "1s",
    timeout_s: float = START_TIMEOUT_S,
    host: str = "127.0.0.1",
    scrape_configs: Sequence[Mapping[str, Any]] = (),
) -> Iterator[LocalPrometheus]:
    """A running Prometheus scraping ``targets`` (and whatever ``add_targets`` adds later), and the
    jobs in ``scrape_configs``; it listens on ``host`` (loopback, or a test cluster's node address
    that its pods reach)."""
    binary = prometheus_binary()
    workdir = Path(tempfile.mkdtemp(prefix="hadis-prometheus-"))
    file_sd = workdir / "file_sd.json"
    file_sd.write_text("[]")
    config = workdir / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(_config(targets, file_sd, scrape_interval, scrape_configs), sort_keys=False)
    )
    prom: LocalPrometheus | None = None
    try:
        for attempt in range(3):  # a free port can be taken before prometheus binds it: try another
            prom = _start(binary, workdir, config, file_sd, host)
            try:
                _wait_ready(prom, timeout_s)
                break
            except RuntimeError:
                if attempt == 2 or "address already in use" not in prom.log():
                    raise
        assert prom is not None
        if targets:
            _wait_first_scrapes(prom, len(targets), timeout_s)
        yield prom
    finally:
        if prom is not None:
            prom.stop()
        shutil.rmtree(workdir, ignore_errors=True)
