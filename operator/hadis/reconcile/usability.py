"""What makes a schema-valid HadisService undeployable with its profile (pure).

The CRD schema and the pydantic models check each field on its own; :func:`check_usable` checks the
spec against the profile it names and against what the API server will accept in the objects
built from it, so the operator can report every problem (as a condition and an Event naming the
field) instead of crashing or deploying part of the service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from hadis.api.allocation import Toleration
from hadis.api.profile import Profile
from hadis.api.service import HadisServiceSpec

#: policies whose decision is a cascade of two variants (as hadis.policy.registry.CASCADE_POLICIES)
CASCADE_POLICIES = frozenset({"hadis", "diffserve", "router-only", "disc-only", "fixed-pair"})

# Kubernetes qualified names (label keys, extended resource names) and label values
_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_QUALIFIED = re.compile(rf"^(({_DNS_SUBDOMAIN})/)?{_NAME}$")
_RESOURCE = re.compile(rf"^{_DNS_SUBDOMAIN}/{_NAME}$")
_LABEL_VALUE = re.compile(rf"^({_NAME})?$")
#: a Hugging Face hub id, ``name`` or ``owner/name`` (as hadis_worker.settings.HUB_ID_PATTERN)
_HUB_ID = re.compile(r"^(?!\.{1,2}(/|$))[A-Za-z0-9][\w.-]*(/(?!\.{1,2}$)[\w.-]+)?$")
#: where the worker pods mount spec.modelVolume (hadis.reconcile.pods.MODEL_DIR; HADIS_MODEL_ROOT)
MODEL_DIR = PurePosixPath("/models")


@dataclass(frozen=True)
class Problem:
    """One reason the spec cannot be deployed; ``field`` is its camelCase path (``spec.gpuPools[0]``)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def gpus_needed(policy: str) -> int:
    """GPUs a policy needs at least: one per variant it serves at the same time."""
    return 2 if policy in CASCADE_POLICIES else 1


def check_usable(spec: HadisServiceSpec, profile: Profile) -> list[Problem]:
    """Every problem that makes ``spec`` undeployable with ``profile``; empty when it is usable.

    The list is deterministic (spec order) and each problem names one field: variants the profile
    lacks or cannot place on any pool, pool GPU types the profile has no latencies for, a GPU budget
    below what the policy needs, a cascade policy without two variants (or without sweep rows for
    them, or for the fixed pair), and pool settings the API server would reject in a Deployment
    (resource name, node selector, tolerations), and diffusers weights whose local path leaves the
    model volume (see :func:`model_path_problem`).
    """
    problems: list[Problem] = []
    known = set(profile.variant_names)
    gpu_types = profile.gpu_types
    for i, v in enumerate(spec.variants):
        if v.name not in known:
            problems.append(
                Problem(
                    f"spec.variants[{i}].name",
                    f"{v.name!r} is not a variant of profile {profile.name!r} ({profile.variant_names})",
                )
            )
            continue
        usable_pools = [
            p for p in spec.gpu_pools if p.count > 0 and profile.variant(v.name).has_gpu(p.gpu_type)
        ]
        if not usable_pools:
            types = [g.gpu_type for g in profile.variant(v.name).perf]
            problems.append(
                Problem(
                    f"spec.variants[{i}].name",
                    f"{v.name!r} cannot be placed: no pool has GPUs of its GPU types {types}",
                )
            )
    for i, pool in enumerate(spec.gpu_pools):
        if pool.gpu_type not in gpu_types:
            problems.append(
                Problem(
                    f"spec.gpuPools[{i}].gpuType",
                    f"{pool.gpu_type!r} has no latencies in profile {profile.name!r} ({gpu_types})",
                )
            )
        problems.extend(_pool_problems(i, pool.resource, pool.node_selector, pool.tolerations))

    budget = sum(p.count for p in spec.gpu_pools)
    need = gpus_needed(spec.policy)
    if budget < need:
        problems.append(
            Problem(
                "spec.gpuPools",
                f"the budget has {budget} GPU(s); policy {spec.policy!r} needs at least {need} "
                "(one per variant it serves)",
            )
        )
    if spec.policy in CASCADE_POLICIES:
        problems.extend(_cascade_problems(spec, profile))
    problems.extend(_path_problems(spec, profile))
    return problems


