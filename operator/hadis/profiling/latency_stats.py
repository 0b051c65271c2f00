"""Latency measurements → the planning core's :class:`~hadis.api.profile.Profile` (pure).

A measurement is the repeated wall-clock latency of one batch size of one variant (or the fact
that it ran out of memory). This module turns them into p50/p90, finds the largest batch that
fits, builds a variant's :class:`~hadis.api.profile.GpuPerf` (``latency_s`` = p50, ``source =
"measured"``) and merges it into a new or an existing profile (a new GPU type for known
variants, or new variants).

A profile variant needs a single-model FID, which latency profiling cannot measure: a variant the
merged profile does not know, and for which no FID is given, gets :data:`PLACEHOLDER_FID` and the
profile's description says so (``hadis profile quality`` measures it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from hadis.api.base import describe_validation_error
from hadis.api.profile import BatchPoint, GpuPerf, Profile, Variant

#: The FID written for a variant whose quality nobody measured yet (see the module docstring).
PLACEHOLDER_FID = 999.0


class ProfileBuildError(ValueError):
    """Measurements that do not make a valid profile; the message says which variant and why."""


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile with linear interpolation between order statistics (numpy's default)."""
    if not values:
        raise ValueError("quantile of no values")
    if not 0 <= q <= 1:
        raise ValueError(f"quantile must be within [0, 1], got {q}")
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class BatchMeasurement:
    """The repeats of one batch size; ``oom`` when it did not fit (then ``latencies_s`` is empty)."""

    batch: int
    latencies_s: tuple[float, ...] = ()
    peak_memory_gib: float | None = None
    oom: bool = False

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ValueError(f"batch size must be ≥ 1, got {self.batch}")
        if not self.oom and not self.latencies_s:
            raise ValueError(f"batch {self.batch}: no latencies and not out of memory")
        if any(not (x > 0 and math.isfinite(x)) for x in self.latencies_s):
            raise ValueError(f"batch {self.batch}: latencies must be finite and > 0, got {self.latencies_s}")

    @property
    def fits(self) -> bool:
        return not self.oom

    @property
    def p50_s(self) -> float:
        return quantile(self.latencies_s, 0.5)

    @property
    def p90_s(self) -> float:
        return quantile(self.latencies_s, 0.9)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"batch": self.batch, "oom": self.oom, "latenciesS": list(self.latencies_s)}
        if self.latencies_s:
            out.update(p50S=round(self.p50_s, 6), p90S=round(self.p90_s, 6))
        out["peakMemoryGib"] = self.peak_memory_gib
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> BatchMeasurement:
        lat = data.get("latenciesS", [])
        mem = data.get("peakMemoryGib")
        batch = data["batch"]
        if not isinstance(lat, list) or not isinstance(batch, int):
            raise ValueError(f"not a batch measurement: {dict(data)}")
        return cls(
            batch=batch,
            latencies_s=tuple(float(x) for x in lat),
            peak_memory_gib=float(mem) if isinstance(mem, int | float) else None,
            oom=bool(data.get("oom", False)),
        )


def batches_to_measure(planned: Sequence[int], done: Sequence[BatchMeasurement]) -> list[int]:
    """The planned batch sizes still to run: not measured yet and smaller than the first that ran out
    of memory (a larger batch will not fit either)."""
    measured = {m.batch for m in done}
    oom = [m.batch for m in done if m.oom]
    limit = min(oom) if oom else None
    return [b for b in sorted(set(planned)) if b not in measured and (limit is None or b < limit)]


def largest_fitting_batch(measurements: Sequence[BatchMeasurement]) -> int | None:
    """The largest batch size that ran (None when not even the smallest fitted)."""
    fitting = [m.batch for m in measurements if m.fits]
    return max(fitting) if fitting else None


@dataclass(frozen=True)
class VariantMeasurement:
    """Everything measured for one variant on one device."""

    name: str
    model: str
    steps: int
    guidance_scale: float
    batches: tuple[BatchMeasurement, ...] = field(default_factory=tuple)
    #: seconds to load the pipeline from disk (onto the CPU, in the profiled dtype)
    load_s: float | None = None
    #: seconds to move the loaded pipeline from host memory to the GPU; None: not measured (CPU)
    swap_s: float | None = None
    #: discriminator seconds per image (batched scoring of generated images); None: not measured
    discriminator_s_per_image: float | None = None

    def with_batch(self, b: BatchMeasurement) -> VariantMeasurement:
        kept = tuple(x for x in self.batches if x.batch != b.batch)
        return replace(self, batches=tuple(sorted((*kept, b), key=lambda x: x.batch)))

    @property
    def largest_batch(self) -> int | None:
        return largest_fitting_batch(self.batches)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "model": self.model,
            "steps": self.steps,
            "guidanceScale": self.guidance_scale,
            "loadS": self.load_s,
            "swapS": self.swap_s,
            "discriminatorSPerImage": self.discriminator_s_per_image,
            "largestBatch": self.largest_batch,
            "batches": [b.to_json() for b in self.batches],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VariantMeasurement:
        return cls(
            name=str(data["name"]),
            model=str(data["model"]),
            steps=int(data["steps"]),
            guidance_scale=float(data["guidanceScale"]),
            batches=tuple(BatchMeasurement.from_json(b) for b in data.get("batches", [])),
            load_s=_opt_float(data.get("loadS")),
            swap_s=_opt_float(data.get("swapS")),
            discriminator_s_per_image=_opt_float(data.get("discriminatorSPerImage")),
        )


