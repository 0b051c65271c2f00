"""The operator's own Prometheus metrics (``hadis_operator_<thing>_<unit>``) and its liveness.

Every series is labelled ``namespace`` and ``service`` (the HadisService):

==============================================================  ===========================================
``hadis_operator_solve_seconds`` (histogram)                    the policy's solve time per decision
``hadis_operator_variant_replicas``                             worker replicas (GPUs) per variant and pool
``hadis_operator_variant_batch_size_requests``                  batch size per variant and pool
``hadis_operator_variant_capacity_qps``                         allocated throughput per variant and pool
``hadis_operator_gpus``                                         GPUs the allocation uses
``hadis_operator_cascade_row_info``                             1, labelled light, heavy, theta, tau
``hadis_operator_theta_ratio`` / ``_tau_ratio`` / ``_heavy_share_ratio``  the chosen row's θ, τ, p
``hadis_operator_allocation_info``                              1, labelled policy and solver_status
``hadis_operator_demand_qps``                                   the demand the allocation provisions for
``hadis_operator_observed_arrival_qps``                         the last arrival rate Prometheus reported
``hadis_operator_expected_fid``                                 the allocation's expected FID
``hadis_operator_feasible`` / ``hadis_operator_shed_qps``       1 when the SLO holds for all; demand shed
``hadis_operator_allocations_total``                            allocations recorded
``hadis_operator_reconcile_errors_total``                       errors, by ``reason``
``hadis_operator_last_reconcile_success_timestamp_seconds``     unix time of the last recorded allocation
==============================================================  ===========================================

plus ``hadis_operator_heartbeat_timestamp_seconds`` (no labels): the last ``mark_alive``.

:class:`OperatorMetrics` holds a dedicated registry. The operator process uses one instance,
through the module functions (``record_allocation``, ``record_error``, ``record_observation``,
``forget_service``, ``mark_alive``, ``start_metrics_server``); tests build their own.

The server (``start_metrics_server``) answers ``GET /metrics`` and ``GET /healthz``: 200 while
``mark_alive`` was called within ``stale_after_s`` seconds (starting the server counts as one),
503 with the age of the last mark otherwise.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from hadis.api.allocation import Allocation
from hadis.observe.load import LoadObservation

SOLVE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)
DEFAULT_STALE_AFTER_S = 60.0
SVC = ("namespace", "service")
POOLED = (*SVC, "variant", "pool")


class OperatorMetrics:
    """The operator's metrics in a registry of their own, and the liveness heartbeat."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.registry = r = CollectorRegistry(auto_describe=True)
        self._lock = threading.Lock()
        self._pools: dict[tuple[str, str], set[tuple[str, str]]] = {}  # (ns, svc) -> {(variant, pool)}
        self._rows: dict[tuple[str, str], tuple[str, ...]] = {}
        self._infos: dict[tuple[str, str], tuple[str, ...]] = {}
        self._errors: dict[tuple[str, str], set[str]] = {}
        self.last_alive = clock()

        def gauge(name: str, doc: str, labels: tuple[str, ...] = SVC) -> Gauge:
            return Gauge(name, doc, labels, registry=r)

        self.solve = Histogram(
            "hadis_operator_solve_seconds",
            "Policy solve time per decision",
            SVC,
            buckets=SOLVE_BUCKETS,
            registry=r,
        )
        self.replicas = gauge("hadis_operator_variant_replicas", "Worker replicas (GPUs)", POOLED)
        self.batch = gauge("hadis_operator_variant_batch_size_requests", "Batch size", POOLED)
        self.capacity = gauge("hadis_operator_variant_capacity_qps", "Allocated throughput", POOLED)
        self.gpus = gauge("hadis_operator_gpus", "GPUs the allocation uses")
        self.row = gauge(
            "hadis_operator_cascade_row_info",
            "The chosen cascade row (1)",
            (*SVC, "light", "heavy", "theta", "tau"),
        )
        self.theta = gauge("hadis_operator_theta_ratio", "Share of prompts the router sends to heavy")
        self.tau = gauge("hadis_operator_tau_ratio", "Share of light images the discriminator escalates")
        self.heavy_share = gauge("hadis_operator_heavy_share_ratio", "Share of queries reaching heavy (p)")
        self.info = gauge(
            "hadis_operator_allocation_info",
            "Policy and solver status (1)",
            (*SVC, "policy", "solver_status"),
        )
        self.demand = gauge("hadis_operator_demand_qps", "Demand the allocation provisions for")
        self.observed = gauge("hadis_operator_observed_arrival_qps", "Last arrival rate observed")
        self.fid = gauge("hadis_operator_expected_fid", "Expected FID of the allocation")
        self.feasible = gauge("hadis_operator_feasible", "1 when the SLO holds for the whole demand")
        self.shed = gauge("hadis_operator_shed_qps", "Demand the allocation cannot serve in time")
        self.allocations = Counter("hadis_operator_allocations", "Allocations recorded", SVC, registry=r)
        self.errors = Counter(
            "hadis_operator_reconcile_errors", "Reconcile errors by reason", (*SVC, "reason"), registry=r
        )
        self.last_success = gauge(
            "hadis_operator_last_reconcile_success_timestamp_seconds", "Unix time of the last allocation"
        )
        self.heartbeat = Gauge(
            "hadis_operator_heartbeat_timestamp_seconds", "Unix time of the last liveness mark", registry=r
        )
        self.heartbeat.set(self.last_alive)

    # --- recording ------------------------------------------------------------------------------

    def record_allocation(self, service: str, namespace: str, alloc: Allocation) -> None:
        """Gauges from one decision; variants/pools it no longer uses drop to 0 replicas."""
        key = (namespace, service)
        with self._lock:
            self.solve.labels(*key).observe(alloc.solve_time_s)
            seen = {(a.variant, a.pool) for a in alloc.variants}
            for variant, pool in self._pools.get(key, set()) - seen:
                self.replicas.labels(*key, variant, pool).set(0)
                self.capacity.labels(*key, variant, pool).set(0)
                self._remove(self.batch, (*key, variant, pool))
            self._pools[key] = self._pools.get(key, set()) | seen
            for a in alloc.variants:
                self.replicas.labels(*key, a.variant, a.pool).set(a.replicas)
                self.batch.labels(*key, a.variant, a.pool).set(a.batch_size)
                self.capacity.labels(*key, a.variant, a.pool).set(a.throughput_qps)
            self.gpus.labels(*key).set(alloc.gpus_used)
            self._set_row(key, alloc)
            info = (*key, alloc.policy, alloc.solver_status)
            if self._infos.get(key) not in (None, info):
                self._remove(self.info, self._infos[key])
            self.info.labels(*info).set(1)
            self._infos[key] = info
            self.demand.labels(*key).set(alloc.demand_qps)
            self.fid.labels(*key).set(alloc.expected_fid)
            self.feasible.labels(*key).set(1 if alloc.feasible else 0)
            self.shed.labels(*key).set(alloc.shed_qps)
            self.allocations.labels(*key).inc()
            self.last_success.labels(*key).set(self.clock())

    def _set_row(self, key: tuple[str, str], alloc: Allocation) -> None:
        row = alloc.row
        labels = None if row is None else (*key, row.light, row.heavy, f"{row.theta:g}", f"{row.tau:g}")
        old = self._rows.pop(key, None)
        if old is not None and old != labels:
            self._remove(self.row, old)
        if row is None or labels is None:
            for g in (self.theta, self.tau, self.heavy_share):
                self._remove(g, key)
            return
        self.row.labels(*labels).set(1)
        self._rows[key] = labels
        self.theta.labels(*key).set(row.theta)
        self.tau.labels(*key).set(row.tau)
        self.heavy_share.labels(*key).set(row.p)

    def record_observation(self, service: str, namespace: str, obs: LoadObservation) -> None:
        self.observed.labels(namespace, service).set(obs.arrival_qps)

    def record_error(self, service: str, namespace: str, reason: str) -> None:
        with self._lock:
            self.errors.labels(namespace, service, reason).inc()
            self._errors.setdefault((namespace, service), set()).add(reason)

    def forget_service(self, service: str, namespace: str) -> None:
        """Drop every series of a deleted HadisService."""
        key = (namespace, service)
        with self._lock:
            for variant, pool in self._pools.pop(key, set()):
                for g in (self.replicas, self.batch, self.capacity):
                    self._remove(g, (*key, variant, pool))
            row, info = self._rows.pop(key, None), self._infos.pop(key, None)
            if row is not None:
                self._remove(self.row, row)
            if info is not None:
                self._remove(self.info, info)
            for reason in self._errors.pop(key, set()):
                self._remove(self.errors, (*key, reason))
            per_service: tuple[Histogram | Gauge | Counter, ...] = (
                *(self.solve, self.gpus, self.theta, self.tau, self.heavy_share, self.demand),
                *(self.observed, self.fid, self.feasible, self.shed, self.allocations, self.last_success),
            )
            for metric in per_service:
                self._remove(metric, key)

    @staticmethod
    def _remove(metric: Any, labels: tuple[str, ...]) -> None:
        with contextlib.suppress(KeyError):  # never set: nothing to remove
            metric.remove(*labels)

    # --- liveness -------------------------------------------------------------------------------

    def mark_alive(self) -> None:
        self.last_alive = self.clock()
        self.heartbeat.set(self.last_alive)

    def alive_age_s(self) -> float:
        return max(self.clock() - self.last_alive, 0.0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsServer:
    """``/metrics`` and ``/healthz`` on a ThreadingHTTPServer in a daemon thread."""

    def __init__(self, metrics: OperatorMetrics, port: int, host: str, stale_after_s: float) -> None:
        handler = _handler(metrics, stale_after_s)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port: int = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="hadis-metrics", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def _handler(metrics: OperatorMetrics, stale_after_s: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, metrics.exposition(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                age = metrics.alive_age_s()
                if age <= stale_after_s:
                    self._reply(200, b"ok\n", "text/plain")
                else:
                    text = f"operator loop not alive: last mark {age:.0f} s ago (limit {stale_after_s:g} s)\n"
                    self._reply(503, text.encode(), "text/plain")
            else:
                self._reply(404, b"not found: try /metrics or /healthz\n", "text/plain")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # every probe would be a log line
            pass

    return Handler


# --- the operator process's metrics ----------------------------------------------------------------
#: the one instance of the operator process (kopf handlers record into it; tests make their own)
PROCESS = OperatorMetrics()


def record_allocation(service: str, namespace: str, alloc: Allocation) -> None:
    PROCESS.record_allocation(service, namespace, alloc)


def record_error(service: str, namespace: str, reason: str) -> None:
    PROCESS.record_error(service, namespace, reason)


def record_observation(service: str, namespace: str, obs: LoadObservation) -> None:
    PROCESS.record_observation(service, namespace, obs)


def forget_service(service: str, namespace: str) -> None:
    PROCESS.forget_service(service, namespace)


def mark_alive() -> None:
    PROCESS.mark_alive()


def start_metrics_server(
    port: int,
    *,
    host: str = "0.0.0.0",
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
    metrics: OperatorMetrics | None = None,
) -> MetricsServer:
    """Serve ``metrics`` (default: the process's) on ``host:port`` (0: any free port, see ``.port``)."""
    m = PROCESS if metrics is None else metrics
    m.mark_alive()  # starting counts as alive: the loop has not had a chance to mark yet
    return MetricsServer(m, port, host, stale_after_s)
