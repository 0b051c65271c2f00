"""Fake policies and small configurations for simulator tests (two variants: fast 0.1 s, slow 1.0 s)."""

from __future__ import annotations

from collections.abc import Callable

from tests.factories import row, two_variant_profile

from hadis.api import Allocation, CascadeRow, DecisionInput, GpuPool, VariantAllocation
from hadis.sim.config import SimConfig

PROFILE = two_variant_profile()
Policy = Callable[[DecisionInput], Allocation]


def config(gpus: int = 100, slo: float = 5.0, **kw: object) -> SimConfig:
    return SimConfig(
        profile=PROFILE,
        pools=(GpuPool(name="pool", gpu_type="T4", count=gpus),),
        slo_s=slo,
        interval_s=kw.pop("interval_s", 10.0),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def workers(variant: str, replicas: int, batch: int = 4, pool: str = "pool") -> VariantAllocation:
    return VariantAllocation(
        variant=variant, pool=pool, replicas=replicas, batch_size=batch, latency_s=1.0, throughput_qps=1.0
    )


def cascade(theta: float, tau: float, light: int, heavy: int, batch: int = 4) -> Allocation:
    r: CascadeRow = row("fast", "slow", theta, tau, 1.0, 25.0)
    return Allocation(
        policy="fake-cascade",
        row=r,
        variants=[workers("fast", light, batch), workers("slow", heavy, batch)],
        demand_qps=0.0,
        expected_fid=25.0,
    )


def split(shares: dict[str, float], replicas: dict[str, int], batch: int = 4) -> Allocation:
    return Allocation(
        policy="fake-split",
        split=shares,
        variants=[workers(v, r, batch) for v, r in replicas.items()],
        demand_qps=0.0,
        expected_fid=25.0,
    )


def fixed(alloc: Allocation) -> Policy:
    return lambda inp: alloc.model_copy(update={"demand_qps": inp.demand_qps})


def sequence(*allocs: Allocation) -> Policy:
    """The i-th decision gets allocs[i] (the last one repeats)."""
    calls: list[DecisionInput] = []

    def decide(inp: DecisionInput) -> Allocation:
        calls.append(inp)
        return allocs[min(len(calls), len(allocs)) - 1]

    decide.calls = calls  # type: ignore[attr-defined]
    return decide
