"""The diffusers engine and the CLIP discriminator on tiny random-weight models, through the real loaders."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import pytest

from hadis.api.wire import GenerateRequest
from hadis_worker.config_watch import VariantRuntime
from hadis_worker.settings import SettingsError, WorkerSettings

pytestmark = pytest.mark.slow
torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from hadis_worker.discriminator import (  # noqa: E402
    HEAD_KEYS,
    Discriminator,
    DiscriminatorError,
    DiscriminatorHead,
    load_head,
    save_head,
)
from hadis_worker.engines.diffusers_engine import DiffusersEngine, LatencyModel  # noqa: E402


def req(i: int, variant: str, *, seed: int | None = None, size: int = 64, **kw: object) -> GenerateRequest:
    return GenerateRequest.model_validate(
        {
            "request_id": f"r{i}",
            "prompt": kw.pop("prompt", "a red fox in the snow"),
            "variant": variant,
            "width": size,
            "height": size,
            "seed": i if seed is None else seed,
            "deadline_unix_s": time.time() + 600,
            **kw,
        }
    )


def engine(tiny: dict[str, Path], variant: str, **kw: object) -> DiffusersEngine:
    settings = WorkerSettings(
        variant=variant, engine="diffusers", profile=str(tiny["profile"]), device="cpu", **kw
    )
    e = DiffusersEngine.from_settings(settings)
    asyncio.run(e.warmup())
    return e


def pixels(png: bytes) -> tuple[tuple[int, int], bytes]:
    from PIL import Image

    im = Image.open(io.BytesIO(png))
    return im.size, im.convert("RGB").tobytes()


@pytest.fixture(scope="module")
def light(tiny_models: dict[str, Path]) -> DiffusersEngine:
    return engine(
        tiny_models,
        "tiny-sd",
        discriminator_clip=str(tiny_models["clip"]),
        discriminator_head=str(tiny_models["head"]),
    )


@pytest.fixture(scope="module")
def heavy(tiny_models: dict[str, Path]) -> DiffusersEngine:
    return engine(tiny_models, "tiny-sdxl-lightning", unet_checkpoint=str(tiny_models["unet_checkpoint"]))


def test_sd_pipeline_generates_seeded_batches(light: DiffusersEngine) -> None:
    assert type(light.pipe).__name__ == "StableDiffusionPipeline"
    assert light.plan.steps == 2 and light.plan.dtype == "float32"
    out = asyncio.run(
        light.generate([req(0, "tiny-sd", seed=7), req(1, "tiny-sd", seed=8), req(2, "tiny-sd", seed=7)])
    )
    images = [pixels(png) for png, _ in out]
    assert all(size == (64, 64) for size, _ in images)
    assert images[0] == images[2]  # same seed, same image
    assert images[0] != images[1]  # another seed, another image
    again = asyncio.run(light.generate([req(3, "tiny-sd", seed=7)]))
    assert pixels(again[0][0]) == images[0]  # and alone as in a batch
    assert all(p is None for _, p in out)  # nobody asked for p_real


def test_mixed_settings_in_one_batch(light: DiffusersEngine) -> None:
    batch = [
        req(0, "tiny-sd", seed=1),
        req(1, "tiny-sd", seed=1, size=128),
        req(2, "tiny-sd", seed=1, num_inference_steps=3),
        req(3, "tiny-sd", seed=1, negative_prompt="blurry", guidance_scale=5.0),
        req(4, "tiny-sd", seed=1),
    ]
    out = asyncio.run(light.generate(batch))
    images = [pixels(png) for png, _ in out]
    assert [size for size, _ in images] == [(64, 64), (128, 128), (64, 64), (64, 64), (64, 64)]
    assert images[0] == images[4]
    assert len({px for _, px in images}) == 4  # steps and guidance change the image
    alone = [pixels(asyncio.run(light.generate([r]))[0][0]) for r in batch[1:4]]
    assert alone == images[1:4]  # each group gives what the request alone gives


def test_live_config_sets_the_sampler(light: DiffusersEngine) -> None:
    light.configure(VariantRuntime(batch_size=2, steps=3, guidance_scale=1.0))
    try:
        assert light.settings_for(req(0, "tiny-sd")) == (64, 64, 3, 1.0)
        assert light.settings_for(req(0, "tiny-sd", num_inference_steps=5)) == (64, 64, 5, 1.0)
    finally:
        light.configure(VariantRuntime(batch_size=1))
    assert light.settings_for(req(0, "tiny-sd")) == (64, 64, 2, 0.0)  # the profile variant's


def test_light_worker_scores_only_what_is_asked(light: DiffusersEngine) -> None:
    out = asyncio.run(
        light.generate(
            [req(0, "tiny-sd", discriminate=True), req(1, "tiny-sd"), req(2, "tiny-sd", discriminate=True)]
        )
    )
    p = [p_real for _, p_real in out]
    assert p[1] is None and p[0] is not None and p[2] is not None
    assert 0.0 <= p[0] <= 1.0 and 0.0 <= p[2] <= 1.0


def test_latency_estimate_is_measured(light: DiffusersEngine) -> None:
    assert 0 < light.expected_latency_s(1) < 30  # seeded by the warm-up
    asyncio.run(light.generate([req(i, "tiny-sd") for i in range(3)]))
    assert light.latency.expected(3) > 0
    model = LatencyModel(alpha=0.5)
    model.observe(2, 1.0)
    model.observe(2, 2.0)
    assert model.expected(2) == pytest.approx(1.5)
    assert model.expected(4) == pytest.approx(3.0)  # scaled from the nearest measured size
    assert model.expected(1) == pytest.approx(0.75)


def test_sdxl_pipeline_and_the_lightning_unet(tiny_models: dict[str, Path], heavy: DiffusersEngine) -> None:
    from diffusers import EulerDiscreteScheduler
    from safetensors.torch import load_file

    assert type(heavy.pipe).__name__ == "StableDiffusionXLPipeline"
    assert isinstance(heavy.pipe.scheduler, EulerDiscreteScheduler)
    assert heavy.pipe.scheduler.config.timestep_spacing == "trailing"
    ckpt = load_file(str(tiny_models["unet_checkpoint"]))
    state = heavy.pipe.unet.state_dict()
    assert all(torch.equal(state[k], v) for k, v in ckpt.items())  # the checkpoint's weights, not the base's
    base = engine(tiny_models, "tiny-sdxl-lightning")  # the same pipeline without the checkpoint
    assert base.pipe.scheduler.config.timestep_spacing == "leading"
    r = [req(0, "tiny-sdxl-lightning", seed=3), req(1, "tiny-sdxl-lightning", seed=3)]
    with_ckpt = asyncio.run(heavy.generate(r))
    without = asyncio.run(base.generate(r))
    assert with_ckpt[0][0] == with_ckpt[1][0]
    assert pixels(with_ckpt[0][0]) != pixels(without[0][0])


def test_load_errors_name_the_variable(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    profile = str(tiny_models["profile"])
    wrong_unet = tmp_path / "unet.safetensors"
    from safetensors.torch import save_file

    save_file({"conv_in.weight": torch.zeros(1)}, str(wrong_unet))
    bad = DiffusersEngine.from_settings(
        WorkerSettings(
            variant="tiny-sdxl-lightning",
            engine="diffusers",
            profile=profile,
            unet_checkpoint=str(wrong_unet),
        )
    )
    with pytest.raises(SettingsError, match="HADIS_UNET_CHECKPOINT"):
        bad.load()
    cases: list[tuple[dict[str, object], str]] = [
        ({"model": str(tmp_path)}, r"HADIS_MODEL: .*\(no model_index.json\)"),
        ({"model": "nobody/no-such-model"}, "HADIS_MODEL: 'nobody/no-such-model' is no local directory"),
        ({"model": "../escape", "model_root": tiny_models["sd"]}, "HADIS_MODEL: .*outside HADIS_MODEL_ROOT"),
        ({"unet_checkpoint": str(tmp_path / "missing.safetensors")}, "HADIS_UNET_CHECKPOINT: no such file"),
        (
            {"discriminator_clip": str(tmp_path), "discriminator_head": str(tiny_models["head"])},
            "HADIS_DISCRIMINATOR_CLIP",
        ),
        ({"variant": "not-in-profile"}, "HADIS_MODEL: required"),
    ]
    for kw, message in cases:
        fields: dict[str, object] = {"variant": "tiny-sd", "engine": "diffusers", "profile": profile, **kw}
        with pytest.raises(SettingsError, match=message):
            DiffusersEngine.from_settings(WorkerSettings(**fields))  # type: ignore[arg-type]


# --- the discriminator ----------------------------------------------------------------------------


def test_discriminator_scores_batches_like_single_images(tiny_models: dict[str, Path]) -> None:
    from PIL import Image

    disc = Discriminator.load(tiny_models["clip"], tiny_models["head"])
    images = [Image.new("RGB", (48, 40), (i * 60, 255 - i * 50, 30 * i)) for i in range(4)]
    batched = disc.score(images)
    single = [disc.score([im])[0] for im in images]
    assert batched == pytest.approx(single, abs=1e-5)
    assert all(0.0 <= p <= 1.0 for p in batched)
    assert disc.score([]) == []
    assert disc.embed(images[:1]).shape == (1, 512)


def test_head_format_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    head = DiscriminatorHead()
    assert tuple(head.state_dict()) == HEAD_KEYS
    x = torch.randn(3, 512)
    for name in ("head.safetensors", "head.pt"):
        save_head(head, tmp_path / name)
        again = load_head(tmp_path / name)
        assert torch.allclose(again.p_real(x), head.p_real(x))
    # the paper artifact's whole-module checkpoint: head keys under "fc.", the encoder's ignored
    artifact = {f"fc.{k}": v for k, v in head.state_dict().items()} | {
        "clip_image_encoder.proj": torch.zeros(1)
    }
    torch.save(artifact, tmp_path / "artifact.pt")
    assert torch.allclose(load_head(tmp_path / "artifact.pt").p_real(x), head.p_real(x))


def test_bad_heads_are_refused(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    torch.save({"0.weight": torch.zeros(256, 512)}, tmp_path / "partial.pt")
    with pytest.raises(DiscriminatorError, match="lacks"):
        load_head(tmp_path / "partial.pt")
    with pytest.raises(DiscriminatorError, match="no such"):
        load_head(tmp_path / "missing.pt")
    save_head(DiscriminatorHead(in_dim=768), tmp_path / "wide.safetensors")
    with pytest.raises(DiscriminatorError, match="768-d"):
        Discriminator.load(tiny_models["clip"], tmp_path / "wide.safetensors")


def test_the_worker_process_stops_with_the_variable_named(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HADIS_WORKER_VARIANT": "sdxl-lightning",
        "HADIS_ENGINE": "diffusers",
        "HADIS_MODEL_ROOT": str(tmp_path),
        "HADIS_MODEL": "../../etc",
    }
    out = subprocess.run(
        [sys.executable, "-m", "hadis_worker"], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2
    assert "HADIS_MODEL" in out.stderr and "outside HADIS_MODEL_ROOT" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_model_that_does_not_load_stops_the_worker_process(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    import os
    import shutil
    import subprocess
    import sys

    broken = tmp_path / "broken-sd"
    shutil.copytree(tiny_models["sd"], broken)
    for weights in (broken / "unet").glob("*.safetensors"):
        weights.write_bytes(b"not safetensors")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HADIS_WORKER_VARIANT": "tiny-sd",
        "HADIS_ENGINE": "diffusers",
        "HADIS_PROFILE": str(tiny_models["profile"]),
        "HADIS_MODEL": str(broken),
        "HADIS_DEVICE": "cpu",
        "HADIS_WORKER_HOST": "127.0.0.1",
        "HADIS_WORKER_PORT": "0",
    }
    out = subprocess.run(
        [sys.executable, "-m", "hadis_worker"], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 3, out.stderr[-2000:]
    assert f"hadis-worker: warm-up failed: HADIS_MODEL: cannot load the pipeline '{broken}'" in out.stderr
