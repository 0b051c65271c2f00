"""Small synthetic profiles and inputs for tests (tests never need ../shared/data)."""

from __future__ import annotations

from hadis.api import BatchPoint, CascadeRow, DecisionInput, GpuPerf, GpuPool, Profile, Variant

BATCHES = (1, 2, 4, 8)


def variant(
    name: str, l1: float, fid: float, *, gpu: str = "T4", discount: float = 0.9, mem: float | None = None
) -> Variant:
    """A variant whose batch latency follows L(b) = b · L(1) · discount for b > 1."""
    points = [
        BatchPoint(
            batch=b,
            latency_s=l1 if b == 1 else b * l1 * discount,
            memory_gib=None if mem is None else mem * b,
            source="measured" if b == 1 else "rule",
        )
        for b in BATCHES
    ]
    return Variant(
        name=name,
        model=f"local/{name}",
        steps=4,
        guidance_scale=0.0,
        fid=fid,
        perf=[GpuPerf(gpu_type=gpu, gpu_memory_gib=None if mem is None else 16.0, batches=points)],
    )


def row(light: str, heavy: str, theta: float, tau: float, cost: float, fid: float) -> CascadeRow:
    return CascadeRow(
        light=light, heavy=heavy, theta=theta, tau=tau, p=theta + (1 - theta) * tau, cost_s=cost, fid=fid
    )


def two_variant_profile() -> Profile:
    """fast (0.1 s, FID 30) and slow (1.0 s, FID 20); a sweep over θ with τ = 0 and τ = 0.5."""
    fast, slow = variant("fast", 0.1, 30.0), variant("slow", 1.0, 20.0)
    sweep = []
    for i in range(11):
        th = i / 10
        for tau in (0.0, 0.5):
            p = th + (1 - th) * tau
            cost = 0.1 * (1 - th) + 1.0 * p
            sweep.append(row("fast", "slow", th, tau, round(cost, 4), round(30 - 10 * p - 0.5 * tau, 4)))
    return Profile(name="two", reference_gpu_type="T4", variants=[fast, slow], sweep=sweep)


def decision(profile: Profile, demand: float, gpus: int, slo: float, **kw: object) -> DecisionInput:
    from hadis.policy.pareto import build_pareto_table

    return DecisionInput(
        profile=profile,
        table=build_pareto_table(profile.sweep),
        demand_qps=demand,
        slo_s=slo,
        pools=[GpuPool(name="pool", gpu_type=profile.reference_gpu_type, count=gpus)],
        **kw,  # type: ignore[arg-type]
    )
