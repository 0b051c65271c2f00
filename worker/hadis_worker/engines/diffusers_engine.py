"""The diffusers engine: real text-to-image pipelines (and the CLIP discriminator) on a GPU or the CPU.

- **Loading**: ``AutoPipelineForText2Image.from_pretrained(model, dtype=…)`` on an explicit device
  (``HADIS_DEVICE``; cuda when present, else cpu) and dtype (``HADIS_DTYPE``; float16 on cuda,
  float32 on cpu). With ``HADIS_UNET_CHECKPOINT`` (the SDXL-Lightning way) a UNet is built from the
  base pipeline's UNet config, the checkpoint's state dict is loaded into it, the pipeline is built
  around it, and the scheduler becomes ``EulerDiscreteScheduler`` with ``timestep_spacing="trailing"``.
  Settings and paths are checked when the engine is built (so a bad value stops the process with a
  message naming the variable); the weights are loaded by :meth:`DiffusersEngine.warmup`, which
  then generates one image at the pipeline's native size — the worker is ready only after that.
- **Batches**: requests that share size, steps and guidance go through one pipeline call with one
  seeded ``torch.Generator`` per request and per-request negative prompts; a batch mixing such
  settings runs one call per group, in order. Sampler settings: the request's, else the live
  configuration's, else ``HADIS_STEPS``/``HADIS_GUIDANCE_SCALE``, else the profile variant's. The
  blocking work runs in a thread (``asyncio.to_thread``) so the server stays responsive.
- **Latency**: an exponentially weighted mean of measured batch latency per batch size (seeded by
  the warm-up); sizes not seen yet are extrapolated linearly from the nearest measured size. The
  batcher's deadline admission uses it.
- **Discriminator**: with ``HADIS_DISCRIMINATOR_CLIP`` and ``HADIS_DISCRIMINATOR_HEAD`` set, the
  images of requests with ``discriminate`` set are scored in one batch (p_real); otherwise p_real
  is ``None`` (the gateway then serves the light image without escalating).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hadis.api.wire import GenerateRequest
from hadis.errors import UserError
from hadis.profiles import load_profile
from hadis_worker.config_watch import VariantRuntime
from hadis_worker.engines import log_privacy
from hadis_worker.engines.base import Generated
from hadis_worker.settings import SettingsError, WorkerSettings, check_tree_confined

log = logging.getLogger("hadis_worker.engine.diffusers")

#: Weight of the newest measurement in the latency average.
EWMA_ALPHA = 0.3
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class ModelPlan:
    """What to load, checked: the pipeline source, an optional UNet checkpoint, sampler defaults."""

    model: Path | str
    unet_checkpoint: Path | None
    device: str
    dtype: str
    steps: int | None
    guidance_scale: float | None
    discriminator_clip: Path | None = None
    discriminator_head: Path | None = None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def plan_from_settings(settings: WorkerSettings) -> ModelPlan:
    """Check every setting the engine needs (no weights loaded); errors name the variable."""
    model = settings.model
    steps, guidance = settings.steps, settings.guidance_scale
    try:
        variant = load_profile(settings.profile).variant(settings.variant)
    except (UserError, KeyError) as e:
        if model is None:
            raise SettingsError(
                f"HADIS_MODEL: required, the profile {settings.profile!r} gives no model for "
                f"{settings.variant!r} ({e})"
            ) from None
    else:
        model = model or variant.model
        steps = steps if steps is not None else variant.steps
        guidance = guidance if guidance is not None else variant.guidance_scale
    assert model is not None
    source = settings.model_source(model)
    if isinstance(source, Path):
        if not (source / "model_index.json").is_file():
            raise SettingsError(f"HADIS_MODEL: {source} is not a diffusers pipeline (no model_index.json)")
    elif _offline():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(source, "model_index.json"), str):
            raise SettingsError(
                f"HADIS_MODEL: {source!r} is no local directory and not in the hub cache, and "
                "HF_HUB_OFFLINE=1 forbids downloading it; give a local pipeline directory"
            )
    unet = None
    if settings.unet_checkpoint is not None:
        unet = settings.local_path("HADIS_UNET_CHECKPOINT", settings.unet_checkpoint)
        if not unet.is_file():
            raise SettingsError(f"HADIS_UNET_CHECKPOINT: no such file {unet}")
        if unet.suffix != ".safetensors":
            raise SettingsError(f"HADIS_UNET_CHECKPOINT: expected a .safetensors file, got {unet.name}")
    clip = head = None
    if settings.discriminator_clip is not None and settings.discriminator_head is not None:
        clip = settings.local_path("HADIS_DISCRIMINATOR_CLIP", settings.discriminator_clip)
        head = settings.local_path("HADIS_DISCRIMINATOR_HEAD", settings.discriminator_head)
        if not (clip / "config.json").is_file():
            raise SettingsError(f"HADIS_DISCRIMINATOR_CLIP: {clip} is not a saved CLIP model directory")
        check_tree_confined(clip, settings.model_root, "HADIS_DISCRIMINATOR_CLIP")
        if not head.is_file():
            raise SettingsError(f"HADIS_DISCRIMINATOR_HEAD: no such file {head}")
    device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SettingsError(f"HADIS_DEVICE: {device!r} but torch sees no CUDA device")
    dtype = settings.dtype or ("float16" if device.startswith("cuda") else "float32")
    return ModelPlan(source, unet, device, dtype, steps, guidance, clip, head)


def png_bytes(image: Any) -> bytes:
    """A PIL image as PNG."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


