"""The tiny diffusers example fits the tiny profile; local mode gives diffusers workers their files."""

from __future__ import annotations

from pathlib import Path

import pytest

from hadis.api.service import HadisServiceSpec
from hadis.local.worker_env import diffusers_env
from hadis.policy.inputs import build_decision_input, check_spec_against_profile
from hadis.policy.pareto import build_pareto_table
from hadis.profiles import load_profile
from hadis.specs import load_spec, parse_spec

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "local-tiny-diffusers.yaml"


def spec_on(tiny_models: dict[str, Path]) -> HadisServiceSpec:
    """The shipped example with its out/tiny paths pointing at the fixture's models."""
    text = EXAMPLE.read_text().replace("out/tiny", str(tiny_models["profile"].parent))
    return parse_spec(text, str(EXAMPLE)).spec


def test_the_example_parses_with_its_diffusers_fields() -> None:
    spec = load_spec(EXAMPLE).spec
    assert spec.engine == "diffusers" and [p.count for p in spec.gpu_pools] == [2]
    assert spec.variants[1].unet_checkpoint == "out/tiny/tiny-sdxl-lightning-unet.safetensors"
    assert spec.discriminator is not None and spec.discriminator.clip == "out/tiny/discriminator/clip"
    wire = spec.to_wire()
    assert wire["variants"][1]["unetCheckpoint"] and set(wire["discriminator"]) == {"clip", "head"}


@pytest.mark.slow
def test_the_example_fits_the_tiny_profile(tiny_models: dict[str, Path]) -> None:
    spec = spec_on(tiny_models)
    profile = load_profile(spec.profile.builtin or "")
    check_spec_against_profile(spec, profile)
    inp = build_decision_input(spec, profile, build_pareto_table(profile.sweep), 2.0)
    assert inp.total_gpus == 2
    light = diffusers_env(spec, profile, "tiny-sd")
    assert light["HADIS_MODEL"] == str(tiny_models["sd"])  # the profile's model: the spec names none
    assert (light["HADIS_STEPS"], light["HADIS_GUIDANCE_SCALE"]) == ("2", "0.0")
    assert light["HADIS_DISCRIMINATOR_CLIP"] == str(tiny_models["clip"])
    assert light["HADIS_DISCRIMINATOR_HEAD"] == str(tiny_models["head"])
    assert "HADIS_UNET_CHECKPOINT" not in light
    heavy = diffusers_env(spec, profile, "tiny-sdxl-lightning")
    assert heavy["HADIS_MODEL"] == str(tiny_models["sdxl"])
    assert heavy["HADIS_UNET_CHECKPOINT"] == str(tiny_models["unet_checkpoint"])


def test_the_spec_model_overrides_the_profile_model(paper_profile) -> None:  # type: ignore[no-untyped-def]
    spec = HadisServiceSpec.model_validate(
        {
            "variants": [{"name": "sdxl-lightning", "model": "/models/sdxl-base"}, {"name": "sd35-medium"}],
            "sloSeconds": 5,
            "gpuPools": [{"name": "g", "gpuType": "L40S", "count": 1}],
        }
    )
    assert diffusers_env(spec, paper_profile, "sdxl-lightning")["HADIS_MODEL"] == "/models/sdxl-base"
    medium = diffusers_env(spec, paper_profile, "sd35-medium")
    assert medium["HADIS_MODEL"] == paper_profile.variant("sd35-medium").model
    assert not any(k.startswith("HADIS_DISCRIMINATOR") for k in medium)
