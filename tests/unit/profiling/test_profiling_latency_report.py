"""What ``hadis profile latency`` prints and writes beside the profile."""

from __future__ import annotations

from hadis.profiling.latency_report import build_report, next_steps, summary_lines
from hadis.profiling.latency_stats import BatchMeasurement, VariantMeasurement, build_profile

GPU = VariantMeasurement(
    name="light",
    model="/m/light",
    steps=2,
    guidance_scale=0.0,
    batches=(
        BatchMeasurement(batch=1, latencies_s=(0.2, 0.3), peak_memory_gib=4.5),
        BatchMeasurement(batch=2, oom=True),
    ),
    load_s=3.0,
    swap_s=0.5,
    discriminator_s_per_image=0.012,
)
CPU = VariantMeasurement(
    name="cpu-one",
    model="/m/c",
    steps=2,
    guidance_scale=0.0,
    batches=(BatchMeasurement(batch=1, latencies_s=(1.0,)),),
)


def test_summary_shows_oom_memory_swap_and_discriminator() -> None:
    lines = summary_lines([GPU, CPU])
    assert lines[1].split() == ["light", "1", "0.250", "0.290", "4.50"]
    assert lines[2].split() == ["light", "2", "out", "of", "memory"]
    assert "largest batch that fits 1 · load 3.00 s · swap 0.50 s · discriminator 12.0 ms/image" in lines[3]
    assert lines[4].split()[-1] == "unknown" and "swap not measured (CPU)" in lines[5]
    assert "discriminator" not in lines[5]


def test_report_says_how_each_figure_was_taken() -> None:
    cuda = build_report(
        [GPU],
        {"light": {"repeats": 2}},
        profile_path="p.json",
        gpu_type="H100",
        device="cuda:0",
        process_peak_rss_gib=None,
    )
    assert cuda["memory"].startswith("torch.cuda.max_memory_allocated") and cuda["swap"].startswith(
        "pipeline.to"
    )
    (v,) = cuda["variants"]
    assert v["settings"] == {"repeats": 2} and v["largestBatch"] == 1 and v["swapS"] == 0.5
    cpu = build_report(
        [CPU], {}, profile_path="p.json", gpu_type="cpu", device="cpu", process_peak_rss_gib=1.5
    )
    assert "not measured on the CPU" in cpu["memory"] and "not measured" in cpu["swap"]
    assert "bench_router" in cpu["routerOverhead"] and cpu["processPeakRssGib"] == 1.5


def test_next_steps_name_hadis_profile_quality() -> None:
    profile, placeholders = build_profile([CPU], gpu_type="cpu")
    lines = next_steps(profile, placeholders)
    assert len(lines) == 2 and all("hadis profile quality" in line for line in lines)
    assert next_steps(profile, []) == [lines[0]]