class LatencyModel:
    """EWMA of measured batch latency per batch size; unseen sizes scale the nearest measured one."""

    def __init__(self, alpha: float = EWMA_ALPHA, default_s: float = 1.0) -> None:
        self.alpha = alpha
        self.default_s = default_s
        self._mean: dict[int, float] = {}
        self._lock = threading.Lock()

    def observe(self, batch_size: int, seconds: float) -> None:
        with self._lock:
            old = self._mean.get(batch_size)
            self._mean[batch_size] = seconds if old is None else old + self.alpha * (seconds - old)

    def expected(self, batch_size: int) -> float:
        with self._lock:
            if batch_size in self._mean:
                return self._mean[batch_size]
            if not self._mean:
                return self.default_s * batch_size
            nearest = min(self._mean, key=lambda k: (abs(k - batch_size), -k))
            return self._mean[nearest] * batch_size / nearest


GroupKey = tuple[int, int, int | None, float | None]


class DiffusersEngine:
    """A diffusers text-to-image pipeline behind the :class:`~hadis_worker.engines.base.Engine` protocol."""

    def __init__(self, variant: str, plan: ModelPlan) -> None:
        self.variant = variant
        self.plan = plan
        self.latency = LatencyModel()
        self.runtime_steps: int | None = None
        self.runtime_guidance: float | None = None
        self.pipe: Any = None
        self.discriminator: Any = None
        self._warned_no_disc = False

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> DiffusersEngine:
        return cls(settings.variant, plan_from_settings(settings))

    # --- the Engine protocol --------------------------------------------------------------------

    def configure(self, runtime: VariantRuntime) -> None:
        self.runtime_steps = runtime.steps
        self.runtime_guidance = runtime.guidance_scale

    def expected_latency_s(self, batch_size: int) -> float:
        return self.latency.expected(batch_size)

    async def warmup(self) -> None:
        await asyncio.to_thread(self.load)
        await asyncio.to_thread(self._warm)

    async def generate(self, batch: list[GenerateRequest]) -> list[Generated]:
        return await asyncio.to_thread(self.generate_blocking, batch)

    # --- blocking work (a worker thread) ---------------------------------------------------------

    def load(self) -> None:
        """Load the pipeline (and the discriminator) onto the device; errors name the variable."""
        import diffusers
        import transformers

        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
        # the library loggers get their handlers on first use: make sure they exist, then filter
        diffusers.utils.logging.get_logger("diffusers")
        transformers.utils.logging.get_logger("transformers")
        log_privacy.install()  # no prompt text in the pipelines' truncation warnings
        p = self.plan
        dtype = DTYPES[p.dtype]
        started = time.perf_counter()
        kwargs: dict[str, Any] = {"dtype": dtype}
        if p.unet_checkpoint is not None:
            kwargs["unet"] = self._lightning_unet(dtype)
        try:
            pipe = diffusers.AutoPipelineForText2Image.from_pretrained(p.model, **kwargs)
        except Exception as e:
            raise SettingsError(f"HADIS_MODEL: cannot load the pipeline {str(p.model)!r}: {e}") from e
        if p.unet_checkpoint is not None:
            pipe.scheduler = diffusers.EulerDiscreteScheduler.from_config(
                pipe.scheduler.config, timestep_spacing="trailing"
            )
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(p.device)
        log.info(
            "loaded %s (%s) for %r on %s/%s in %.1f s%s",
            p.model,
            type(pipe).__name__,
            self.variant,
            p.device,
            p.dtype,
            time.perf_counter() - started,
            f" with UNet {p.unet_checkpoint.name}" if p.unet_checkpoint else "",
        )
        if p.discriminator_clip is not None and p.discriminator_head is not None:
            from hadis_worker.discriminator import Discriminator, DiscriminatorError

            try:
                self.discriminator = Discriminator.load(p.discriminator_clip, p.discriminator_head, p.device)
            except DiscriminatorError as e:
                raise SettingsError(f"HADIS_DISCRIMINATOR_CLIP / HADIS_DISCRIMINATOR_HEAD: {e}") from e
            log.info("discriminator loaded from %s + %s", p.discriminator_clip, p.discriminator_head.name)

    def _lightning_unet(self, dtype: torch.dtype) -> Any:
        from diffusers import UNet2DConditionModel
        from safetensors.torch import load_file

        p = self.plan
        assert p.unet_checkpoint is not None
        try:
            config = UNet2DConditionModel.load_config(p.model, subfolder="unet")
            unet = UNet2DConditionModel.from_config(config)
        except Exception as e:
            raise SettingsError(f"HADIS_MODEL: cannot read the UNet config of {str(p.model)!r}: {e}") from e
        try:
            unet.load_state_dict(load_file(str(p.unet_checkpoint)))
        except Exception as e:
            raise SettingsError(
                f"HADIS_UNET_CHECKPOINT: {p.unet_checkpoint} does not fit the UNet of {p.model}: {e}"
            ) from e
        return unet.to(dtype=dtype)

    def native_size(self) -> int:
        """The pipeline's default image side (UNet sample size × VAE scale factor)."""
        sample = int(self.pipe.unet.config.sample_size)
        return sample * int(getattr(self.pipe, "vae_scale_factor", 8))

    def _warm(self) -> None:
        """One generation to initialise kernels, then one measured: it seeds the latency estimate."""
        side = self.native_size()
        probe = GenerateRequest(
            request_id="warmup",
            prompt="a photo of a cat",
            variant=self.variant,
            width=max(64, side),
            height=max(64, side),
            seed=0,
            deadline_unix_s=time.time() + 3600,
            discriminate=self.discriminator is not None,
        )
        self.generate_blocking([probe], record=False)
        started = time.perf_counter()
        self.generate_blocking([probe], record=False)
        self.latency.observe(1, time.perf_counter() - started)
        log.info("warm-up done: one %d px image in %.3f s", side, self.latency.expected(1))

    def settings_for(self, r: GenerateRequest) -> GroupKey:
        steps = r.num_inference_steps or self.runtime_steps or self.plan.steps
        guidance = next(
            (g for g in (r.guidance_scale, self.runtime_guidance, self.plan.guidance_scale) if g is not None),
            None,
        )
        return (r.width, r.height, steps, guidance)

    def generate_blocking(self, batch: list[GenerateRequest], *, record: bool = True) -> list[Generated]:
        """Generate (and score) a batch; one pipeline call per group of equal sampler settings."""
        if self.pipe is None:
            raise RuntimeError("the pipeline is not loaded (warm-up has not run)")
        started = time.perf_counter()
        groups: dict[GroupKey, list[int]] = {}
        for i, r in enumerate(batch):
            groups.setdefault(self.settings_for(r), []).append(i)
        images: list[Any] = [None] * len(batch)
        for key, members in groups.items():
            for i, image in zip(members, self._call([batch[i] for i in members], key), strict=True):
                images[i] = image
        p_real: list[float | None] = [None] * len(batch)
        wanted = [i for i, r in enumerate(batch) if r.discriminate]
        if wanted and self.discriminator is not None:
            for i, score in zip(wanted, self.discriminator.score([images[i] for i in wanted]), strict=True):
                p_real[i] = score
        elif wanted and not self._warned_no_disc:
            self._warned_no_disc = True
            log.warning("p_real asked for, but no discriminator is configured (HADIS_DISCRIMINATOR_*)")
        results = [(png_bytes(im), p) for im, p in zip(images, p_real, strict=True)]
        if record:
            self.latency.observe(len(batch), time.perf_counter() - started)
        return results

    def _call(self, group: list[GenerateRequest], key: GroupKey) -> list[Any]:
        width, height, steps, guidance = key
        generators = [
            torch.Generator("cpu").manual_seed(r.seed if r.seed is not None else secrets.randbits(63))
            for r in group
        ]
        kwargs: dict[str, Any] = {
            "prompt": [r.prompt for r in group],
            "width": width,
            "height": height,
            "generator": generators,
            "output_type": "pil",
        }
        if any(r.negative_prompt for r in group):
            kwargs["negative_prompt"] = [r.negative_prompt or "" for r in group]
        if steps is not None:
            kwargs["num_inference_steps"] = steps
        if guidance is not None:
            kwargs["guidance_scale"] = guidance
        with torch.inference_mode():
            out = self.pipe(**kwargs)
        return list(out.images)
