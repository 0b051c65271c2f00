"""The packaged default profile, the latency rule, and profile file errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hadis.errors import InputFileError
from hadis.profiles import load_profile, load_prompt_scores, parse_profile


def test_paper_profile_shape(paper_profile) -> None:  # type: ignore[no-untyped-def]
    p = paper_profile
    assert p.variant_names == ["sdxl-lightning", "sd35-large-turbo", "sd35-medium", "sd35-large"]
    assert p.lightest().name == "sdxl-lightning" and p.heaviest().name == "sd35-large"
    assert "arXiv 2509.00642" in p.attribution
    assert len(p.sweep) == 726


def test_latency_rule_is_visible_in_the_data(paper_profile) -> None:  # type: ignore[no-untyped-def]
    rule = paper_profile.latency_rule
    assert rule.discount == 0.9 and "b * L(1)" in rule.formula
    turbo = paper_profile.variant("sd35-large-turbo").perf_on("L40S")
    l1 = turbo.latency(1)
    for pt in turbo.batches[1:]:
        assert pt.source == "rule"
        assert pt.latency_s == pytest.approx(pt.batch * l1 * rule.discount)
    large = paper_profile.variant("sd35-large").perf_on("L40S")
    # SD3.5-Large's measured super-linear batches override the rule where they exist
    assert large.point(2).source == "measured" and large.latency(2) == pytest.approx(2.21 * 27.0)
    assert large.point(4).memory_gib is not None and large.fits_memory(4)
    assert large.point(8).source == "rule"


def test_time_scaling(paper_profile) -> None:  # type: ignore[no-untyped-def]
    fast = paper_profile.time_scaled(0.1)
    assert fast.variant("sd35-large").perf_on("L40S").latency(1) == pytest.approx(2.7)
    assert fast.sweep[0].cost_s == pytest.approx(paper_profile.sweep[0].cost_s * 0.1)
    assert paper_profile.variant("sd35-large").perf_on("L40S").latency(1) == 27.0
    with pytest.raises(ValueError, match="time scale"):
        paper_profile.time_scaled(0)


def test_prompt_scores_cover_every_variant(paper_profile) -> None:  # type: ignore[no-untyped-def]
    s = load_prompt_scores()
    assert s.size == 5000
    assert set(s.p_real) == set(paper_profile.variant_names)
    assert all(a.shape == (5000, 4) for a in s.p_real.values())
    assert s.index(5000) == 0


def test_profile_file_errors_name_file_and_field(tmp_path: Path, paper_profile) -> None:  # type: ignore[no-untyped-def]
    bad = paper_profile.to_wire()
    bad["variants"][0]["perf"][0]["batches"][0]["latencyS"] = -1  # type: ignore[index]
    f = tmp_path / "p.json"
    f.write_text(json.dumps(bad))
    with pytest.raises(InputFileError) as e:
        load_profile(f)
    assert str(f) in str(e.value) and "variants.0.perf.0.batches.0.latencyS" in str(e.value)
    with pytest.raises(InputFileError, match="not valid JSON"):
        parse_profile("{", "x.json")
    with pytest.raises(InputFileError, match="cannot read"):
        load_profile(tmp_path / "missing.json")
    with pytest.raises(InputFileError, match="unknown built-in profile 'nope'"):
        load_profile("nope")


def test_sweep_referring_to_unknown_variant_is_rejected(paper_profile) -> None:  # type: ignore[no-untyped-def]
    bad = paper_profile.to_wire()
    bad["sweep"][3]["heavy"] = "sd99"  # type: ignore[index]
    with pytest.raises(InputFileError, match=r"sweep\[3\].heavy: unknown variant 'sd99'"):
        parse_profile(json.dumps(bad), "p.json")


def test_reference_prompts_align_with_the_scores(tmp_path: Path) -> None:
    from hadis.profiles import load_reference_prompts

    prompts = load_reference_prompts()
    assert len(prompts) == load_prompt_scores().size == 5000
    assert prompts[1] == "the sail is white"
    empty = tmp_path / "x.prompts.txt"
    empty.write_text("\n\n")
    with pytest.raises(InputFileError, match="no prompts"):
        load_reference_prompts(empty)
