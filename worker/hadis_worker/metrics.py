"""The worker's Prometheus metrics, in a registry of its own (one per app, no globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60, 120, 300, 600)


class WorkerMetrics:
    """``hadis_worker_<thing>_<unit>`` metrics, every one labelled with the variant served."""

    def __init__(self, variant: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.variant = variant
        labels = ["variant"]
        self.queue = Gauge(
            "hadis_worker_queue_requests", "Requests waiting for a batch", labels, registry=self.registry
        )
        self.batch_limit = Gauge(
            "hadis_worker_batch_limit_requests",
            "Configured maximum batch size",
            labels,
            registry=self.registry,
        )
        self.config_generation = Gauge(
            "hadis_worker_config_generation",
            "Generation of the cascade config last applied (-1: none yet)",
            labels,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "hadis_worker_batch_size_requests",
            "Requests per batch run",
            labels,
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.generation = Histogram(
            "hadis_worker_generation_seconds",
            "Engine time of one batch",
            labels,
            buckets=SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "hadis_worker_queue_wait_seconds",
            "Time from arrival to the start of the request's batch",
            labels,
            buckets=SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "hadis_worker_requests_total",
            "Answered requests by outcome (ok or the WorkerError code)",
            [*labels, "outcome"],
            registry=self.registry,
        )
        self.config_generation.labels(variant).set(-1)

    def set_queue(self, n: int) -> None:
        self.queue.labels(self.variant).set(n)

    def set_batch_limit(self, n: int) -> None:
        self.batch_limit.labels(self.variant).set(n)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.labels(self.variant).observe(size)
        self.generation.labels(self.variant).observe(seconds)

    def observe_wait(self, seconds: float) -> None:
        self.queue_wait.labels(self.variant).observe(seconds)

    def count(self, outcome: str) -> None:
        self.requests.labels(self.variant, outcome).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
