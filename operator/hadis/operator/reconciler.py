"""One HadisService's control cycle with its I/O: observe → decide → build → apply → status.

The decisions are in :mod:`hadis.operator.cycle` (pure); this module reads the spec, the profile and
the load, runs the policy in a thread (pulp blocks), applies the objects and writes the status and
Events. Every failure ends as a condition on the object: nothing here raises into kopf.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from hadis.api.allocation import Allocation
from hadis.api.profile import CascadeRow, Profile
from hadis.api.service import HadisService, HadisServiceSpec
from hadis.cascade_watch import parse_cascade_config
from hadis.errors import InputFileError
from hadis.k8s.apply import ApplyError, apply_objects, delete_stale, emit_event, patch_status
from hadis.observe.prometheus import LoadObservation, MetricsUnavailable, query_load
from hadis.operator import cycle, metrics
from hadis.policy.inputs import UnusableSpecError, build_decision_input
from hadis.policy.pareto import table_for
from hadis.policy.registry import get_policy
from hadis.profiles import load_profile, parse_profile
from hadis.reconcile.manifests import build_objects, config_map_name
from hadis.reconcile.pods import CONFIG_KEY
from hadis.reconcile.usability import check_usable

log = logging.getLogger("hadis.operator")

#: how often an invalid spec (no interval to read) is re-checked
INVALID_SPEC_RECHECK_S = 30.0


class ProfileProblem(Exception):
    def __init__(self, problem: cycle.SpecProblem, reason: str = "UnusableSpec") -> None:
        super().__init__(f"{problem.field}: {problem.message}")
        self.problem, self.reason = problem, reason


def decide(
    spec: HadisServiceSpec,
    profile: Profile,
    table: list[CascadeRow],
    demand_qps: float,
    previous: Allocation | None,
    observation: LoadObservation | None,
) -> Allocation:
    """The service's policy on this interval's inputs (pure, but blocking: run it in a thread)."""
    inp = build_decision_input(
        spec,
        profile,
        table,
        demand_qps,
        previous=previous,
        queue_lengths=observation.queue_lengths if observation else None,
        arrival_qps=observation.variant_qps if observation else None,
    )
    return get_policy(spec.policy)(inp)


@dataclass
class Reconciler:
    """Per-operator state: the API client, each service's memory and lock, profile/table caches."""

    api: client.ApiClient
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = lambda: datetime.now(UTC)
    memories: dict[str, cycle.Memory] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    #: the cascade config generation last written per service: the count never goes back, even
    #: when the live ConfigMap was overwritten with something that is not a cascade config
    config_generations: dict[str, int] = field(default_factory=dict)
    _profiles: dict[tuple[Any, ...], Profile] = field(default_factory=dict)
    _tables: dict[tuple[Any, ...], list[CascadeRow]] = field(default_factory=dict)

    def forget(self, uid: str, name: str, namespace: str) -> None:
        self.memories.pop(uid, None)
        self.locks.pop(uid, None)
        self.config_generations.pop(uid, None)
        metrics.forget_service(name, namespace)

    async def run(self, body: Mapping[str, Any]) -> bool:
        """Run a cycle for ``body`` if one is due (first sight, spec change, interval elapsed).
        Returns whether a cycle ran."""
        meta = body.get("metadata") or {}
        uid = str(meta["uid"])
        lock = self.locks.setdefault(uid, asyncio.Lock())
        async with lock:
            try:
                return await self._run(body, uid)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug: log it, keep the operator alive, retry after the interval
                log.exception("cycle of %s/%s failed", meta.get("namespace"), meta.get("name"))
                metrics.record_error(str(meta.get("name")), str(meta.get("namespace")), "Internal")
                before = self.memories.get(uid) or cycle.Memory()
                generation = int(meta.get("generation") or 0)
                self.memories[uid] = replace(before, last_cycle=self.monotonic(), generation=generation)
                return True

    async def _run(self, body: Mapping[str, Any], uid: str) -> bool:
        meta = body["metadata"]
        name, ns = str(meta["name"]), str(meta["namespace"])
        generation = int(meta.get("generation") or 0)
        status = body.get("status") or {}
        parsed = cycle.parse_spec(body.get("spec") or {})
        memory = self.memories.get(uid)
        if memory is None:
            memory = (
                cycle.seed_memory(status, parsed) if isinstance(parsed, HadisServiceSpec) else cycle.Memory()
            )
        interval = (
            parsed.allocation.interval_seconds
            if isinstance(parsed, HadisServiceSpec)
            else INVALID_SPEC_RECHECK_S
        )
        now = self.monotonic()
        if not cycle.is_due(memory, generation, now, interval):
            return False
        common: dict[str, Any] = {"generation": generation, "now": self.wall(), "now_mono": now}
        if not isinstance(parsed, HadisServiceSpec):
            outcome = cycle.conclude(memory, status, problems=parsed, problem_reason="InvalidSpec", **common)
            return await self._finish(body, uid, outcome, None)
        spec = parsed
        try:
            profile_key, profile = await self._profile(spec, ns)
        except ProfileProblem as e:
            outcome = cycle.conclude(memory, status, problems=[e.problem], problem_reason=e.reason, **common)
            return await self._finish(body, uid, outcome, None)
        problems = check_usable(spec, profile)
        if problems:
            outcome = cycle.conclude(
                memory, status, problems=problems, problem_reason="UnusableSpec", **common
            )
            return await self._finish(body, uid, outcome, None)

        observation, metrics_error = await self._observe(spec, ns, name)
        demand = cycle.next_demand(memory, spec, observation.arrival_qps if observation else None)
        keep = metrics_error is not None and memory.allocation is not None and memory.generation == generation
        try:
            if keep and memory.allocation is not None:
                allocation = memory.allocation
            else:
                table = self._table(profile_key, spec, profile)
                allocation = await asyncio.to_thread(
                    decide, spec, profile, table, demand.demand_qps, memory.allocation, observation
                )
        except UnusableSpecError as e:
            field_, _, msg = str(e).partition(": ")
            problem = cycle.SpecProblem(field_, msg or str(e))
            outcome = cycle.conclude(
                memory, status, problems=[problem], problem_reason="UnusableSpec", **common
            )
            return await self._finish(body, uid, outcome, None)
        except Exception as e:  # a solver failure: keep what runs, report it
            log.exception("decision for %s/%s failed", ns, name)
            outcome = cycle.conclude(
                memory, status, demand=demand, error_reason="DecisionFailed", error=repr(e), **common
            )
            return await self._finish(body, uid, outcome, None)

        svc = HadisService.model_validate(
            {
                "metadata": {"name": name, "namespace": ns, "labels": dict(meta.get("labels") or {})},
                "spec": body["spec"],
            }
        )
        try:
            objects, repaired = await self._objects(svc, allocation, profile, uid)
            result = await asyncio.to_thread(apply_objects, self.api, objects)
            deleted = await asyncio.to_thread(delete_stale, self.api, ns, uid, objects)
            if result.created or result.patched or deleted or result.conflicts:
                log.info(
                    "%s/%s: created %s, patched %s, deleted %s; %d conflict(s) retried",
                    ns,
                    name,
                    result.created,
                    result.patched,
                    deleted,
                    result.conflicts,
                )
        except (ApiException, TransportError, OSError) as e:
            outcome = cycle.conclude(
                memory,
                status,
                demand=demand,
                allocation=allocation,
                applied=False,
                metrics_error=metrics_error,
                error_reason="ApplyFailed",
                error=_describe(e),
                **common,
            )
            return await self._finish(body, uid, outcome, None)
        self.config_generations[uid] = _config_generation(_config_data(objects))
        outcome = cycle.conclude(
            memory,
            status,
            demand=demand,
            allocation=allocation,
            applied=True,
            metrics_error=metrics_error,
            **common,
        )
        if repaired is not None:
            log.warning("%s/%s: %s", ns, name, repaired)
            event = cycle.Event("Warning", "CascadeConfigRepaired", repaired)
            outcome = replace(outcome, events=[*outcome.events, event])
        return await self._finish(body, uid, outcome, allocation)

    async def _objects(
        self, svc: HadisService, allocation: Allocation, profile: Profile, uid: str
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The desired objects, and what was wrong with the live cascade ConfigMap when it held
        something other than a cascade config (it is rewritten: a repair to report).

        The config's generation is the live ConfigMap's, + 1 when its content changes (so the
        count survives operator restarts and an unchanged decision rewrites nothing); never below
        what this process wrote last, so a ConfigMap overwritten with garbage (generation unreadable)
        does not send the pods' watchers back to generation 1."""
        ns = svc.metadata.namespace or "default"
        name = config_map_name(svc)
        try:
            live = await asyncio.to_thread(client.CoreV1Api(self.api).read_namespaced_config_map, name, ns)
            live_data: dict[str, str] | None = dict(live.data or {})
        except ApiException as e:
            if e.status != 404:
                raise
            live_data = None
        repaired = None
        if live_data is not None:
            try:
                parse_cascade_config(live_data[CONFIG_KEY], f"ConfigMap {name} key {CONFIG_KEY}")
            except KeyError:
                repaired = f"ConfigMap {name} had no key {CONFIG_KEY}; rewritten from the allocation"
            except InputFileError as e:
                repaired = f"{e}; rewritten from the allocation"
        live_gen = max(_config_generation(live_data), self.config_generations.get(uid, 0))
        objects = build_objects(svc, allocation, profile, uid=uid, generation=live_gen)
        if _config_data(objects) != live_data:
            objects = build_objects(svc, allocation, profile, uid=uid, generation=live_gen + 1)
        return objects, repaired

    async def _observe(
        self, spec: HadisServiceSpec, ns: str, name: str
    ) -> tuple[LoadObservation | None, str | None]:
        src = spec.metrics
        try:
            obs = await asyncio.to_thread(
                query_load,
                src.prometheus_url,
                namespace=ns,
                service=name,
                rate_window=src.rate_window,
                timeout_s=src.timeout_seconds,
            )
        except MetricsUnavailable as e:
            return None, str(e)
        metrics.record_observation(name, ns, obs)
        return obs, None

    async def _finish(
        self, body: Mapping[str, Any], uid: str, outcome: cycle.Outcome, allocation: Allocation | None
    ) -> bool:
        meta = body["metadata"]
        name, ns = str(meta["name"]), str(meta["namespace"])
        self.memories[uid] = outcome.memory
        try:
            if outcome.status is not None:
                patch = cycle.merge_patch(body.get("status"), outcome.status)
                await asyncio.to_thread(patch_status, self.api, ns, name, patch)
            ref = _ref(body)
            for ev in outcome.events:
                log.info("%s/%s: %s %s: %s", ns, name, ev.type, ev.reason, ev.message)
                await asyncio.to_thread(emit_event, self.api, ref, ev.reason, ev.message, ev.type)
        except (ApiException, TransportError, OSError) as e:
            if isinstance(e, ApiException) and e.status == 404:  # deleted meanwhile
                return True
            log.warning("writing status/events of %s/%s failed: %s", ns, name, _describe(e))
            # the next tick runs a cycle again, which rewrites the status (still from this memory)
            self.memories[uid] = replace(outcome.memory, last_cycle=None)
        if allocation is not None:
            metrics.record_allocation(name, ns, allocation)
        for ev in outcome.events:
            if ev.type == "Warning":
                metrics.record_error(name, ns, ev.reason)
        return True

    # --- profiles ---------------------------------------------------------------------------------

    async def _profile(self, spec: HadisServiceSpec, ns: str) -> tuple[tuple[Any, ...], Profile]:
        ref = spec.profile
        scale = ref.time_scale
        if ref.config_map is not None:
            cm = ref.config_map
            try:
                obj = await asyncio.to_thread(
                    client.CoreV1Api(self.api).read_namespaced_config_map, cm.name, ns
                )
            except ApiException as e:
                if e.status == 404:
                    msg = f"ConfigMap {cm.name!r} not found in namespace {ns!r}"
                    raise ProfileProblem(cycle.SpecProblem("spec.profile.configMap.name", msg)) from None
                msg = f"reading ConfigMap {cm.name!r}: HTTP {e.status} {e.reason}"
                raise ProfileProblem(
                    cycle.SpecProblem("spec.profile.configMap", msg), "ProfileUnavailable"
                ) from None
            data = obj.data or {}
            if cm.key not in data:
                msg = f"ConfigMap {cm.name!r} has no key {cm.key!r} (keys: {sorted(data)})"
                raise ProfileProblem(cycle.SpecProblem("spec.profile.configMap.key", msg))
            version = obj.metadata.resource_version if obj.metadata else None
            key: tuple[Any, ...] = ("cm", ns, cm.name, cm.key, version, scale)
            if key not in self._profiles:
                try:
                    parsed = parse_profile(data[cm.key], f"ConfigMap {cm.name} key {cm.key}")
                except InputFileError as e:
                    raise ProfileProblem(cycle.SpecProblem("spec.profile.configMap", str(e))) from None
                self._profiles = {k: v for k, v in self._profiles.items() if k[:4] != key[:4]}
                self._profiles[key] = parsed.time_scaled(scale)
            return key, self._profiles[key]
        key = ("builtin", ref.builtin, scale)
        if key not in self._profiles:
            try:
                base = load_profile(ref.builtin or "")
            except InputFileError as e:
                raise ProfileProblem(cycle.SpecProblem("spec.profile.builtin", str(e))) from None
            self._profiles[key] = base.time_scaled(scale)
        return key, self._profiles[key]

    def _table(
        self, profile_key: tuple[Any, ...], spec: HadisServiceSpec, profile: Profile
    ) -> list[CascadeRow]:
        names = tuple(v.name for v in spec.variants)
        key = (*profile_key, names)
        if key not in self._tables:
            self._tables[key] = table_for(profile, variants=list(names))
        return self._tables[key]


def _config_generation(data: Mapping[str, str] | None) -> int:
    try:
        doc = json.loads((data or {})[CONFIG_KEY])
        return max(0, int(doc.get("generation", 0)))
    except (KeyError, ValueError, TypeError, AttributeError, OverflowError):
        return 0


def _describe(e: BaseException) -> str:
    """An API failure in a condition message: the API server's answer, or why there was none."""
    if isinstance(e, ApplyError):  # names the object, and says why (e.g. still conflicting)
        return str(e)
    if isinstance(e, ApiException):
        return f"HTTP {e.status} {e.reason}: {_api_message(e)}"
    return f"the API server did not answer: {type(e).__name__}: {str(e)[:300]}"


def _config_data(objects: list[dict[str, Any]]) -> dict[str, str] | None:
    for obj in objects:
        if obj.get("kind") == "ConfigMap":
            return dict(obj.get("data") or {})
    return None


def _ref(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {
        "apiVersion": body.get("apiVersion", "hadis.io/v1alpha1"),
        "kind": body.get("kind", "HadisService"),
        "name": meta["name"],
        "namespace": meta["namespace"],
        "uid": meta["uid"],
    }


def _api_message(e: ApiException) -> str:
    try:
        return str(json.loads(e.body or "{}").get("message", ""))[:500]
    except (ValueError, AttributeError):
        return str(e.body)[:500]
