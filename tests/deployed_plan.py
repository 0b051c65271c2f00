"""What the operator has deployed for a HadisService, read back from the API server."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client


def deployed_plan(api: client.ApiClient, namespace: str, name: str) -> tuple[Any, ...]:
    """Worker replicas by Deployment, and the cascade ConfigMap's row and split (JSON text)."""
    selector = f"app.kubernetes.io/instance={name},app.kubernetes.io/component=worker"
    deps = client.AppsV1Api(api).list_namespaced_deployment(namespace, label_selector=selector).items
    replicas = tuple(sorted((d.metadata.name, d.spec.replicas) for d in deps))
    cm = client.CoreV1Api(api).read_namespaced_config_map(f"{name}-cascade", namespace)
    cfg = json.loads((cm.data or {}).get("cascade.json", "{}"))
    return replicas, json.dumps(cfg.get("row")), json.dumps(cfg.get("split"))
