#!/usr/bin/env python3
"""Regenerate the packaged default profile and prompt scores from the HADIS L40S artifact data.

    python scripts/build_default_profile.py [../shared/data/hadis-l40s]

Writes operator/hadis/data/profiles/hadis-paper-l40s.json (variants, batch latencies, sweep) and
operator/hadis/data/profiles/hadis-paper-l40s.prompts.csv (router score and discriminator p_real
per prompt). A contract test checks that the packaged files equal what this script produces.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hadis.profiles import convert_artifact, write_profile, write_prompt_scores

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "operator" / "hadis" / "data" / "profiles"


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "hadis-l40s"
    profile, scores = convert_artifact(src)
    write_profile(profile, OUT / f"{profile.name}.json")
    write_prompt_scores(scores, OUT / f"{profile.name}.prompts.csv")
    print(
        f"wrote {profile.name}: {len(profile.variants)} variants, {len(profile.sweep)} sweep rows, "
        f"{len(scores.router)} prompts -> {OUT}"
    )


if __name__ == "__main__":
    main()
