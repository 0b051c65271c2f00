"""Observing the load through the Prometheus HTTP API (instant queries, ``/api/v1/query``).

Synchronous on purpose (stdlib ``urllib``): the operator runs it in a thread, with a timeout on
every request. Every failure is a :class:`MetricsUnavailable` whose reason says what happened, so
the control loop can keep its last allocation and report why.
"""

from __future__ import annotations

import http.client
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from hadis.observe.load import LoadObservation, MetricsUnavailable, estimate_demand
from hadis.observe.promql import DEFAULT_MATCHERS, LabelMatchers, load_queries

__all__ = [
    "LabelMatchers",
    "LoadObservation",
    "MetricsUnavailable",
    "Sample",
    "estimate_demand",
    "instant_query",
    "query_load",
]


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector."""

    labels: dict[str, str]
    value: float
    at: float


def _endpoint(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MetricsUnavailable(f"invalid prometheus URL {url!r}: expected http(s)://host[:port][/prefix]")
    return url.rstrip("/") + "/api/v1/query"


def _error_detail(body: bytes) -> str:
    """Prometheus' own error message from an error body, or the start of the body."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("error"):
        return f"{doc.get('errorType', 'error')}: {doc['error']}"
    text = body[:300].decode("utf-8", "replace").strip()
    return text or "(empty body)"


def _post(url: str, promql: str, timeout_s: float, at: float | None) -> bytes:
    endpoint = _endpoint(url)
    form = {"query": promql, "timeout": f"{max(round(timeout_s * 1000), 1)}ms"}  # PromQL duration
    if at is not None:
        form["time"] = f"{at:.3f}"
    req = urllib.request.Request(
        endpoint,
        data=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            body: bytes = resp.read()
            return body
    except urllib.error.HTTPError as e:
        detail = _error_detail(e.read())
        if e.code in (400, 422):  # bad_data / execution errors: the query is what is wrong
            raise MetricsUnavailable(f"prometheus at {url} rejected {promql}: {detail}") from None
        raise MetricsUnavailable(f"HTTP {e.code} from {endpoint}: {detail}") from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            raise MetricsUnavailable(f"prometheus at {url} did not answer within {timeout_s:g} s") from None
        raise MetricsUnavailable(f"prometheus unreachable at {url}: {e.reason}") from None
    except TimeoutError:
        raise MetricsUnavailable(f"prometheus at {url} did not answer within {timeout_s:g} s") from None
    except (OSError, http.client.HTTPException) as e:  # reset connections, bad status lines
        raise MetricsUnavailable(f"prometheus unreachable at {url}: {e!r}") from None


def _parse_vector(url: str, promql: str, body: bytes) -> list[Sample]:
    try:
        doc: Any = json.loads(body)
    except ValueError:
        start = body[:120].decode("utf-8", "replace")
        raise MetricsUnavailable(
            f"prometheus at {url} answered {promql} with something that is not JSON: {start!r}"
        ) from None
    if not isinstance(doc, dict) or doc.get("status") != "success":
        detail = _error_detail(body) if isinstance(doc, dict) else repr(doc)[:200]
        raise MetricsUnavailable(f"prometheus at {url} failed {promql}: {detail}")
    data = doc.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        kind = data.get("resultType") if isinstance(data, dict) else None
        raise MetricsUnavailable(f"prometheus at {url} answered {promql} with a {kind!r}, not a vector")
    samples: list[Sample] = []
    try:
        for item in data.get("result") or []:
            ts, value = item["value"]
            labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
            samples.append(Sample(labels, float(value), float(ts)))
    except (KeyError, TypeError, ValueError) as e:
        bad = f"prometheus at {url} answered {promql} with a malformed vector: {e!r}"
        raise MetricsUnavailable(bad) from None
    return samples


def instant_query(url: str, promql: str, *, timeout_s: float = 5.0, at: float | None = None) -> list[Sample]:
    """Evaluate ``promql`` at ``at`` (default: now, by Prometheus' clock); a vector's samples."""
    return _parse_vector(url, promql, _post(url, promql, timeout_s, at))


def _by_variant(samples: list[Sample]) -> dict[str, float]:
    return {s.labels["variant"]: s.value for s in samples if "variant" in s.labels and math.isfinite(s.value)}


def query_load(
    url: str,
    *,
    namespace: str,
    service: str,
    rate_window: str = "1m",
    timeout_s: float = 5.0,
    matchers: LabelMatchers = DEFAULT_MATCHERS,
    at: float | None = None,
) -> LoadObservation:
    """The load of one HadisService: arrival rate, per-variant rates and queues (see ``promql``).

    Raises :class:`MetricsUnavailable` when Prometheus cannot be asked or holds no arrival rate for
    the service yet. Missing per-variant series are not an error: those dicts are then empty
    (workers not scraped yet, or every variant at zero replicas).
    """
    try:
        q = load_queries(namespace, service, rate_window=rate_window, matchers=matchers)
    except ValueError as e:
        raise MetricsUnavailable(str(e)) from None
    when = time.time() if at is None else at
    arrivals = instant_query(url, q.arrival_rate, timeout_s=timeout_s, at=when)
    if not arrivals:
        present = instant_query(url, q.arrivals_present, timeout_s=timeout_s, at=when)
        why = (
            f"fewer than two samples in the last {q.window}"
            if present
            else "no series has these labels: is the gateway scraped, with these labels?"
        )
        raise MetricsUnavailable(f"no samples for {q.arrivals_series} yet ({why})")
    qps = arrivals[0].value
    if not math.isfinite(qps) or qps < 0:
        raise MetricsUnavailable(f"{q.arrival_rate} is {qps}, not a rate")
    variant_qps = _by_variant(instant_query(url, q.variant_rates, timeout_s=timeout_s, at=when))
    queues = _by_variant(instant_query(url, q.queue_lengths, timeout_s=timeout_s, at=when))
    return LoadObservation(arrival_qps=qps, variant_qps=variant_qps, queue_lengths=queues, at=arrivals[0].at)