def _opt_float(x: object) -> float | None:
    return float(x) if isinstance(x, int | float) else None


def gpu_perf(m: VariantMeasurement, gpu_type: str, gpu_memory_gib: float | None) -> GpuPerf:
    """The variant's latency profile on ``gpu_type``: p50 of every batch size that fitted."""
    points = [
        BatchPoint(batch=b.batch, latency_s=b.p50_s, memory_gib=b.peak_memory_gib or None, source="measured")
        for b in sorted(m.batches, key=lambda b: b.batch)
        if b.fits
    ]
    if not points:
        tried = sorted(b.batch for b in m.batches)
        raise ProfileBuildError(
            f"variant {m.name!r}: no batch size fitted on {gpu_type} (tried {tried}), "
            "so it has no latency profile there"
        )
    return GpuPerf(gpu_type=gpu_type, gpu_memory_gib=gpu_memory_gib, batches=points)


def build_profile(
    measured: Sequence[VariantMeasurement],
    *,
    gpu_type: str,
    gpu_memory_gib: float | None = None,
    base: Profile | None = None,
    name: str | None = None,
    fids: Mapping[str, float] | None = None,
) -> tuple[Profile, list[str]]:
    """The profile with ``measured`` on ``gpu_type``, and the variants whose FID is a placeholder.

    Without ``base``: a new profile (reference GPU type ``gpu_type``, no cascade sweep). With
    ``base``: its variants, sweep and router are kept; a measured variant it knows gets its
    ``gpu_type`` latencies replaced (its FID, steps and guidance must stay those of ``base``), a new
    one is appended. ``fids`` gives single-model FIDs of new variants.
    """
    if not measured:
        raise ProfileBuildError("nothing was measured")
    fids = dict(fids or {})
    placeholders: list[str] = []
    variants: list[Variant] = list(base.variants) if base else []
    known = {v.name: i for i, v in enumerate(variants)}
    for m in measured:
        perf = gpu_perf(m, gpu_type, gpu_memory_gib)
        if m.name in known:
            old = variants[known[m.name]]
            if (old.steps, old.guidance_scale) != (m.steps, m.guidance_scale):
                raise ProfileBuildError(
                    f"variant {m.name!r}: measured with steps={m.steps}, guidance={m.guidance_scale:g}, "
                    f"but the merged profile serves it with steps={old.steps}, "
                    f"guidance={old.guidance_scale:g}: measure with the profile's settings"
                )
            kept = [g for g in old.perf if g.gpu_type != gpu_type]
            update: dict[str, object] = {"perf": [*kept, perf]}
            if m.name in fids:
                update["fid"] = fids[m.name]
            variants[known[m.name]] = old.model_copy(update=update)
            continue
        fid = fids.get(m.name)
        if fid is None:
            placeholders.append(m.name)
        try:
            variants.append(
                Variant(
                    name=m.name,
                    model=m.model,
                    steps=m.steps,
                    guidance_scale=m.guidance_scale,
                    fid=PLACEHOLDER_FID if fid is None else fid,
                    perf=[perf],
                )
            )
        except ValidationError as e:
            raise ProfileBuildError(describe_validation_error(e, f"variant {m.name!r}")) from None
        known[m.name] = len(variants) - 1
    reference = base.reference_gpu_type if base else gpu_type
    missing = [v.name for v in variants if not v.has_gpu(reference)]
    if missing:
        raise ProfileBuildError(
            f"variant(s) {missing} have no latencies on the merged profile's reference GPU type "
            f"{reference!r} (measured here: {gpu_type!r}); measure them on a {reference} too, or start a "
            "new profile without --merge"
        )
    description = base.description if base else f"Latencies measured by hadis profile latency on {gpu_type}."
    if placeholders:
        description += (
            f" FID of {', '.join(placeholders)}: placeholder {PLACEHOLDER_FID:g}, not measured "
            "(hadis profile quality measures it)."
        )
    data: dict[str, Any] = base.to_wire() if base else {"referenceGpuType": reference}
    data["name"] = name or (base.name if base else "measured")
    data["description"] = description
    data["variants"] = [v.to_wire() for v in variants]
    try:
        return Profile.model_validate(data), placeholders
    except ValidationError as e:
        raise ProfileBuildError(describe_validation_error(e, "the measured profile")) from None
