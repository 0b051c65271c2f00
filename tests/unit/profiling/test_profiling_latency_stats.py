"""Pure latency arithmetic: quantiles, the largest batch that fits, measurements → profile, merging."""

from __future__ import annotations

import pytest

from hadis.api.profile import Profile
from hadis.profiles import load_profile
from hadis.profiling.latency_stats import (
    PLACEHOLDER_FID,
    BatchMeasurement,
    ProfileBuildError,
    VariantMeasurement,
    batches_to_measure,
    build_profile,
    largest_fitting_batch,
    quantile,
)


def vm(name: str, *batches: BatchMeasurement, steps: int = 4, guidance: float = 0.0) -> VariantMeasurement:
    return VariantMeasurement(
        name=name, model=f"/models/{name}", steps=steps, guidance_scale=guidance, batches=batches
    )


def ok(b: int, *lat: float, mem: float | None = None) -> BatchMeasurement:
    return BatchMeasurement(batch=b, latencies_s=lat, peak_memory_gib=mem)


def test_quantiles_interpolate_like_numpy() -> None:
    assert quantile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0], 0.9) == pytest.approx(10.0)
    assert quantile([1.0, 3.0], 0.9) == pytest.approx(2.8)
    assert quantile([5.0], 0.9) == 5.0
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_batch_measurement_checks_and_round_trips() -> None:
    m = ok(2, 0.5, 0.7, 0.6, mem=3.5)
    assert m.p50_s == 0.6 and m.p90_s == pytest.approx(0.68)
    assert BatchMeasurement.from_json(m.to_json()) == m
    oom = BatchMeasurement(batch=8, oom=True)
    assert BatchMeasurement.from_json(oom.to_json()) == oom and not oom.fits
    with pytest.raises(ValueError, match="no latencies"):
        BatchMeasurement(batch=1)
    with pytest.raises(ValueError, match="> 0"):
        BatchMeasurement(batch=1, latencies_s=(0.0,))


def test_batches_stop_at_the_first_that_ran_out_of_memory() -> None:
    done = [ok(1, 0.1), BatchMeasurement(batch=4, oom=True)]
    assert batches_to_measure([1, 2, 4, 8, 16], done) == [2]
    assert batches_to_measure([8, 1, 2], [ok(1, 0.1)]) == [2, 8]
    assert largest_fitting_batch(done) == 1
    assert largest_fitting_batch([BatchMeasurement(batch=1, oom=True)]) is None


def test_variant_measurement_round_trips_and_replaces_a_batch() -> None:
    m = vm("a", ok(1, 0.1)).with_batch(ok(2, 0.3)).with_batch(ok(1, 0.2))
    assert [b.batch for b in m.batches] == [1, 2] and m.batches[0].latencies_s == (0.2,)
    m = VariantMeasurement(**{**m.__dict__, "load_s": 1.5, "discriminator_s_per_image": 0.01})
    assert VariantMeasurement.from_json(m.to_json()) == m
    assert m.to_json()["largestBatch"] == 2


def test_new_profile_has_p50_latencies_placeholder_fids_and_no_sweep() -> None:
    a = vm("light", ok(1, 0.2, 0.4, 0.3, mem=2.0), ok(2, 0.5, 0.5), BatchMeasurement(batch=4, oom=True))
    b = vm("heavy", ok(1, 1.0))
    profile, placeholders = build_profile([a, b], gpu_type="H100", gpu_memory_gib=80.0, fids={"heavy": 20.0})
    assert isinstance(profile, Profile) and profile.reference_gpu_type == "H100" and profile.sweep == []
    perf = profile.variant("light").perf_on("H100")
    assert [(p.batch, p.latency_s, p.memory_gib, p.source) for p in perf.batches] == [
        (1, 0.3, 2.0, "measured"),
        (2, 0.5, None, "measured"),
    ]
    assert perf.gpu_memory_gib == 80.0
    assert placeholders == ["light"] and profile.variant("light").fid == PLACEHOLDER_FID
    assert profile.variant("heavy").fid == 20.0 and "placeholder" in profile.description
    assert Profile.model_validate(profile.to_wire()) == profile


def test_merging_adds_a_gpu_type_and_keeps_sweep_and_fids() -> None:
    base = load_profile()
    name = base.variants[0].name
    v = base.variant(name)
    m = vm(name, ok(1, 0.9), ok(2, 1.5), steps=v.steps, guidance=v.guidance_scale)
    merged, placeholders = build_profile([m], gpu_type="H100", base=base)
    assert placeholders == [] and merged.sweep == base.sweep and merged.name == base.name
    assert merged.variant(name).fid == v.fid and merged.gpu_types == ["L40S", "H100"]
    assert merged.variant(name).perf_on("L40S") == v.perf_on("L40S")
    assert merged.variant(name).perf_on("H100").latency(2) == 1.5
    # measuring the same GPU type again replaces its latencies
    again, _ = build_profile(
        [vm(name, ok(1, 0.8), steps=v.steps, guidance=v.guidance_scale)], gpu_type="H100", base=merged
    )
    assert [p.batch for p in again.variant(name).perf_on("H100").batches] == [1]


def test_merge_errors_name_the_variant_and_the_reason() -> None:
    base = load_profile()
    v = base.variants[0]
    with pytest.raises(ProfileBuildError, match=f"{v.name}.*steps={v.steps + 1}.*profile's settings"):
        build_profile(
            [vm(v.name, ok(1, 1.0), steps=v.steps + 1, guidance=v.guidance_scale)], gpu_type="L40S", base=base
        )
    with pytest.raises(ProfileBuildError, match=r"'brand-new'.*reference GPU type 'L40S'"):
        build_profile([vm("brand-new", ok(1, 1.0))], gpu_type="H100", base=base)
    with pytest.raises(ProfileBuildError, match="no batch size fitted"):
        build_profile([vm("x", BatchMeasurement(batch=1, oom=True))], gpu_type="cpu")
    with pytest.raises(ProfileBuildError, match=r"(?s)variant 'Bad_Name'.*name: String should match pattern"):
        build_profile([vm("Bad_Name", ok(1, 1.0))], gpu_type="cpu")
