"""Issue 7 over the built manifests: locked-down pods, the gateway's API keys from a Secret, and
diffusers weights confined to the model volume (hadis.reconcile.manifests / pods / usability)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from tests.factories import two_variant_profile
from tests.unit.reconcile.test_manifests import UID, _alloc, _by, _env, _pod, _profile, _svc

from hadis.api.service import HadisServiceSpec
from hadis.reconcile.manifests import UnusableSpecError, build_objects
from hadis.reconcile.pods import API_KEYS_DIR, API_KEYS_FILE, MODEL_DIR
from hadis.reconcile.usability import check_usable, model_path_problem

RESTRICTED_CONTAINER = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def _deployments(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == "Deployment"]


def test_every_pod_is_non_root_read_only_without_capabilities_and_runtime_default_seccomp() -> None:
    svc = _svc(
        engine="diffusers",
        modelVolume={"persistentVolumeClaim": {"claimName": "weights"}},
        gateway={"apiKeySecret": {"name": "gw-keys"}},
    )
    deployments = _deployments(build_objects(svc, _alloc(1, 1, 1), _profile(), uid=UID))
    assert len(deployments) == 4  # fast/t4, slow/t4, slow/a100, the gateway
    for dep in deployments:
        pod = _pod(dep)
        name = dep["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name  # no API token in the pods
        assert "hostNetwork" not in pod and "hostPID" not in pod, name
        for c in pod["containers"]:
            assert c["securityContext"] == RESTRICTED_CONTAINER, name
            # every writable path is a volume: /tmp (HOME, caches) is the only read-write mount
            writable = [m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")]
            assert writable == ["/tmp"], (name, writable)
            env = {e["name"]: e["value"] for e in c["env"]}
            assert env["HOME"] == "/tmp", name
            assert env.get("HF_HOME", "/tmp").startswith("/tmp"), name
        assert {"name": "tmp", "emptyDir": {}} in pod["volumes"], name


def test_the_gateway_mounts_its_api_keys_read_only_from_the_secret() -> None:
    svc = _svc(gateway={"apiKeySecret": {"name": "gw-keys", "key": "keys.txt"}})
    objs = build_objects(svc, _alloc(1, 1, 1), _profile(), uid=UID)
    gateway = _by(objs, "Deployment", "demo-gateway")
    pod = _pod(gateway)
    volume = next(v for v in pod["volumes"] if v["name"] == "api-keys")
    assert volume == {
        "name": "api-keys",
        "secret": {
            "secretName": "gw-keys",
            "items": [{"key": "keys.txt", "path": API_KEYS_FILE.rsplit("/", 1)[1]}],
            "defaultMode": 0o440,
        },
    }
    (c,) = pod["containers"]
    assert {"name": "api-keys", "mountPath": API_KEYS_DIR, "readOnly": True} in c["volumeMounts"]
    assert _env(gateway)["HADIS_API_KEYS_FILE"] == API_KEYS_FILE
    assert API_KEYS_FILE.startswith(API_KEYS_DIR + "/")
    # the workers never see the keys, and no object carries the Secret's content (only its name)
    for dep in _deployments(objs):
        if dep is not gateway:
            assert all(v["name"] != "api-keys" for v in _pod(dep)["volumes"])
            assert "HADIS_API_KEYS_FILE" not in _env(dep)
    assert not [o for o in objs if o["kind"] == "Secret"]


def test_the_api_key_secret_key_defaults_and_without_it_the_gateway_has_no_keys() -> None:
    svc = _svc(gateway={"apiKeySecret": {"name": "gw-keys"}})
    assert svc.spec.gateway.api_key_secret is not None
    assert svc.spec.gateway.api_key_secret.key == "api-keys"
    gateway = _by(build_objects(_svc(), None, _profile(), uid=UID), "Deployment", "demo-gateway")
    assert "HADIS_API_KEYS_FILE" not in _env(gateway)
    assert all(v["name"] != "api-keys" for v in _pod(gateway)["volumes"])


@pytest.mark.parametrize(
    ("ref", "field", "words"),
    [
        ({"name": "Keys_1"}, "gateway.apiKeySecret.name", "should match pattern"),
        ({"name": "keys", "key": "a/b"}, "gateway.apiKeySecret.key", "should match pattern"),
        ({"name": "keys", "key": ".."}, "gateway.apiKeySecret.key", "is not a file name"),
        ({"key": "keys"}, "gateway.apiKeySecret.name", "Field required"),
    ],
)
def test_a_bad_api_key_secret_reference_names_the_field(ref: dict[str, str], field: str, words: str) -> None:
    body = {
        "variants": [{"name": "fast"}],
        "sloSeconds": 5,
        "gpuPools": [{"name": "t4", "gpuType": "T4", "count": 1}],
        "gateway": {"apiKeySecret": ref},
    }
    with pytest.raises(ValidationError) as err:
        HadisServiceSpec.model_validate(body)
    (e,) = err.value.errors()
    assert ".".join(str(p) for p in e["loc"]) == field
    assert words in e["msg"]


def test_diffusers_workers_are_told_the_model_root() -> None:
    svc = _svc(engine="diffusers", modelVolume={"persistentVolumeClaim": {"claimName": "w"}})
    objs = build_objects(svc, _alloc(1, 1, 1), _profile(), uid=UID)
    assert _env(_by(objs, "Deployment", "demo-fast-t4"))["HADIS_MODEL_ROOT"] == MODEL_DIR
    emulated = build_objects(_svc(), _alloc(1, 1, 1), _profile(), uid=UID)
    assert "HADIS_MODEL_ROOT" not in _env(_by(emulated, "Deployment", "demo-fast-t4"))


# --- weights confined to the model volume ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "hub", "volume", "words"),
    [
        ("/models/sdxl", True, True, None),
        ("/models", False, True, None),
        ("sdxl/unet.safetensors", False, True, None),  # relative: inside /models
        ("ByteDance/SDXL-Lightning", True, False, None),  # a hub id needs no volume
        ("ByteDance/SDXL-Lightning", True, True, None),
        ("../etc/passwd", True, True, "contains '..'"),
        ("/models/../etc", True, True, "contains '..'"),
        ("weights/../../x", False, True, "contains '..'"),
        ("/etc/ssl", True, True, "outside the model volume"),
        ("/modelsX/a", True, True, "outside the model volume"),
        ("/", True, True, "outside the model volume"),
        ("~/weights", True, True, "home-directory path"),
        ("/models/a", True, False, "spec.modelVolume is not set"),
        ("weights/unet.safetensors", False, False, "spec.modelVolume is not set"),
        ("./sdxl", True, False, "spec.modelVolume is not set"),
    ],
)
def test_model_path_problem(value: str, hub: bool, volume: bool, words: str | None) -> None:
    why = model_path_problem(value, hub_id_allowed=hub, volume=volume)
    if words is None:
        assert why is None
    else:
        assert why is not None and words in why and repr(value) in why


def _spec(**over: Any) -> HadisServiceSpec:
    body: dict[str, Any] = {
        "variants": [{"name": "fast"}, {"name": "slow"}],
        "sloSeconds": 5,
        "gpuPools": [{"name": "t4", "gpuType": "T4", "count": 4}],
        "modelVolume": {"persistentVolumeClaim": {"claimName": "w"}},
        **over,
    }
    return HadisServiceSpec.model_validate(body)


def test_escaping_weight_paths_are_problems_naming_the_field() -> None:
    spec = _spec(
        variants=[
            {"name": "fast", "model": "/models/../root/.ssh"},
            {"name": "slow", "model": "/opt/weights", "unetCheckpoint": "../unet.safetensors"},
        ],
        discriminator={"clip": "/models/clip", "head": "/tmp/head.pt"},
    )
    problems = check_usable(spec, two_variant_profile())
    assert [p.field for p in problems] == [
        "spec.variants[0].model",
        "spec.variants[1].model",
        "spec.variants[1].unetCheckpoint",
        "spec.discriminator.head",
    ]
    assert "contains '..'" in problems[0].message and "outside the model volume" in problems[1].message
    with pytest.raises(UnusableSpecError, match=r"spec\.variants\[0\]\.model: '\.\./x' contains '\.\.'"):
        build_objects(
            _svc(engine="diffusers", variants=[{"name": "fast", "model": "../x"}, {"name": "slow"}]),
            None,
            _profile(),
            uid=UID,
        )


def test_paths_inside_the_volume_and_hub_ids_are_fine() -> None:
    spec = _spec(
        variants=[
            {"name": "fast", "model": "/models/fast"},
            {"name": "slow", "unetCheckpoint": "u.safetensors"},
        ],
        discriminator={"clip": "clip", "head": "/models/head.pt"},
    )
    assert check_usable(spec, two_variant_profile()) == []
    # the profile's default models are hub ids: fine without a volume
    no_volume = HadisServiceSpec.model_validate(
        {
            "variants": [{"name": "fast"}, {"name": "slow"}],
            "sloSeconds": 5,
            "gpuPools": [{"name": "t4", "gpuType": "T4", "count": 4}],
        }
    )
    assert check_usable(no_volume, two_variant_profile()) == []


def test_emulated_variants_load_no_weights_so_their_paths_are_not_checked() -> None:
    spec = _spec(engine="emulated", variants=[{"name": "fast", "model": "/etc"}, {"name": "slow"}])
    assert check_usable(spec, two_variant_profile()) == []
    mixed = _spec(
        engine="emulated",
        variants=[
            {"name": "fast", "model": "/etc"},
            {"name": "slow", "engine": "diffusers", "model": "/etc"},
        ],
    )
    assert [p.field for p in check_usable(mixed, two_variant_profile())] == ["spec.variants[1].model"]


def test_a_profile_default_model_outside_the_volume_is_reported_as_the_profile_s() -> None:
    profile = two_variant_profile()
    fast = profile.variant("fast").model_copy(update={"model": "/srv/fast"})
    profile = profile.model_copy(update={"variants": [fast, profile.variant("slow")]})
    (problem,) = check_usable(_spec(), profile)
    assert problem.field == "spec.variants[0].model"
    assert "outside the model volume" in problem.message and "'s default" in problem.message
