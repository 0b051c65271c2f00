"""What ``hadis profile latency`` prints and writes beside the profile (pure: text and JSON data).

The profile keeps only the p50 and the memory of each batch size; the report (``OUT.latency.json``)
keeps every figure, and says how memory, swap time and router overhead were (not) measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hadis.api.profile import Profile
from hadis.profiling.latency_stats import VariantMeasurement


def build_report(
    measured: Sequence[VariantMeasurement],
    settings: Mapping[str, Mapping[str, Any]],
    *,
    profile_path: str,
    gpu_type: str,
    device: str,
    process_peak_rss_gib: float | None,
) -> dict[str, Any]:
    """The report: every measurement, the settings of each variant, how each figure was taken."""
    cuda = device.startswith("cuda")
    return {
        "kind": "HadisLatencyReport",
        "profile": profile_path,
        "gpuType": gpu_type,
        "device": device,
        "memory": "torch.cuda.max_memory_allocated per batch size"
        if cuda
        else "not measured on the CPU (null); processPeakRssGib is the whole process's peak resident set",
        "processPeakRssGib": process_peak_rss_gib,
        "swap": "pipeline.to(device) from host memory" if cuda else "not measured on the CPU (null)",
        "routerOverhead": "not measured here: bench/bench_router.py measures the gateway's router per prompt",
        "variants": [{"settings": dict(settings.get(m.name, {})), **m.to_json()} for m in measured],
    }


def summary_lines(measured: Sequence[VariantMeasurement]) -> list[str]:
    """A table of p50/p90/peak memory per variant and batch size, and one line of the rest per variant."""
    lines = [f"{'variant':<22} {'batch':>5} {'p50 s':>8} {'p90 s':>8} {'peak GiB':>9}"]
    for m in measured:
        for b in m.batches:
            if b.oom:
                lines.append(f"{m.name:<22} {b.batch:>5} {'out of memory':>27}")
                continue
            mem = f"{b.peak_memory_gib:.2f}" if b.peak_memory_gib is not None else "unknown"
            lines.append(f"{m.name:<22} {b.batch:>5} {b.p50_s:>8.3f} {b.p90_s:>8.3f} {mem:>9}")
        swap = f"{m.swap_s:.2f} s" if m.swap_s is not None else "not measured (CPU)"
        disc = m.discriminator_s_per_image
        disc_text = f" · discriminator {disc * 1000:.1f} ms/image" if disc is not None else ""
        load = f"{m.load_s:.2f} s" if m.load_s is not None else "not measured"
        lines.append(
            f"  {m.name}: largest batch that fits {m.largest_batch} · load {load} · swap {swap}{disc_text}"
        )
    return lines


def next_steps(profile: Profile, placeholders: Sequence[str]) -> list[str]:
    """What the profile still lacks, and which command provides it."""
    lines = []
    if not profile.sweep:
        lines.append(
            "the profile has no cascade sweep: hadis profile quality produces it "
            "(or --merge a profile with one)"
        )
    if placeholders:
        lines.append(
            f"FID of {', '.join(placeholders)} is a placeholder: hadis profile quality measures it "
            "(or give --fid)"
        )
    return lines
