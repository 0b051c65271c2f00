"""Every policy behind one interface: ``decide(name, inp) -> Allocation``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from hadis.api.allocation import POLICY_NAMES, Allocation, DecisionInput
from hadis.errors import UserError
from hadis.policy.allocator import solve_hadis
from hadis.policy.cascade_variants import (
    decide_diffserve,
    decide_disc_only,
    decide_fixed_pair,
    decide_router_only,
)
from hadis.policy.clipper import decide_clipper_heavy, decide_clipper_light
from hadis.policy.infaas import decide_infaas
from hadis.policy.proteus import decide_proteus

Policy = Callable[[DecisionInput], Allocation]

POLICIES: Mapping[str, Policy] = MappingProxyType(
    {
        "hadis": solve_hadis,
        "diffserve": decide_diffserve,
        "router-only": decide_router_only,
        "disc-only": decide_disc_only,
        "fixed-pair": decide_fixed_pair,
        "proteus": decide_proteus,
        "infaas": decide_infaas,
        "clipper-light": decide_clipper_light,
        "clipper-heavy": decide_clipper_heavy,
    }
)
assert tuple(POLICIES) == POLICY_NAMES, "the registry and api.PolicyName must list the same policies"

#: Policies whose decision is a cascade row (quality = the row's FID).
CASCADE_POLICIES = frozenset({"hadis", "diffserve", "router-only", "disc-only", "fixed-pair"})


def get_policy(name: str) -> Policy:
    try:
        return POLICIES[name]
    except KeyError:
        raise UserError(f"unknown policy {name!r}; choose one of: {', '.join(POLICIES)}") from None


def decide(name: str, inp: DecisionInput) -> Allocation:
    return get_policy(name)(inp)
