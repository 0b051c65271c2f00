"""Issue 7 on the real kube-apiserver (1.20: no CEL) with the real operator (``kopf run``):

- invalid HadisService specs, each either rejected by the API server's schema (422 naming the field)
  or reported by the operator (Degraded condition + Warning Event naming the field, nothing
  deployed); the test prints every case as ``mutation → where → message``;
- a valid diffusers service with its weights on a model volume and the gateway's API keys in a
  Secret: the API server accepts the operator's locked-down pods as built (non-root, read-only root
  filesystem, no capabilities, RuntimeDefault seccomp, the Secret mounted read-only), and neither
  the operator's log nor its Events ever contain the Secret's value.
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.k8s_local import ControlPlane, wait_until
from tests.operator_local import OperatorProcess, free_port, namespace_fixture, operator_fixture

pytestmark = pytest.mark.e2e

NS = "e2e-security"
GROUP, VERSION, PLURAL = "hadis.io", "v1alpha1", "hadisservices"
DELETE = object()  # a mutation value: remove the field

ns = namespace_fixture(NS)
operator = operator_fixture("operator-security", fail_if_died=True)


def base(name: str) -> dict[str, Any]:
    """A valid, deployable service (emulated, two variants on 4 L40S); no Prometheus answers."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HadisService",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "engine": "emulated",
            "variants": [{"name": "sdxl-lightning"}, {"name": "sd35-large"}],
            "sloSeconds": 6,
            "gpuPools": [{"name": "l40s", "gpuType": "L40S", "count": 4}],
            "profile": {"builtin": "hadis-paper-l40s", "timeScale": 0.1},
            "allocation": {"intervalSeconds": 2},
            "metrics": {"prometheusUrl": f"http://127.0.0.1:{free_port()}", "timeoutSeconds": 1},
        },
    }


