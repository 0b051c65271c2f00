"""The PromQL the control loop asks Prometheus (pure: strings in, strings out).

Which series belong to one HadisService is decided by two label matchers, configurable with
:class:`LabelMatchers`:

``namespace`` (default label ``namespace``)
    the Kubernetes namespace of the scraped pod. The usual pod scrape job (and the Prometheus
    Operator's PodMonitor/ServiceMonitor) copies ``__meta_kubernetes_namespace`` into ``namespace``.
``service`` (default label ``app_kubernetes_io_instance``)
    the HadisService's name. The operator puts ``app.kubernetes.io/instance: <service>`` on every
    gateway and worker pod; the common ``labelmap`` relabelling of
    ``__meta_kubernetes_pod_label_(.+)`` turns it into ``app_kubernetes_io_instance`` (Prometheus
    label names cannot hold ``.`` or ``/``). With a PodMonitor use ``podTargetLabels`` to keep it.

An empty label name drops that matcher (e.g. a Prometheus that scrapes one service only). Extra
fixed matchers (``job="hadis"``) can be added with ``LabelMatchers.extra``.

The signals (metric names are the gateway's and workers', see ``hadis_gateway/metrics.py`` and
``hadis_worker/metrics.py``):

- arrival rate: ``sum(rate(hadis_gateway_arrivals_total[w]))`` — images asked for, counted by the
  gateway on arrival, summed over gateway replicas;
- per-variant arrival rate: ``sum by (variant) (rate(hadis_gateway_dispatched_total[w]))`` —
  generations the gateways asked of each variant when they joined its queue, so the heavy
  variant's rate includes router-hard prompts and escalations;
- per-variant queue: ``sum by (variant) (hadis_gateway_waiting_requests)`` — requests waiting at
  the gateways for an idle replica of each variant (not those being generated).

Queue over arrival rate is the Little's-law queueing delay the allocator adds to each stage
(:meth:`hadis.api.allocation.DecisionInput.queueing_delay_s`); local mode and the simulator
measure the same two quantities.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ARRIVALS_METRIC = "hadis_gateway_arrivals_total"
DISPATCHED_METRIC = "hadis_gateway_dispatched_total"
QUEUE_METRIC = "hadis_gateway_waiting_requests"

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# one duration unit, as the CRD allows (rateWindow), plus the units PromQL knows beyond it
_DURATION = re.compile(r"^[0-9]+(ms|s|m|h|d|w|y)$")


@dataclass(frozen=True)
class LabelMatchers:
    """Which labels carry the namespace and the HadisService name (see the module docstring)."""

    namespace_label: str = "namespace"
    service_label: str = "app_kubernetes_io_instance"
    extra: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        names = [self.namespace_label, self.service_label, *(k for k, _ in self.extra)]
        for name in names:
            if name and not _LABEL_NAME.match(name):
                raise ValueError(
                    f"{name!r} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*); "
                    "a Kubernetes label like app.kubernetes.io/instance is app_kubernetes_io_instance"
                )


DEFAULT_MATCHERS = LabelMatchers()


def quote_label_value(value: str) -> str:
    """A PromQL double-quoted string literal holding ``value``."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def selector(namespace: str, service: str, matchers: LabelMatchers = DEFAULT_MATCHERS) -> str:
    """``{namespace="ns",app_kubernetes_io_instance="svc"}`` (``{}`` when every matcher is off)."""
    pairs = [(matchers.namespace_label, namespace), (matchers.service_label, service), *matchers.extra]
    inner = ",".join(f"{k}={quote_label_value(v)}" for k, v in pairs if k)
    return "{" + inner + "}"


def check_window(window: str) -> str:
    if not _DURATION.match(window):
        raise ValueError(f"rate window {window!r} is not a PromQL duration like 30s, 1m or 5m")
    return window


@dataclass(frozen=True)
class LoadQueries:
    """The instant queries of one observation, for one HadisService."""

    selector: str
    window: str

    @property
    def arrivals_series(self) -> str:
        """The raw arrivals counter: how the reasons name what is missing."""
        return f"{ARRIVALS_METRIC}{self.selector}"

    @property
    def arrival_rate(self) -> str:
        return f"sum(rate({self.arrivals_series}[{self.window}]))"

    @property
    def arrivals_present(self) -> str:
        """How many arrivals series exist at all (tells 'no target' from 'too few samples')."""
        return f"count({self.arrivals_series})"

    @property
    def variant_rates(self) -> str:
        return f"sum by (variant) (rate({DISPATCHED_METRIC}{self.selector}[{self.window}]))"

    @property
    def queue_lengths(self) -> str:
        return f"sum by (variant) ({QUEUE_METRIC}{self.selector})"


def load_queries(
    namespace: str, service: str, *, rate_window: str = "1m", matchers: LabelMatchers = DEFAULT_MATCHERS
) -> LoadQueries:
    return LoadQueries(selector(namespace, service, matchers), check_window(rate_window))
