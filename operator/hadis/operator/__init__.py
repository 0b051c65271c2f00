"""The HADIS operator: ``kopf run -m hadis.operator [--namespace NS]`` (or ``python -m hadis.operator``).

Thin kopf wiring around :class:`hadis.operator.reconciler.Reconciler`. A HadisService gets a cycle
(observe → decide → build → apply → status) when it is created, resumed after an operator restart,
or its spec changes, and every ``spec.allocation.intervalSeconds`` after that: a short kopf timer
(``HADIS_OPERATOR_TICK_SECONDS``, default 1 s) checks whether the interval has elapsed, since kopf
timers take a fixed interval and the spec's can change.

Environment: ``HADIS_OPERATOR_METRICS_PORT`` (default 8080; 0: no metrics/health server),
``HADIS_OPERATOR_TICK_SECONDS``, ``HADIS_OPERATOR_CLUSTER_SCANNING`` (``false`` for an operator
confined to one namespace: no cluster-wide namespace/CRD scans, which its Role forbids).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any, cast

import kopf
from kubernetes import client, config

from hadis.api.service import API_GROUP, API_VERSION
from hadis.operator import metrics
from hadis.operator.reconciler import Reconciler

PLURAL = "hadisservices"
TICK_S = float(os.environ.get("HADIS_OPERATOR_TICK_SECONDS", "1"))
ALIVE_EVERY_S = 5.0
FINALIZER = "hadis.io/operator"  # kopf needs one for timers: it stops them before the object goes

log = logging.getLogger("hadis.operator")


def _api_client() -> client.ApiClient:
    """In a pod: the service account; elsewhere: $KUBECONFIG or ~/.kube/config."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        return client.ApiClient()
    except config.ConfigException:
        api: client.ApiClient = config.new_client_from_config()  # type: ignore[no-untyped-call]
        return api


class _QuietTicks(logging.Filter):
    """kopf logs each successful timer run at INFO: once a second per service is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timer 'tick' succeeded")


def _reconciler(memo: Any) -> Reconciler:
    return cast(Reconciler, memo["reconciler"])


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    logging.getLogger("kopf.objects").addFilter(_QuietTicks())
    settings.peering.standalone = True  # one operator per scope; no KopfPeering objects needed
    # a namespaced operator (the chart's Role) may not list namespaces or CRDs cluster-wide: without
    # this kopf retries those scans on 403 for about a minute before it serves its namespace
    settings.scanning.disabled = os.environ.get("HADIS_OPERATOR_CLUSTER_SCANNING", "true").lower() == "false"
    settings.posting.level = logging.WARNING  # kopf's own Events: failures only; ours say what changed
    settings.posting.reporting_component = "hadis-operator"
    # kopf's bookkeeping in hadis.io annotations, never in status (status is the CRD's schema)
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    settings.watching.connect_timeout = 30
    settings.watching.server_timeout = 300  # re-list periodically rather than trust one watch forever
    settings.watching.client_timeout = 330
    memo["reconciler"] = Reconciler(await asyncio.to_thread(_api_client))
    port = int(os.environ.get("HADIS_OPERATOR_METRICS_PORT", "8080"))
    if port:
        metrics.start_metrics_server(port)
    memo["alive"] = asyncio.create_task(_heartbeat())


async def _heartbeat() -> None:
    """/healthz stays good while the event loop runs (a blocked loop stops this task too)."""
    while True:
        metrics.mark_alive()
        await asyncio.sleep(ALIVE_EVERY_S)


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
    task = memo.get("alive")
    if isinstance(task, asyncio.Task):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    rec = memo.get("reconciler")
    if isinstance(rec, Reconciler):
        await asyncio.to_thread(rec.api.close)


@kopf.on.resume(API_GROUP, API_VERSION, PLURAL)
@kopf.on.create(API_GROUP, API_VERSION, PLURAL)
@kopf.on.update(API_GROUP, API_VERSION, PLURAL, field="spec")
async def reconcile(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Spec seen for the first time or changed: a cycle now (the generation changed)."""
    await _reconciler(memo).run(body)


@kopf.timer(API_GROUP, API_VERSION, PLURAL, interval=TICK_S)
async def tick(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A cycle when the allocation interval has elapsed since the last one."""
    await _reconciler(memo).run(body)


@kopf.on.delete(API_GROUP, API_VERSION, PLURAL, optional=True)
async def forget(uid: str, name: str, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    """The children go by owner-reference garbage collection; only the memory is ours to drop."""
    _reconciler(memo).forget(uid, name, namespace or "")