def mutate(body: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``body`` with each dotted path (list indices as numbers) set, or removed (DELETE)."""
    out = copy.deepcopy(body)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node: Any = out
        for key in parents:
            node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
        if value is DELETE and isinstance(node, list):
            del node[int(last)]
        elif value is DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return out


DIFFUSERS = {"spec.engine": "diffusers", "spec.modelVolume": {"persistentVolumeClaim": {"claimName": "w"}}}

# (case, mutation of base(), where: "apiserver" or "operator", field named, words of the message)
CASES: list[tuple[str, dict[str, Any], str, str, str]] = [
    # -- the CRD's schema (422 from the API server) ------------------------------------------------
    ("zero-slo", {"spec.sloSeconds": 0}, "apiserver", "spec.sloSeconds", "should be greater than 0"),
    ("unknown-policy", {"spec.policy": "greedy"}, "apiserver", "spec.policy", "Unsupported value"),
    (
        "negative-gpu-count",
        {"spec.gpuPools.0.count": -1},
        "apiserver",
        "spec.gpuPools.count",  # 1.20 names list items without their index
        "greater than or equal to 0",
    ),
    ("no-variants", {"spec.variants": []}, "apiserver", "spec.variants", "should have at least 1 items"),
    (
        "duplicate-variant",
        {"spec.variants.1": {"name": "sdxl-lightning"}},
        "apiserver",
        "spec.variants[1]",
        "Duplicate value",
    ),
    ("missing-slo", {"spec.sloSeconds": DELETE}, "apiserver", "spec.sloSeconds", "Required value"),
    (
        "api-key-secret-bad-name",
        {"spec.gateway": {"apiKeySecret": {"name": "Keys_1"}}},
        "apiserver",
        "spec.gateway.apiKeySecret.name",
        "should match",
    ),
    (
        "api-key-secret-without-name",
        {"spec.gateway": {"apiKeySecret": {"key": "keys"}}},
        "apiserver",
        "spec.gateway.apiKeySecret.name",
        "Required value",
    ),
    (
        "api-key-secret-key-with-slash",
        {"spec.gateway": {"apiKeySecret": {"name": "keys", "key": "a/b"}}},
        "apiserver",
        "spec.gateway.apiKeySecret.key",
        "should match",
    ),
    ("gateway-port-range", {"spec.gateway": {"port": 70000}}, "apiserver", "spec.gateway.port", "65535"),
    (
        "prometheus-url-scheme",
        {"spec.metrics.prometheusUrl": "prom:9090"},
        "apiserver",
        "spec.metrics.prometheusUrl",
        "should match",
    ),
    ("unknown-engine", {"spec.engine": "onnx"}, "apiserver", "spec.engine", "Unsupported value"),
    # -- the operator (schema-valid, but not servable) ---------------------------------------------
    (
        "unknown-variant",
        {"spec.variants.1.name": "sd9-mega"},
        "operator",
        "spec.variants[1].name",
        "'sd9-mega' is not a variant of profile 'hadis-paper-l40s'",
    ),
    (
        "unknown-gpu-type",
        {"spec.gpuPools.0.gpuType": "Z80"},
        "operator",
        "spec.gpuPools[0].gpuType",
        "'Z80' has no latencies in profile",
    ),
    (
        "one-gpu-for-a-cascade",
        {"spec.gpuPools.0.count": 1},
        "operator",
        "spec.gpuPools",
        "policy 'hadis' needs at least 2",
    ),
    (
        "one-variant-cascade",
        {"spec.variants": [{"name": "sd35-large"}]},
        "operator",
        "spec.variants",
        "cascades two variants; the spec lists one",
    ),
    (
        "unknown-builtin-profile",
        {"spec.profile.builtin": "no-such-profile"},
        "operator",
        "spec.profile.builtin",
        "no-such-profile",
    ),
    (
        "missing-profile-configmap",
        {"spec.profile": {"configMap": {"name": "nope"}}},
        "operator",
        "spec.profile.configMap.name",
        "ConfigMap 'nope' not found",
    ),
    (
        "fixed-pair-without-pair",
        {"spec.policy": "fixed-pair"},
        "operator",
        "spec",
        "fixedPair: required when policy is fixed-pair",
    ),
    (
        "fixed-pair-same-variant",
        {"spec.policy": "fixed-pair", "spec.fixedPair": {"light": "sd35-large", "heavy": "sd35-large"}},
        "operator",
        "spec.fixedPair.heavy",
        "the same variant as light",
    ),
    (
        "gpu-resource-not-extended",
        {"spec.gpuPools.0.resource": "kubernetes.io/gpu"},
        "operator",
        "spec.gpuPools[0].resource",
        "is not an extended resource name",
    ),
    (
        "toleration-exists-with-value",
        {"spec.gpuPools.0.tolerations": [{"key": "gpu", "operator": "Exists", "value": "yes"}]},
        "operator",
        "spec.gpuPools[0].tolerations[0].value",
        "must be empty when operator is Exists",
    ),
    (
        "api-key-secret-key-dot-dot",
        {"spec.gateway": {"apiKeySecret": {"name": "keys", "key": ".."}}},
        "operator",
        "spec.gateway.apiKeySecret.key",
        "'..' is not a file name",
    ),
    (
        "model-path-dot-dot",
        {**DIFFUSERS, "spec.variants.0.model": "/models/../etc/secrets"},
        "operator",
        "spec.variants[0].model",
        "contains '..': weights must stay inside the model volume (/models)",
    ),
    (
        "model-path-absolute-elsewhere",
        {**DIFFUSERS, "spec.variants.1.model": "/var/lib/weights/sd35"},
        "operator",
        "spec.variants[1].model",
        "is outside the model volume",
    ),
    (
        "unet-checkpoint-without-model-volume",
        {"spec.engine": "diffusers", "spec.variants.0.unetCheckpoint": "unet/lightning.safetensors"},
        "operator",
        "spec.variants[0].unetCheckpoint",
        "spec.modelVolume is not set",
    ),
    (
        "discriminator-in-home",
        {**DIFFUSERS, "spec.discriminator": {"clip": "/models/clip", "head": "~/head.pt"}},
        "operator",
        "spec.discriminator.head",
        "is a home-directory path, outside the model volume",
    ),
]


@pytest.fixture(scope="module")
def crs(control_plane: ControlPlane, ns: str) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(control_plane.api)


def get(crs: client.CustomObjectsApi, name: str) -> dict[str, Any]:
    return cast(dict[str, Any], crs.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name))


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return {}


def warnings(cp: ControlPlane, name: str) -> list[str]:
    events = client.CoreV1Api(cp.api).list_namespaced_event(NS).items
    return [
        e.message or ""
        for e in events
        if e.involved_object.name == name and e.involved_object.kind == "HadisService" and e.type == "Warning"
    ]


def owned(cp: ControlPlane, uid: str) -> list[str]:
    apps, core = client.AppsV1Api(cp.api), client.CoreV1Api(cp.api)
    found = []
    for kind, items in (
        ("Deployment", apps.list_namespaced_deployment(NS).items),
        ("Service", core.list_namespaced_service(NS).items),
        ("ConfigMap", core.list_namespaced_config_map(NS).items),
    ):
        for item in items:
            if any(r.uid == uid for r in item.metadata.owner_references or []):
                found.append(f"{kind}/{item.metadata.name}")
    return found


def test_the_cases_are_distinct_and_enough() -> None:
    names = [c[0] for c in CASES]
    mutations = [json.dumps(c[1], sort_keys=True, default=str) for c in CASES]
    assert len(set(names)) == len(names) and len(set(mutations)) == len(mutations)
    assert len(CASES) >= 20
    assert {c[2] for c in CASES} == {"apiserver", "operator"}
    # the base is valid: what each case changes is what makes it invalid
    for case, mutation, *_ in CASES:
        assert mutation, case


def test_the_base_spec_deploys(control_plane: ControlPlane, operator: OperatorProcess, crs: Any) -> None:
    crs.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, base("valid"))

    def allocated() -> dict[str, Any] | None:
        obj = get(crs, "valid")
        return obj if condition(obj, "Allocated").get("status") == "True" else None

    obj = wait_until("the base spec allocated", allocated, timeout=60)
    assert owned(control_plane, obj["metadata"]["uid"])


def test_invalid_specs_are_rejected_or_reported_naming_the_field(
    control_plane: ControlPlane, operator: OperatorProcess, crs: Any
) -> None:
    table: list[tuple[str, str, str, str]] = []
    for case, mutation, where, field, words in CASES:
        body = mutate(base(case), mutation)
        try:
            crs.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)
        except ApiException as e:
            message = json.loads(e.body)["message"]
            assert where == "apiserver", f"{case}: refused by the API server, expected {where}: {message}"
            assert e.status == 422, (case, e.status, message)
            assert field in message and words in message, (case, message)
            table.append(
                (case, json.dumps(mutation, default=lambda _: "<deleted>"), "apiserver 422", message)
            )
            continue
        assert where == "operator", f"{case}: the API server accepted it"

    for case, mutation, where, field, words in CASES:
        if where != "operator":
            continue
        expected = f"{field}: " if field != "spec" else "spec"

        def reported(name: str = case, words: str = words) -> dict[str, Any] | None:
            obj = get(crs, name)
            deg = condition(obj, "Degraded")
            return obj if deg.get("status") == "True" and words in deg.get("message", "") else None

        try:
            obj = wait_until(f"{case}: Degraded saying {words!r}", reported, timeout=40)
        except AssertionError as e:
            raise AssertionError(
                f"{e}\nstatus: {get(crs, case).get('status')}\n{operator.log_tail()}"
            ) from None
        deg = condition(obj, "Degraded")
        assert expected in deg["message"], (case, deg["message"])
        assert deg["reason"] in ("UnusableSpec", "InvalidSpec"), (case, deg)
        assert condition(obj, "Allocated")["status"] == "False", case
        assert owned(control_plane, obj["metadata"]["uid"]) == [], f"{case}: objects were created"
        events = wait_until(
            f"{case}: a Warning Event naming {field}",
            lambda name=case, words=words: [m for m in warnings(control_plane, name) if words in m],
        )
        assert expected in events[0], (case, events)
        table.append((case, json.dumps(mutation), f"operator {deg['reason']}", deg["message"]))

    assert operator.alive() and operator.healthz() == 200
    print(f"\n{len(table)} invalid HadisService specs (mutation of a valid spec -> where -> message):")
    for case, mutation, where, message in table:
        print(f"- {case}: {mutation}\n    -> {where}: {message}")
    assert len(table) == len(CASES) >= 20


# --- a valid service with its secrets and weights: the pods as the API server stores them -----------


SECRET_VALUE = f"sk-hadis-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def secure_service(control_plane: ControlPlane, operator: OperatorProcess, crs: Any) -> Iterator[str]:
    core = client.CoreV1Api(control_plane.api)
    core.create_namespaced_secret(
        NS,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="gw-keys"),
            data={"keys.txt": base64.b64encode(f"{SECRET_VALUE}\n".encode()).decode()},
        ),
    )
    body = mutate(
        base("secure"),
        {
            **DIFFUSERS,
            "spec.variants.0.model": "/models/sdxl-lightning",
            "spec.variants.1.model": "sd35-large",  # relative: inside the model volume
            "spec.discriminator": {"clip": "/models/clip", "head": "/models/head.safetensors"},
            "spec.gateway": {"apiKeySecret": {"name": "gw-keys", "key": "keys.txt"}},
        },
    )
    crs.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)

    def deployed() -> bool:
        obj = get(crs, "secure")
        return (
            condition(obj, "Allocated").get("status") == "True"
            and len([o for o in owned(control_plane, obj["metadata"]["uid"]) if o.startswith("Deployment/")])
            == 3
        )

    try:
        wait_until("the secure service deployed", deployed, timeout=60)
    except AssertionError as e:
        raise AssertionError(
            f"{e}\nstatus: {get(crs, 'secure').get('status')}\n{operator.log_tail()}"
        ) from None
    yield "secure"


def deployment(cp: ControlPlane, name: str) -> dict[str, Any]:
    dep = client.AppsV1Api(cp.api).read_namespaced_deployment(name, NS)
    return cast(dict[str, Any], cp.api.sanitize_for_serialization(dep))


def test_the_api_server_keeps_the_locked_down_pods_as_built(
    control_plane: ControlPlane, secure_service: str
) -> None:
    names = ["secure-gateway", "secure-sdxl-lightning-l40s", "secure-sd35-large-l40s"]
    for name in names:
        pod = deployment(control_plane, name)["spec"]["template"]["spec"]
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 65532 and psc["fsGroup"] == 65532, name
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        (c,) = pod["containers"]
        assert c["securityContext"] == {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }, name
        writable = [m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")]
        assert writable == ["/tmp"], (name, writable)
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["tmp"]["emptyDir"] == {}, name
        env = {e["name"]: e.get("value") for e in c["env"]}
        if name == "secure-gateway":
            assert volumes["api-keys"]["secret"] == {
                "secretName": "gw-keys",
                "items": [{"key": "keys.txt", "path": "api-keys"}],
                "defaultMode": 0o440,
            }
            mount = next(m for m in c["volumeMounts"] if m["name"] == "api-keys")
            assert (
                mount["readOnly"] is True and env["HADIS_API_KEYS_FILE"] == f"{mount['mountPath']}/api-keys"
            )
            assert "models" not in volumes
        else:
            assert "api-keys" not in volumes and "HADIS_API_KEYS_FILE" not in env
            assert volumes["models"]["persistentVolumeClaim"] == {"claimName": "w"}
            assert env["HADIS_MODEL_ROOT"] == "/models"
    worker = deployment(control_plane, "secure-sd35-large-l40s")
    env = {e["name"]: e.get("value") for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (
        env["HADIS_MODEL"] == "sd35-large" and env["HADIS_DISCRIMINATOR_HEAD"] == "/models/head.safetensors"
    )


def test_the_secret_value_is_in_no_log_event_or_object_the_operator_writes(
    control_plane: ControlPlane, operator: OperatorProcess, crs: Any, secure_service: str
) -> None:
    log = operator.log()
    assert "secure" in log  # the operator did log about this service
    assert SECRET_VALUE not in log
    assert base64.b64encode(SECRET_VALUE.encode()).decode()[:20] not in log
    events = client.CoreV1Api(control_plane.api).list_namespaced_event(NS).items
    assert not [e for e in events if SECRET_VALUE in (e.message or "")]
    status = json.dumps(get(crs, secure_service).get("status"))
    assert SECRET_VALUE not in status
    for name in ("secure-gateway", "secure-sdxl-lightning-l40s"):
        assert SECRET_VALUE not in json.dumps(deployment(control_plane, name))
