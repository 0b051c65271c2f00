"""Contract: the packaged default profile is exactly what scripts/build_default_profile.py makes."""

from __future__ import annotations

from pathlib import Path

from hadis.profiles import load_prompt_scores


def test_packaged_profile_matches_the_artifact(shared_data: Path, paper_profile) -> None:  # type: ignore[no-untyped-def]
    """Contract: the packaged files are exactly what scripts/build_default_profile.py produces."""
    from hadis.profiles import convert_artifact

    profile, scores = convert_artifact(shared_data / "hadis-l40s")
    assert profile == paper_profile
    packaged = load_prompt_scores()
    assert (abs(packaged.router - scores.router) < 1e-4).all()
