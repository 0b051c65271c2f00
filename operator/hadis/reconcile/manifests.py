"""The Kubernetes objects of a HadisService for one allocation (pure: plain dicts, no I/O).

:func:`build_objects` returns, in creation order:

1. a ConfigMap ``<svc>-cascade`` holding the cascade configuration (``cascade.json``) that the
   gateway and every worker watch (``HADIS_CONFIG_PATH``); the volume mounts the whole ConfigMap
   (no ``subPath``), so the kubelet swaps in a new version and a re-allocation needs no restart;
2. per spec variant, a headless Service ``<svc>-<variant>-workers`` over all its worker pods;
   its DNS name is the variant's endpoint in the cascade configuration;
3. per (variant, pool) the variant can run on (the profile has latencies for the pool's GPU
   type), a worker Deployment ``<svc>-<variant>-<pool>`` whose replicas are the GPUs the
   allocation gives the variant on that pool: 0 when it gives none (or there is no allocation),
   so the object stays and only its replica count changes when the variant comes back. One
   Deployment per pool, because node selector, tolerations and GPU resource are per pool;
4. the gateway Service and Deployment ``<svc>-gateway``.

Every object carries the namespace of the HadisService, an owner reference to it (deleting it
garbage-collects them all) and the ``app.kubernetes.io`` labels. Pods run as non-root with a
read-only root filesystem (an emptyDir on /tmp), no privilege escalation, no capabilities and the
runtime's default seccomp profile. With ``spec.gateway.apiKeySecret`` the gateway pods mount that
Secret key read-only (``HADIS_API_KEYS_FILE``); the operator itself never reads the Secret.
The pod templates never depend on the allocation, so a re-allocation changes only replica counts
and the ConfigMap. The same input always gives equal output.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from hadis.api.allocation import Allocation, GpuPool
from hadis.api.profile import Profile
from hadis.api.service import API_GROUP, API_VERSION, KIND, HadisService, VariantSpec
from hadis.reconcile.cascade_config import build_cascade_config
from hadis.reconcile.pods import (
    API_KEYS_DIR,
    API_KEYS_FILE,
    API_KEYS_MODE,
    CONFIG_DIR,
    CONFIG_KEY,
    CONFIG_PATH,
    GATEWAY_GRACE_S,
    GATEWAY_PRESTOP_S,
    MODEL_DIR,
    PROFILE_DIR,
    WORKER_DRAIN_S,
    WORKER_PORT,
    container,
    http_probe,
    pod_spec,
    pre_stop_sleep,
    worker_env,
    worker_resources,
)
from hadis.reconcile.usability import check_usable

Obj = dict[str, Any]

LABEL_VARIANT = "hadis.io/variant"
LABEL_POOL = "hadis.io/pool"
MANAGED_BY = "hadis"


class UnusableSpecError(ValueError):
    """The spec cannot be deployed with the profile; ``problems`` name the fields (see usability)."""

    def __init__(self, problems: Sequence[object]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


# --- names and labels ---------------------------------------------------------------------------


def _dns_label(*parts: str) -> str:
    """``parts`` joined by ``-`` as a DNS-1035 label (what Service names must be): a leading digit
    gets a ``hds-`` prefix, and a name over 63 characters is cut and ends in a hash of the whole."""
    name = "-".join(parts)
    if not name[:1].isalpha():
        name = f"hds-{name}"
    if len(name) > 63:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[:54].rstrip('-')}-{digest}"
    return name


def gateway_name(svc: HadisService) -> str:
    """Name of the gateway Deployment and Service."""
    return _dns_label(svc.metadata.name, "gateway")


def worker_name(svc: HadisService, variant: str, pool: str) -> str:
    """Name of the worker Deployment of ``variant`` on GPU pool ``pool``."""
    return _dns_label(svc.metadata.name, variant, pool)


def worker_service_name(svc: HadisService, variant: str) -> str:
    """Name of the headless Service over all worker pods of ``variant``."""
    return _dns_label(svc.metadata.name, variant, "workers")


def config_map_name(svc: HadisService) -> str:
    """Name of the ConfigMap with the cascade configuration."""
    return _dns_label(svc.metadata.name, "cascade")


def worker_endpoint(svc: HadisService, variant: str) -> str:
    """The variant's endpoint URL in the cascade configuration: its headless Service's DNS name."""
    return f"http://{worker_service_name(svc, variant)}.{_namespace(svc)}.svc:{WORKER_PORT}"


def _namespace(svc: HadisService) -> str:
    return svc.metadata.namespace or "default"


def _labels(svc: HadisService, component: str, **extra: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "hadis",
        "app.kubernetes.io/instance": svc.metadata.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        **extra,
    }


def _selector(svc: HadisService, component: str, **extra: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/instance": svc.metadata.name,
        "app.kubernetes.io/component": component,
        **extra,
    }


def _meta(svc: HadisService, name: str, labels: dict[str, str], uid: str) -> Obj:
    return {
        "name": name,
        "namespace": _namespace(svc),
        "labels": labels,
        "ownerReferences": [
            {
                "apiVersion": f"{API_GROUP}/{API_VERSION}",
                "kind": KIND,
                "name": svc.metadata.name,
                "uid": uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }


# --- pods ---------------------------------------------------------------------------------------


def _scrape_annotations(port: int) -> dict[str, str]:
    """The ``prometheus.io/*`` pod annotations the common Kubernetes pod scrape job keys on: the
    control loop's queries (hadis.observe.promql) and the dashboard read these pods' metrics."""
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": "/metrics"}


def _common_volumes(svc: HadisService) -> tuple[list[Obj], list[Obj]]:
    """The /tmp emptyDir and the cascade ConfigMap: (volumes, mounts)."""
    volumes: list[Obj] = [
        {"name": "tmp", "emptyDir": {}},
        {"name": "cascade", "configMap": {"name": config_map_name(svc)}},
    ]
    mounts: list[Obj] = [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "cascade", "mountPath": CONFIG_DIR, "readOnly": True},
    ]
    return volumes, mounts


def _worker_deployment(
    svc: HadisService, profile: Profile, vspec: VariantSpec, pool: GpuPool, replicas: int, uid: str
) -> Obj:
    spec = svc.spec
    extra = {LABEL_VARIANT: vspec.name, LABEL_POOL: pool.name}
    labels = _labels(svc, "worker", **extra)
    volumes, mounts = _common_volumes(svc)
    if spec.model_volume is not None:
        volumes.append({"name": "models", **spec.model_volume})
        mounts.append({"name": "models", "mountPath": MODEL_DIR, "readOnly": True})
    if spec.profile.config_map is not None:
        volumes.append({"name": "profile", "configMap": {"name": spec.profile.config_map.name}})
        mounts.append({"name": "profile", "mountPath": PROFILE_DIR, "readOnly": True})
    env = worker_env(svc, profile, vspec, pool)
    main = container("worker", spec.images.worker, spec.images.pull_policy, "hadis_worker", env, WORKER_PORT)
    main |= {
        "volumeMounts": mounts,
        "resources": worker_resources(vspec.engine or spec.engine, pool),
        "startupProbe": http_probe("/healthz", period=5, failures=120, timeout=5),
        "livenessProbe": http_probe("/healthz", period=10, failures=6, timeout=5),
        "readinessProbe": http_probe("/readyz", period=5, failures=2, timeout=2),
    }
    pod = pod_spec([main], volumes, grace_s=WORKER_DRAIN_S + 15)
    if pool.node_selector:
        pod["nodeSelector"] = dict(sorted(pool.node_selector.items()))
    if pool.tolerations:
        pod["tolerations"] = [t.model_dump(mode="json", exclude_none=True) for t in pool.tolerations]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(svc, worker_name(svc, vspec.name, pool.name), labels, uid),
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": _selector(svc, "worker", **extra)},
            # GPUs are the budget: replace a pod before starting its successor, never surge
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": labels, "annotations": _scrape_annotations(WORKER_PORT)},
                "spec": pod,
            },
        },
    }


def _worker_service(svc: HadisService, variant: str, uid: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(
            svc, worker_service_name(svc, variant), _labels(svc, "worker", **{LABEL_VARIANT: variant}), uid
        ),
        "spec": {
            "clusterIP": "None",
            "selector": _selector(svc, "worker", **{LABEL_VARIANT: variant}),
            "ports": [{"name": "http", "port": WORKER_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def _gateway_objects(svc: HadisService, uid: str) -> list[Obj]:
    spec = svc.spec
    gw = spec.gateway
    labels = _labels(svc, "gateway")
    volumes, mounts = _common_volumes(svc)
    env = {
        "HADIS_CONFIG_PATH": CONFIG_PATH,
        "HADIS_GATEWAY_HOST": "0.0.0.0",
        "HADIS_GATEWAY_PORT": str(gw.port),
        "HADIS_QUEUE_CAPACITY": str(gw.queue_capacity),
        "HADIS_THRESHOLD_WINDOW": str(gw.score_window),
    }
    if gw.api_key_secret is not None:
        # the kubelet mounts the Secret (the operator never reads it); the gateway reads the file
        ref = gw.api_key_secret
        volumes.append(
            {
                "name": "api-keys",
                "secret": {
                    "secretName": ref.name,
                    "items": [{"key": ref.key, "path": API_KEYS_FILE.rsplit("/", 1)[1]}],
                    "defaultMode": API_KEYS_MODE,
                },
            }
        )
        mounts.append({"name": "api-keys", "mountPath": API_KEYS_DIR, "readOnly": True})
        env["HADIS_API_KEYS_FILE"] = API_KEYS_FILE
    main = container("gateway", spec.images.gateway, spec.images.pull_policy, "hadis_gateway", env, gw.port)
    main |= {
        "volumeMounts": mounts,
        "livenessProbe": http_probe("/healthz", period=10, failures=3, timeout=5),
        "readinessProbe": http_probe("/readyz", period=5, failures=2, timeout=2),
        "lifecycle": pre_stop_sleep(GATEWAY_PRESTOP_S),
    }
    name = gateway_name(svc)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(svc, name, labels, uid),
        "spec": {
            "replicas": gw.replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": _selector(svc, "gateway")},
            "template": {
                "metadata": {"labels": labels, "annotations": _scrape_annotations(gw.port)},
                "spec": pod_spec([main], volumes, grace_s=GATEWAY_GRACE_S),
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(svc, name, labels, uid),
        "spec": {
            "type": gw.service_type,
            "selector": _selector(svc, "gateway"),
            "ports": [{"name": "http", "port": gw.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    return [service, deployment]


# --- the cascade configuration ------------------------------------------------------------------


def _config_map(
    svc: HadisService,
    allocation: Allocation | None,
    profile: Profile,
    uid: str,
    generation: int,
    endpoints: Mapping[str, Sequence[str]] | None,
) -> Obj:
    data: dict[str, str] = {}
    if allocation is not None:
        spec_names = {v.name for v in svc.spec.variants}
        urls: dict[str, list[str]] = {
            v: [worker_endpoint(svc, v)] for v in allocation.active_variants if v in spec_names
        }
        for v, given in (endpoints or {}).items():
            urls[v] = list(given)
        cfg = build_cascade_config(
            allocation,
            profile,
            urls,
            slo_s=svc.spec.slo_seconds,
            admission_factor=svc.spec.admission_factor,
            time_scale=svc.spec.profile.time_scale,
            generation=generation,
        )
        data[CONFIG_KEY] = json.dumps(cfg.to_wire(), indent=1, sort_keys=True) + "\n"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(svc, config_map_name(svc), _labels(svc, "config"), uid),
        "data": data,
    }


def build_objects(
    svc: HadisService,
    allocation: Allocation | None,
    profile: Profile,
    *,
    uid: str,
    generation: int = 0,
    endpoints: Mapping[str, Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """Every object the service needs for ``allocation``, as camelCase dicts ready for the API.

    ``uid`` is the HadisService's metadata.uid (for the owner references). ``generation`` is
    written into the cascade configuration: pass a number that increases when the configuration
    changes and stays the same otherwise (re-applying an unchanged decision must not rewrite the
    ConfigMap). ``endpoints`` overrides a variant's endpoint URLs (default: its headless Service's
    DNS name, for variants the allocation gives replicas). Without an allocation the ConfigMap has
    no key (the gateway keeps what it has, or waits) and every worker Deployment has 0 replicas.

    Raises :class:`UnusableSpecError` (listing every problem of
    :func:`hadis.reconcile.usability.check_usable`) instead of building a partial deployment.
    """
    problems = check_usable(svc.spec, profile)
    if problems:
        raise UnusableSpecError(problems)
    spec = svc.spec
    wanted: dict[tuple[str, str], int] = {}
    if allocation is not None:
        for a in allocation.variants:
            wanted[(a.variant, a.pool)] = wanted.get((a.variant, a.pool), 0) + a.replicas
    objects: list[Obj] = [_config_map(svc, allocation, profile, uid, generation, endpoints)]
    objects += [_worker_service(svc, v.name, uid) for v in spec.variants]
    for v in spec.variants:
        pvar = profile.variant(v.name)
        for pool in spec.gpu_pools:
            if pvar.has_gpu(pool.gpu_type):
                replicas = wanted.get((v.name, pool.name), 0)
                objects.append(_worker_deployment(svc, profile, v, pool, replicas, uid))
    objects += _gateway_objects(svc, uid)
    return objects