def model_path_problem(value: str, *, hub_id_allowed: bool, volume: bool) -> str | None:
    """Why ``value`` cannot name weights on the model volume (mounted at /models), or ``None``.

    The worker takes a relative path inside the volume (``HADIS_MODEL_ROOT``), so a relative path
    without ``..`` and an absolute one under /models are fine; ``..``, ``~`` and absolute paths
    elsewhere would leave it. A hub id (``owner/name``, when ``hub_id_allowed``) needs no volume;
    any other local path needs ``spec.modelVolume``. Symlinks leading out of the volume can only be
    seen where the volume is mounted: the worker refuses those when it loads the weights.
    """
    if value.startswith("~"):
        return f"{value!r} is a home-directory path, outside the model volume ({MODEL_DIR})"
    path = PurePosixPath(value)
    if ".." in path.parts:
        return f"{value!r} contains '..': weights must stay inside the model volume ({MODEL_DIR})"
    if path.is_absolute() and path != MODEL_DIR and MODEL_DIR not in path.parents:
        return f"{value!r} is outside the model volume: use a path under {MODEL_DIR} or relative to it"
    if hub_id_allowed and _HUB_ID.match(value):
        return None
    if not volume:
        return (
            f"{value!r} is a local path, but spec.modelVolume is not set (nothing is mounted at {MODEL_DIR})"
        )
    return None


def _path_problems(spec: HadisServiceSpec, profile: Profile) -> list[Problem]:
    """Local weight paths of the diffusers workers that leave the model volume (spec order)."""
    problems: list[Problem] = []
    volume = spec.model_volume is not None
    known = set(profile.variant_names)
    any_diffusers = False
    for i, v in enumerate(spec.variants):
        if (v.engine or spec.engine) != "diffusers":
            continue
        any_diffusers = True
        model, origin = v.model, ""
        if model is None and v.name in known:
            model, origin = profile.variant(v.name).model, f" (profile {profile.name!r}'s default)"
        if model is not None and (why := model_path_problem(model, hub_id_allowed=True, volume=volume)):
            problems.append(Problem(f"spec.variants[{i}].model", why + origin))
        if v.unet_checkpoint is not None and (
            why := model_path_problem(v.unet_checkpoint, hub_id_allowed=False, volume=volume)
        ):
            problems.append(Problem(f"spec.variants[{i}].unetCheckpoint", why))
    if spec.discriminator is not None and any_diffusers:
        for part in ("clip", "head"):
            value = getattr(spec.discriminator, part)
            if why := model_path_problem(value, hub_id_allowed=False, volume=volume):
                problems.append(Problem(f"spec.discriminator.{part}", why))
    return problems


def _cascade_problems(spec: HadisServiceSpec, profile: Profile) -> list[Problem]:
    names = [v.name for v in spec.variants]
    if len(names) < 2:
        return [Problem("spec.variants", f"policy {spec.policy!r} cascades two variants; the spec lists one")]
    if spec.fixed_pair is not None:
        light, heavy = spec.fixed_pair.light, spec.fixed_pair.heavy
        if light == heavy:
            return [Problem("spec.fixedPair.heavy", f"the same variant as light ({light!r})")]
        known = profile.variant_names
        paired = any(r.light == light and r.heavy == heavy for r in profile.sweep)
        if light in known and heavy in known and not paired:
            return [
                Problem(
                    "spec.fixedPair", f"profile {profile.name!r} has no cascade rows for {light} -> {heavy}"
                )
            ]
        return []
    allowed = set(names)
    if not any(r.light in allowed and r.heavy in allowed for r in profile.sweep):
        return [
            Problem(
                "spec.variants",
                f"profile {profile.name!r} has no cascade rows between these variants ({names})",
            )
        ]
    return []


def _pool_problems(
    i: int, resource: str, node_selector: dict[str, str], tolerations: list[Toleration]
) -> list[Problem]:
    where = f"spec.gpuPools[{i}]"
    problems: list[Problem] = []
    if not _RESOURCE.match(resource) or resource.split("/")[0].endswith("kubernetes.io"):
        problems.append(
            Problem(
                f"{where}.resource",
                f"{resource!r} is not an extended resource name (domain/name outside kubernetes.io, "
                "e.g. nvidia.com/gpu)",
            )
        )
    for key in sorted(node_selector):
        value = node_selector[key]
        if not _QUALIFIED.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
            problems.append(Problem(f"{where}.nodeSelector", f"{key!r} is not a valid label key"))
        elif not _LABEL_VALUE.match(value) or len(value) > 63:
            problems.append(Problem(f"{where}.nodeSelector.{key}", f"{value!r} is not a valid label value"))
    for j, t in enumerate(tolerations):
        at = f"{where}.tolerations[{j}]"
        if t.operator == "Exists" and t.value:
            problems.append(Problem(f"{at}.value", "must be empty when operator is Exists"))
        if not t.key and t.operator != "Exists":
            problems.append(Problem(f"{at}.operator", "must be Exists when key is empty"))
        if t.key and not _QUALIFIED.match(t.key):
            problems.append(Problem(f"{at}.key", f"{t.key!r} is not a valid label key"))
    return problems
