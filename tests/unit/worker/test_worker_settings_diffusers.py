"""The diffusers engine's settings: read from the environment, bad values and escaping paths refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from hadis_worker.settings import SettingsError, WorkerSettings, resolve_local_path, resolve_model

BASE = {"HADIS_WORKER_VARIANT": "tiny-sd", "HADIS_ENGINE": "diffusers"}


def test_diffusers_variables_are_read(tmp_path: Path) -> None:
    s = WorkerSettings.from_env(
        {
            **BASE,
            "HADIS_MODEL": "models/sd",
            "HADIS_UNET_CHECKPOINT": "unet.safetensors",
            "HADIS_MODEL_ROOT": str(tmp_path),
            "HADIS_DEVICE": "cuda:1",
            "HADIS_DTYPE": "bfloat16",
            "HADIS_STEPS": "4",
            "HADIS_GUIDANCE_SCALE": "0",
            "HADIS_DISCRIMINATOR_CLIP": "clip",
            "HADIS_DISCRIMINATOR_HEAD": "head.pt",
        }
    )
    assert (s.model, s.unet_checkpoint, s.model_root) == ("models/sd", "unet.safetensors", tmp_path)
    assert (s.device, s.dtype, s.steps, s.guidance_scale) == ("cuda:1", "bfloat16", 4, 0.0)
    assert (s.discriminator_clip, s.discriminator_head) == ("clip", "head.pt")


def test_unset_means_defaults() -> None:
    s = WorkerSettings.from_env(BASE)
    assert (s.model, s.device, s.dtype, s.steps, s.guidance_scale, s.discriminator_clip) == (None,) * 6


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"HADIS_DEVICE": "gpu0"}, "HADIS_DEVICE"),
        ({"HADIS_DTYPE": "float8"}, "HADIS_DTYPE"),
        ({"HADIS_STEPS": "0"}, "HADIS_STEPS"),
        ({"HADIS_STEPS": "two"}, "HADIS_STEPS"),
        ({"HADIS_GUIDANCE_SCALE": "-1"}, "HADIS_GUIDANCE_SCALE"),
        ({"HADIS_GUIDANCE_SCALE": "high"}, "HADIS_GUIDANCE_SCALE"),
        ({"HADIS_DISCRIMINATOR_CLIP": "/clip"}, "HADIS_DISCRIMINATOR_HEAD"),
        ({"HADIS_DISCRIMINATOR_HEAD": "/head.pt"}, "HADIS_DISCRIMINATOR_CLIP"),
    ],
)
def test_bad_values_name_their_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        WorkerSettings.from_env({**BASE, **env})


def test_paths_are_confined_to_the_model_root(tmp_path: Path) -> None:
    root = tmp_path / "models"
    (root / "sd").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    assert resolve_local_path("sd", root, "HADIS_MODEL") == (root / "sd").resolve()
    assert resolve_local_path(str(root / "sd"), root, "HADIS_MODEL") == (root / "sd").resolve()
    for escape in ("../secret", "sd/../../secret", str(tmp_path / "secret"), "/etc"):
        with pytest.raises(SettingsError, match=r"HADIS_MODEL: .*outside HADIS_MODEL_ROOT"):
            resolve_model(escape, root)
    (root / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(SettingsError, match="HADIS_UNET_CHECKPOINT"):
        resolve_local_path("link", root, "HADIS_UNET_CHECKPOINT")
    settings = WorkerSettings(variant="tiny-sd", model_root=root)
    with pytest.raises(SettingsError, match="HADIS_DISCRIMINATOR_HEAD"):
        settings.local_path("HADIS_DISCRIMINATOR_HEAD", "../secret/head.pt")


def test_local_directories_and_hub_ids(tmp_path: Path) -> None:
    (tmp_path / "sd").mkdir()
    assert resolve_model(str(tmp_path / "sd"), None) == tmp_path / "sd"
    assert resolve_model("sd", tmp_path) == (tmp_path / "sd").resolve()
    # not on disk: a hub id when it can be one (also with a root: it is looked for inside first)
    assert resolve_model("stabilityai/sdxl-turbo", None) == "stabilityai/sdxl-turbo"
    assert resolve_model("stabilityai/sdxl-turbo", tmp_path) == "stabilityai/sdxl-turbo"
    for not_hub in ("/nowhere/model", "./model", "../model", "a/b/c"):
        with pytest.raises(SettingsError, match="HADIS_MODEL"):
            resolve_model(not_hub, None)
