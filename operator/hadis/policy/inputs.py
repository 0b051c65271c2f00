"""Turn a HadisService spec, a profile and observations into a policy's DecisionInput (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from hadis.api.allocation import Allocation, DecisionInput
from hadis.api.base import describe_validation_error
from hadis.api.profile import CascadeRow, Profile
from hadis.api.service import HadisServiceSpec
from hadis.errors import UserError


class UnusableSpecError(UserError):
    """A spec that passes the schema but cannot be served with its profile; the message names the field."""


def check_spec_against_profile(spec: HadisServiceSpec, profile: Profile) -> None:
    """Raise :class:`UnusableSpecError` naming the first field the profile cannot serve."""
    names = profile.variant_names
    for i, v in enumerate(spec.variants):
        if v.name not in names:
            raise UnusableSpecError(
                f"spec.variants[{i}].name: {v.name!r} is not in profile {profile.name!r} ({names})"
            )
    for i, pool in enumerate(spec.gpu_pools):
        if pool.gpu_type not in profile.gpu_types:
            raise UnusableSpecError(
                f"spec.gpuPools[{i}].gpuType: {pool.gpu_type!r} has no latencies in profile {profile.name!r} "
                f"({profile.gpu_types})"
            )
    if sum(p.count for p in spec.gpu_pools) < 1:
        raise UnusableSpecError("spec.gpuPools: the budget has no GPU; at least one is needed")
    if (
        spec.policy in ("hadis", "diffserve", "router-only", "disc-only", "fixed-pair")
        and len(spec.variants) < 2
    ):
        raise UnusableSpecError(
            f"spec.variants: policy {spec.policy!r} cascades two variants; the spec lists one"
        )


def build_decision_input(
    spec: HadisServiceSpec,
    profile: Profile,
    table: list[CascadeRow],
    demand_qps: float,
    *,
    previous: Allocation | None = None,
    queue_lengths: Mapping[str, float] | None = None,
    arrival_qps: Mapping[str, float] | None = None,
) -> DecisionInput:
    """The policy's input for one control interval; :class:`UnusableSpecError` if the spec can't be served."""
    check_spec_against_profile(spec, profile)
    try:
        return DecisionInput(
            profile=profile,
            table=table,
            demand_qps=max(0.0, demand_qps),
            slo_s=spec.slo_seconds,
            pools=spec.gpu_pools,
            variants=[v.name for v in spec.variants],
            previous=previous,
            queue_lengths=dict(queue_lengths or {}),
            arrival_qps=dict(arrival_qps or {}),
            reconfiguration_cost=spec.allocation.reconfiguration_cost,
            time_limit_s=spec.allocation.solver_time_limit_seconds,
            fixed_pair=(spec.fixed_pair.light, spec.fixed_pair.heavy) if spec.fixed_pair else None,
        )
    except ValidationError as e:
        raise UnusableSpecError(describe_validation_error(e, "spec")) from None
