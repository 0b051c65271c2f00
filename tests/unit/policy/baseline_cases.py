"""Inputs and invariants shared by the tests of the non-cascade baselines (Clipper, INFaaS, Proteus)."""

from __future__ import annotations

from functools import lru_cache

from hypothesis import strategies as st
from tests.factories import two_variant_profile, variant

from hadis.api import Allocation, DecisionInput, GpuPerf, GpuPool, Profile, Variant

E1_SLO = 6.0
E1_GPUS = 16


@lru_cache(maxsize=1)
def paper_e1_profile() -> Profile:
    """The packaged paper profile with every latency × 0.1 (the paper's E1 time compression)."""
    from hadis.profiles import load_profile

    return load_profile().time_scaled(0.1)


def e1(demand: float, *, gpus: int = E1_GPUS, slo: float = E1_SLO, **kw: object) -> DecisionInput:
    """The paper's E1 setup: one pool of L40S GPUs, SLO 6 s."""
    return DecisionInput(
        profile=paper_e1_profile(),
        demand_qps=demand,
        slo_s=slo,
        pools=[GpuPool(name="l40s", gpu_type="L40S", count=gpus)],
        **kw,  # type: ignore[arg-type]
    )


def two_gpu_profile() -> Profile:
    """``fast`` on T4 and on A100 (half the T4 latency); ``slow`` only on T4 (same numbers as factories)."""
    base = two_variant_profile()
    fast_t4 = base.variant("fast").perf_on("T4")
    fast_a100 = GpuPerf(
        gpu_type="A100",
        batches=[p.model_copy(update={"latency_s": p.latency_s / 2}) for p in fast_t4.batches],
    )
    fast = base.variant("fast").model_copy(update={"perf": [fast_t4, fast_a100]})
    return base.model_copy(update={"variants": [fast, base.variant("slow")]})


def two_pools(t4: int, a100: int) -> list[GpuPool]:
    return [GpuPool(name="t4", gpu_type="T4", count=t4), GpuPool(name="a100", gpu_type="A100", count=a100)]


def memory_bound_variant() -> Variant:
    """``big``: 0.2 s at batch 1, 5 GiB per image on a 16 GiB GPU, so batches above 2 do not fit."""
    return variant("big", 0.2, 25.0, mem=5.0)


def previous(policy: str, split: dict[str, float]) -> Allocation:
    """A previous decision that routed queries with ``split`` (workers are irrelevant to the baselines)."""
    return Allocation(policy=policy, split=split, demand_qps=1.0, expected_fid=20.0)


@st.composite
def decision_inputs(draw: st.DrawFn) -> DecisionInput:
    """Random valid inputs: one or two pools (possibly empty), any SLO, demand, subset, queue, previous."""
    profile = draw(st.sampled_from([two_gpu_profile(), paper_e1_profile()]))
    types = profile.gpu_types
    n_pools = draw(st.integers(1, 3))
    pools = [
        GpuPool(name=f"p{i}", gpu_type=draw(st.sampled_from(types)), count=draw(st.integers(0, 40)))
        for i in range(n_pools)
    ]
    names = profile.variant_names
    subset = draw(st.none() | st.lists(st.sampled_from(names), min_size=1, unique=True))
    allowed = subset or names
    demand = draw(st.floats(0, 5000, allow_nan=False) | st.sampled_from([0.0, 1e-6, 1e6]))
    queues = draw(st.dictionaries(st.sampled_from(names), st.floats(0, 500, allow_nan=False), max_size=4))
    arrivals = draw(st.dictionaries(st.sampled_from(names), st.floats(0, 500, allow_nan=False), max_size=4))
    prev_variant = draw(st.none() | st.sampled_from(names))
    prev = None
    if prev_variant is not None:
        prev = previous("infaas", {prev_variant: 1.0})
    elif len(allowed) > 1 and draw(st.booleans()):
        prev = previous("proteus", {allowed[0]: 0.5, allowed[1]: 0.5})
    return DecisionInput(
        profile=profile,
        demand_qps=demand,
        slo_s=draw(st.floats(0.01, 100, allow_nan=False)),
        pools=pools,
        variants=subset,
        queue_lengths=queues,
        arrival_qps=arrivals,
        previous=prev,
        time_limit_s=5.0,
    )


def check_invariants(inp: DecisionInput, a: Allocation) -> None:
    """What every non-cascade baseline decision must satisfy, whatever the input."""
    allowed = set(inp.allowed_variants)
    assert a.row is None
    assert a.split, "a non-cascade decision always routes queries somewhere"
    assert abs(sum(a.split.values()) - 1.0) < 1e-6
    assert set(a.split) <= allowed
    pools = {p.name: p for p in inp.pools}
    for va in a.variants:
        assert va.variant in allowed and va.replicas > 0
        perf = inp.profile.variant(va.variant).perf_on(pools[va.pool].gpu_type)
        assert perf.fits_memory(va.batch_size)
        assert va.latency_s == perf.latency(va.batch_size)
        assert abs(va.throughput_qps - va.replicas * va.batch_size / va.latency_s) < 1e-9
    for p in inp.pools:
        assert a.gpus_in_pool(p.name) <= p.count
    assert set(a.active_variants) <= set(a.split)
    assert a.demand_qps == inp.demand_qps
    assert a.feasible == (not a.shed)
    assert 0.0 <= a.shed_qps <= inp.demand_qps + 1e-9
    assert (a.shed_qps > 0) == a.shed
    fids = [inp.profile.variant(n).fid for n in a.split]
    assert min(fids) - 1e-9 <= a.expected_fid <= max(fids) + 1e-9
    assert a.reason


def same_decision(a: Allocation, b: Allocation) -> bool:
    """Equal apart from the measured solve time."""
    return a.model_copy(update={"solve_time_s": 0.0}) == b.model_copy(update={"solve_time_s": 0.0})
