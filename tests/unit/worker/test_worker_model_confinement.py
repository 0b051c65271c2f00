"""Issue 7: the worker refuses weights outside HADIS_MODEL_ROOT when it loads them, naming the
variable: ``..``, absolute paths elsewhere, symlinks out (the path itself or a file inside a local
pipeline directory). Hub ids stay allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from hadis_worker.settings import SettingsError, WorkerSettings, check_tree_confined, resolve_model


@pytest.fixture
def root(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    (models / "sd" / "unet").mkdir(parents=True)
    (models / "sd" / "model_index.json").write_text("{}")
    (models / "sd" / "unet" / "weights.safetensors").write_bytes(b"w")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "stolen.safetensors").write_bytes(b"s")
    return models


def test_a_pipeline_directory_inside_the_root_loads(root: Path) -> None:
    assert resolve_model("sd", root) == (root / "sd").resolve()
    assert resolve_model(str(root / "sd"), root) == (root / "sd").resolve()
    check_tree_confined(root / "sd", root, "HADIS_MODEL")  # no error
    # symlinks that stay inside the root are fine (the hub cache's snapshots -> blobs)
    (root / "sd" / "unet" / "alias.safetensors").symlink_to(root / "sd" / "unet" / "weights.safetensors")
    assert resolve_model("sd", root) == (root / "sd").resolve()


@pytest.mark.parametrize("escape", ["../outside", "sd/../../outside", "/etc", "~/"])
def test_a_model_path_leaving_the_root_is_refused(root: Path, escape: str) -> None:
    with pytest.raises(SettingsError, match=r"^HADIS_MODEL: .*outside HADIS_MODEL_ROOT="):
        resolve_model(escape, root)


def test_a_symlinked_model_directory_leading_out_is_refused(root: Path) -> None:
    (root / "evil").symlink_to(root.parent / "outside")
    with pytest.raises(SettingsError, match=r"^HADIS_MODEL: 'evil' resolves to .*outside"):
        resolve_model("evil", root)


def test_a_file_inside_the_pipeline_linking_out_is_refused(root: Path) -> None:
    (root / "sd" / "unet" / "extra.safetensors").symlink_to(root.parent / "outside" / "stolen.safetensors")
    with pytest.raises(SettingsError, match=r"^HADIS_MODEL: .*extra\.safetensors links to .*outside"):
        resolve_model("sd", root)


def test_a_subdirectory_linking_out_is_refused_without_following_it(root: Path) -> None:
    (root / "sd" / "text_encoder").symlink_to(root.parent / "outside", target_is_directory=True)
    with pytest.raises(SettingsError, match=r"^HADIS_MODEL: .*text_encoder links to"):
        resolve_model("sd", root)


def test_checkpoint_and_discriminator_paths_are_confined_too(root: Path) -> None:
    settings = WorkerSettings(variant="tiny-sd", model_root=root)
    for name, value in (
        ("HADIS_UNET_CHECKPOINT", "../outside/stolen.safetensors"),
        ("HADIS_DISCRIMINATOR_HEAD", "/etc/passwd"),
        ("HADIS_DISCRIMINATOR_CLIP", "../outside"),
    ):
        with pytest.raises(SettingsError, match=rf"^{name}: .*outside HADIS_MODEL_ROOT"):
            settings.local_path(name, value)
    (root / "clip").mkdir()
    (root / "clip" / "config.json").symlink_to(root.parent / "outside" / "stolen.safetensors")
    with pytest.raises(SettingsError, match=r"^HADIS_DISCRIMINATOR_CLIP: .*config\.json links to"):
        check_tree_confined(root / "clip", root, "HADIS_DISCRIMINATOR_CLIP")


def test_hub_ids_stay_allowed_with_a_root(root: Path) -> None:
    assert resolve_model("stabilityai/sdxl-turbo", root) == "stabilityai/sdxl-turbo"
    assert resolve_model("ByteDance/SDXL-Lightning", root) == "ByteDance/SDXL-Lightning"


def test_without_a_root_nothing_is_confined(root: Path) -> None:
    (root / "sd" / "link").symlink_to(root.parent / "outside")
    check_tree_confined(root / "sd", None, "HADIS_MODEL")
    assert resolve_model(str(root / "sd"), None) == root / "sd"
