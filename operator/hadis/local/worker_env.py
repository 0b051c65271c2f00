"""The diffusers engine's part of a local worker's environment (HADIS_MODEL and friends)."""

from __future__ import annotations

from hadis.api.profile import Profile
from hadis.api.service import HadisServiceSpec


def diffusers_env(spec: HadisServiceSpec, profile: Profile, variant: str) -> dict[str, str]:
    """What a diffusers worker for ``variant`` needs beyond the common settings.

    The model is the spec variant's ``model``, else the profile variant's; steps and guidance are
    the profile variant's; the UNet checkpoint is the spec variant's; the discriminator (when the
    spec has one) goes to every worker, since any variant may serve as a light model.
    """
    vspec = next(v for v in spec.variants if v.name == variant)
    pvar = profile.variant(variant)
    env = {
        "HADIS_MODEL": vspec.model or pvar.model,
        "HADIS_STEPS": str(pvar.steps),
        "HADIS_GUIDANCE_SCALE": str(pvar.guidance_scale),
    }
    if vspec.unet_checkpoint is not None:
        env["HADIS_UNET_CHECKPOINT"] = vspec.unet_checkpoint
    if spec.discriminator is not None:
        env["HADIS_DISCRIMINATOR_CLIP"] = spec.discriminator.clip
        env["HADIS_DISCRIMINATOR_HEAD"] = spec.discriminator.head
    return env
