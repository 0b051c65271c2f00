"""Pod pieces shared by the gateway and worker Deployments (pure): containers, probes, security, env.

The paths and ports here are the contract with the images: the gateway and worker processes read
only environment variables (hadis_gateway.settings, hadis_worker.settings), and the control plane
mounts the cascade ConfigMap at :data:`CONFIG_DIR`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hadis.api.allocation import GpuPool
from hadis.api.profile import Profile
from hadis.api.service import HadisService, VariantSpec

Obj = dict[str, Any]

CONFIG_DIR = "/etc/hadis/cascade"
CONFIG_KEY = "cascade.json"
CONFIG_PATH = f"{CONFIG_DIR}/{CONFIG_KEY}"
PROFILE_DIR = "/etc/hadis/profile"
MODEL_DIR = "/models"
#: the gateway's API keys (spec.gateway.apiKeySecret): the Secret key mounted as this file
API_KEYS_DIR = "/etc/hadis/api-keys"
API_KEYS_FILE = f"{API_KEYS_DIR}/api-keys"
#: the secret volume's files: read-only for the owner and the pod's group (fsGroup), nobody else
API_KEYS_MODE = 0o440
WORKER_PORT = 8001
WORKER_DRAIN_S = 30
RUN_AS = 65532
#: seconds a gateway pod keeps accepting connections after it is told to stop (preStop), before its
#: server stops listening: the time every node's Service rules take to drop it, so a replaced
#: gateway pod turns no client away while another replica is there
GATEWAY_PRESTOP_S = 5
GATEWAY_GRACE_S = 30
#: what an emulated worker asks the scheduler for: it sleeps through the profiled latencies and holds
#: a placeholder image per request, so a little CPU and memory and no GPU (it runs on any node)
EMULATED_WORKER_REQUESTS = {"cpu": "50m", "memory": "128Mi"}


def env_list(values: Mapping[str, str]) -> list[Obj]:
    """A container's ``env`` list, in the mapping's order."""
    return [{"name": k, "value": v} for k, v in values.items()]


def http_probe(path: str, period: int, failures: int, timeout: int) -> Obj:
    """An HTTP GET probe on the container port named ``http``."""
    return {
        "httpGet": {"path": path, "port": "http", "scheme": "HTTP"},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": timeout,
    }


def container(name: str, image: str, pull: str, module: str, env: Mapping[str, str], port: int) -> Obj:
    """A container running ``python -m module`` as non-root with a read-only root filesystem, no
    privilege escalation and no capabilities; ``HOME`` is /tmp (the only writable path)."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": pull,
        "command": ["python", "-m", module],
        "env": env_list({"HOME": "/tmp", **env}),
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "securityContext": {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def pod_spec(containers: list[Obj], volumes: list[Obj], grace_s: int) -> Obj:
    """A pod spec with the restricted security defaults, no service-account token and no service
    links (the processes need neither)."""
    return {
        "containers": containers,
        "volumes": volumes,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": grace_s,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def pre_stop_sleep(seconds: int) -> Obj:
    """A container ``lifecycle`` that waits ``seconds`` before the stop signal (every HADIS image
    has coreutils' ``sleep``)."""
    return {"preStop": {"exec": {"command": ["sleep", str(seconds)]}}}


def worker_resources(engine: str, pool: GpuPool) -> Obj:
    """A worker container's ``resources``: one GPU of the pool's extended resource for a real
    engine; for the emulated engine a small CPU/memory request and no GPU, so emulated capacity
    runs on nodes without GPUs (the pool's node selector and tolerations still apply)."""
    if engine == "emulated":
        return {"requests": dict(EMULATED_WORKER_REQUESTS)}
    return {"limits": {pool.resource: "1"}}


def worker_env(svc: HadisService, profile: Profile, vspec: VariantSpec, pool: GpuPool) -> dict[str, str]:
    """What the worker process reads (hadis_worker.settings), as local mode gives it."""
    spec = svc.spec
    engine = vspec.engine or spec.engine
    ref = spec.profile
    env = {
        "HADIS_WORKER_VARIANT": vspec.name,
        "HADIS_CONFIG_PATH": CONFIG_PATH,
        "HADIS_ENGINE": engine,
        "HADIS_PROFILE": f"{PROFILE_DIR}/{ref.config_map.key}" if ref.config_map else ref.builtin or "",
        "HADIS_GPU_TYPE": pool.gpu_type,
        "HADIS_WORKER_HOST": "0.0.0.0",
        "HADIS_WORKER_PORT": str(WORKER_PORT),
        "HADIS_TIME_SCALE": str(ref.time_scale),
        "HADIS_WORKER_DRAIN_S": str(WORKER_DRAIN_S),
    }
    if engine == "diffusers":
        pvar = profile.variant(vspec.name)
        env |= {
            "HADIS_MODEL": vspec.model or pvar.model,
            # the worker refuses local paths that resolve outside the model volume (.., symlinks)
            "HADIS_MODEL_ROOT": MODEL_DIR,
            "HADIS_STEPS": str(pvar.steps),
            "HADIS_GUIDANCE_SCALE": str(pvar.guidance_scale),
            "HF_HOME": "/tmp/huggingface",
        }
        if vspec.unet_checkpoint is not None:
            env["HADIS_UNET_CHECKPOINT"] = vspec.unet_checkpoint
        if spec.discriminator is not None:
            env["HADIS_DISCRIMINATOR_CLIP"] = spec.discriminator.clip
            env["HADIS_DISCRIMINATOR_HEAD"] = spec.discriminator.head
    return env
