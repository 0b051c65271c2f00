"""Build the cascade configuration that the gateway and the workers watch (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hadis.api.allocation import Allocation
from hadis.api.profile import Profile
from hadis.api.wire import CascadeConfig, VariantEndpoints


def build_cascade_config(
    allocation: Allocation,
    profile: Profile,
    endpoints: Mapping[str, Sequence[str]],
    *,
    slo_s: float,
    admission_factor: float,
    time_scale: float = 1.0,
    generation: int = 0,
) -> CascadeConfig:
    """The :class:`CascadeConfig` for ``allocation``.

    ``endpoints`` maps each variant to the base URLs of its workers (in Kubernetes the headless
    Service's DNS name; locally the worker processes' ports). Every variant the allocation routes
    to gets an entry (with its batch size and the profile's sampler settings), also when it has
    no endpoint yet — the gateway then answers its queries with an explicit error instead of
    dropping them silently.
    """
    routed = (
        [allocation.row.light, allocation.row.heavy] if allocation.row is not None else list(allocation.split)
    )
    names = list(dict.fromkeys([*routed, *allocation.active_variants]))
    variants = {
        name: VariantEndpoints(
            batch_size=allocation.batch_size(name),
            endpoints=list(endpoints.get(name, ())),
            steps=profile.variant(name).steps,
            guidance_scale=profile.variant(name).guidance_scale,
        )
        for name in names
    }
    return CascadeConfig(
        generation=generation,
        policy=allocation.policy,
        row=allocation.row,
        split=dict(allocation.split),
        variants=variants,
        slo_s=slo_s,
        admission_factor=admission_factor,
        time_scale=time_scale,
        profile=profile.name,
    )
