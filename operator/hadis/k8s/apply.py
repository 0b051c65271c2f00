"""Write the desired objects, the status and Events of a HadisService to the API server (I/O).

:func:`apply_objects` makes the cluster match the dicts of :func:`hadis.reconcile.manifests.build_objects`
and writes only what differs. Each desired object is stored with a hash of itself in the
annotation ``hadis.io/applied-hash``; an object is left alone when the live one carries the same
hash and still has every field we set with the same value (fields the API server adds, such as
defaults, are ignored). Otherwise it is written with server-side apply (field manager
``hadis-operator``, forced): a field we stop setting is removed, fields others own are kept, and
the live object's resourceVersion is sent as a precondition, so a concurrent change gives a 409
that is retried on the fresh object.

Synchronous (the kubernetes client is): the operator calls these functions in a thread. Every
failure other than a retried conflict raises :class:`ApplyError`, an ``ApiException`` that also
names the object.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hadis.api.service import API_GROUP, API_VERSION, KIND

Obj = dict[str, Any]

APPLIED_HASH = "hadis.io/applied-hash"
FIELD_MANAGER = "hadis-operator"
MANAGED_SELECTOR = "app.kubernetes.io/managed-by=hadis"
CONFLICT_RETRIES = 5
EVENT_TYPES = ("Normal", "Warning")

#: the kinds HADIS writes: (apiVersion, kind) -> resource (plural)
RESOURCES: Mapping[tuple[str, str], str] = {
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Service"): "services",
    ("apps/v1", "Deployment"): "deployments",
}


class ApplyError(ApiException):
    """The API server refused a request (or kept answering 409); ``key`` is the object's Kind/name."""

    def __init__(
        self, key: str, status: int | None, reason: str | None, body: str | None, message: str
    ) -> None:
        super().__init__(status=status, reason=reason, body=body)
        self.key = key
        self.message = message

    def __str__(self) -> str:
        return f"{self.key}: HTTP {self.status} {self.reason}: {self.message}"


@dataclass(frozen=True)
class ApplyResult:
    """What :func:`apply_objects` did, as ``Kind/name`` keys in the order of the objects given."""

    created: list[str] = field(default_factory=list)
    patched: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: int = 0  # 409s that were retried

    @property
    def changed(self) -> bool:
        return bool(self.created or self.patched)


def object_key(obj: Mapping[str, Any]) -> str:
    """``Kind/name`` of an object dict (the form of :class:`ApplyResult` and ``delete_stale``'s keep)."""
    return f"{obj['kind']}/{obj['metadata']['name']}"


def desired_hash(obj: Mapping[str, Any]) -> str:
    """A hash of the object as desired (without its own hash annotation); equal dicts, equal hash."""
    clean = copy.deepcopy(dict(obj))
    annotations = clean.get("metadata", {}).get("annotations", {})
    annotations.pop(APPLIED_HASH, None)
    text = json.dumps(clean, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# --- requests ---------------------------------------------------------------------------------


def _request(
    api: client.ApiClient,
    method: str,
    path: str,
    *,
    body: Any = None,
    query: Sequence[tuple[str, str]] = (),
    content_type: str | None = None,
) -> Obj:
    """One request; the parsed JSON answer, or ``ApiException`` for a non-2xx status."""
    headers = {"Accept": "application/json"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    m, url, h, b, post = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=list(query),
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    resp = api.call_api(m, url, h, b, post)
    raw: bytes = resp.response.data or b""
    text = raw.decode("utf-8", errors="replace")
    if not 200 <= resp.status <= 299:
        raise ApiException(status=resp.status, reason=resp.reason, body=text)
    doc: Obj = json.loads(text) if text else {}
    return doc


def _collection(api_version: str, kind: str, namespace: str) -> str:
    try:
        plural = RESOURCES[(api_version, kind)]
    except KeyError:
        raise ApplyError(
            f"{kind}/?", None, "Unsupported", None, f"HADIS does not write {api_version} {kind}"
        ) from None
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}"


def _message(e: ApiException) -> str:
    try:
        return str(json.loads(e.body or "{}").get("message", "")) or str(e.body or "")
    except (ValueError, AttributeError):
        return str(e.body or "")


def _fail(key: str, e: ApiException) -> ApplyError:
    return ApplyError(key, e.status, e.reason, e.body, _message(e)[:1000])


# --- comparing --------------------------------------------------------------------------------


def _is_zero(value: Any) -> bool:
    """A value the API server may omit when it is empty/false/zero (``omitempty``)."""
    if isinstance(value, dict):
        return all(_is_zero(v) for v in value.values())
    if isinstance(value, list):
        return not value
    return value in (None, False, 0, "")


def covers(live: Any, desired: Any) -> bool:
    """Whether ``live`` has every field of ``desired`` with the same value (extra fields are fine;
    lists must have the same length; an omitted field equals an empty/zero one)."""
    if live is None:
        return _is_zero(desired)
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(covers(live.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(live) == len(desired) and all(map(covers, live, desired))
    if isinstance(desired, bool) or isinstance(live, bool):
        return live is desired
    return bool(live == desired)


# --- apply ------------------------------------------------------------------------------------


def _apply_one(api: client.ApiClient, obj: Mapping[str, Any]) -> tuple[str, int]:
    """Create or update one object; ("created" | "patched" | "unchanged", conflicts retried)."""
    key = object_key(obj)
    meta = obj["metadata"]
    base = f"{_collection(obj['apiVersion'], obj['kind'], meta['namespace'])}/{meta['name']}"
    desired = copy.deepcopy(dict(obj))
    annotations = desired["metadata"].setdefault("annotations", {})
    annotations[APPLIED_HASH] = desired_hash(obj)
    query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
    conflicts = 0
    for _ in range(CONFLICT_RETRIES + 1):
        try:
            live: Obj | None = _request(api, "GET", base)
        except ApiException as e:
            if e.status != 404:
                raise _fail(key, e) from None
            live = None
        body = copy.deepcopy(desired)
        if live is not None:
            if (live.get("metadata", {}).get("annotations") or {}).get(APPLIED_HASH) == annotations[
                APPLIED_HASH
            ] and covers(live, desired):
                return "unchanged", conflicts
            body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        try:
            _request(api, "PATCH", base, body=body, query=query, content_type="application/apply-patch+yaml")
        except ApiException as e:
            if e.status == 409:
                conflicts += 1
                continue
            raise _fail(key, e) from None
        return ("created" if live is None else "patched"), conflicts
    raise ApplyError(key, 409, "Conflict", None, f"still conflicting after {CONFLICT_RETRIES} retries")


def apply_objects(api: client.ApiClient, objects: Sequence[Mapping[str, Any]]) -> ApplyResult:
    """Make each object in ``objects`` exist as desired, in order, writing only those that differ.

    Re-applying the same objects makes no write (resourceVersions stay). A 409 (the object changed
    between our read and our write, or was created meanwhile) is retried on the fresh object up to
    ``CONFLICT_RETRIES`` times. Any other refusal raises :class:`ApplyError`; objects before it in
    the list have been applied.
    """
    created: list[str] = []
    patched: list[str] = []
    unchanged: list[str] = []
    conflicts = 0
    for obj in objects:
        outcome, retried = _apply_one(api, obj)
        conflicts += retried
        {"created": created, "patched": patched, "unchanged": unchanged}[outcome].append(object_key(obj))
    return ApplyResult(created=created, patched=patched, unchanged=unchanged, conflicts=conflicts)


def delete_stale(
    api: client.ApiClient,
    namespace: str,
    owner_uid: str,
    keep: Iterable[str | Mapping[str, Any]],
) -> list[str]:
    """Delete the objects HADIS wrote for the owner ``owner_uid`` that are not in ``keep``.

    ``keep`` holds ``Kind/name`` keys or the desired object dicts themselves. Only objects of the
    kinds HADIS writes, labelled ``app.kubernetes.io/managed-by=hadis`` and controlled by that owner,
    are candidates; the delete is preconditioned on the object's uid and propagates in the
    background (a Deployment's ReplicaSets and Pods follow). Returns the deleted keys.
    """
    wanted = {k if isinstance(k, str) else object_key(k) for k in keep}
    deleted: list[str] = []
    for (api_version, kind), _ in sorted(RESOURCES.items()):
        path = _collection(api_version, kind, namespace)
        try:
            items = _request(api, "GET", path, query=[("labelSelector", MANAGED_SELECTOR)]).get("items") or []
        except ApiException as e:
            raise _fail(f"{kind}/*", e) from None
        for item in items:
            meta = item.get("metadata", {})
            key = f"{kind}/{meta.get('name')}"
            owned = any(
                r.get("uid") == owner_uid and r.get("controller") for r in meta.get("ownerReferences") or []
            )
            if not owned or key in wanted:
                continue
            options = {"propagationPolicy": "Background", "preconditions": {"uid": meta.get("uid")}}
            try:
                _request(api, "DELETE", f"{path}/{meta['name']}", body=options)
            except ApiException as e:
                if e.status in (404, 409):  # gone already, or replaced by another object
                    continue
                raise _fail(key, e) from None
            deleted.append(key)
    return deleted


def patch_status(api: client.ApiClient, namespace: str, name: str, status: Mapping[str, Any]) -> Obj:
    """Merge ``status`` (camelCase) into the HadisService's status subresource; the updated object.

    A JSON merge patch: fields not in ``status`` are kept, lists (conditions) are replaced whole.
    A missing HadisService raises :class:`ApplyError` with status 404.
    """
    path = f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{namespace}/hadisservices/{name}/status"
    try:
        return _request(
            api, "PATCH", path, body={"status": dict(status)}, content_type="application/merge-patch+json"
        )
    except ApiException as e:
        raise _fail(f"{KIND}/{name}", e) from None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def emit_event(
    api: client.ApiClient,
    svc_ref: Mapping[str, Any],
    reason: str,
    message: str,
    type_: str = "Normal",
) -> str:
    """Create a core/v1 Event about the HadisService; returns the Event's name.

    ``svc_ref`` is the HadisService's body (with ``metadata``) or a reference with ``name``,
    ``namespace`` and ``uid``. ``type_`` is ``Normal`` or ``Warning``; the message is cut to the
    1,024 characters the API server keeps.
    """
    if type_ not in EVENT_TYPES:
        raise ValueError(f"type_: must be one of {EVENT_TYPES}, got {type_!r}")
    meta = svc_ref.get("metadata", svc_ref)
    name, namespace = str(meta["name"]), str(meta.get("namespace") or "default")
    now = _now()
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{name}.", "namespace": namespace},
        "involvedObject": {
            "apiVersion": str(svc_ref.get("apiVersion", f"{API_GROUP}/{API_VERSION}")),
            "kind": str(svc_ref.get("kind", KIND)),
            "name": name,
            "namespace": namespace,
            "uid": str(meta.get("uid", "")),
        },
        "reason": reason[:128],
        "message": message[:1024],
        "type": type_,
        "source": {"component": FIELD_MANAGER},
        "reportingComponent": FIELD_MANAGER,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        created = _request(api, "POST", f"/api/v1/namespaces/{namespace}/events", body=event)
    except ApiException as e:
        raise _fail(f"Event/{name}.*", e) from None
    return str(created["metadata"]["name"])
