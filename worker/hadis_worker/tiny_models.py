"""Tiny random-weight diffusion pipelines and discriminator, built locally (no download) for CPU tests.

``python -m hadis_worker.tiny_models OUT_DIR`` writes::

    OUT_DIR/tiny-sd/                      SD-style pipeline (UNet, VAE, CLIP text encoder, tokenizer)
    OUT_DIR/tiny-sdxl/                    SDXL-style pipeline (two text encoders, text_time embedding)
    OUT_DIR/tiny-sdxl-lightning-unet.safetensors
                                          a UNet state dict for tiny-sdxl (the SDXL-Lightning path)
    OUT_DIR/discriminator/clip/           CLIP vision model (512-d projection) + image processor
    OUT_DIR/discriminator/head.safetensors  the MLP head (see hadis_worker.discriminator)
    OUT_DIR/tiny-diffusers.json           a HadisProfile over the two variants (GPU type "cpu")

The profile's variants are ``tiny-sd`` (light, model = OUT_DIR/tiny-sd) and ``tiny-sdxl-lightning``
(heavy, model = OUT_DIR/tiny-sdxl; serve it with the UNet checkpoint). Latencies are nominal CPU
figures, not measurements, and the FIDs of the sweep are made up (see :func:`_sweep`) so that the
Pareto table and the allocator have something to work on. The weights are random: images are
noise, and so are the discriminator's scores.

The CLIP tokenizer is a byte-level vocabulary without merges (every byte is a token), written here,
so nothing is fetched. Everything is seeded: the same OUT_DIR contents on every run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

LIGHT = "tiny-sd"
HEAVY = "tiny-sdxl-lightning"
GPU_TYPE = "cpu"
#: Images are this many pixels square by default (the UNets' sample_size × the VAE's factor 8).
IMAGE_PX = 64
STEPS = 2


def _tokenizer(max_length: int = 77) -> Any:
    """A CLIP tokenizer with a byte-level vocabulary and no merges (514 tokens)."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = ["<|startoftext|>", "<|endoftext|>", *alphabet, *(a + "</w>" for a in alphabet)]
    vocab = {t: i for i, t in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def _text_config(tokenizer: Any, **kw: Any) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        vocab_size=len(tokenizer),
        max_position_embeddings=77,
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        hidden_act="gelu",
        **kw,
    )


def _vae() -> Any:
    from diffusers import AutoencoderKL

    # four blocks: the usual ×8 downsampling, so a 512 px request is a 64 × 64 latent, not 256 × 256
    return AutoencoderKL(
        block_out_channels=(8, 8, 8, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        sample_size=IMAGE_PX,
    )


def build_sd(out: Path) -> Path:
    """An SD-1.5-style pipeline with tiny random weights."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=IMAGE_PX // 8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=4,
    )
    tokenizer = _tokenizer()
    text_encoder = CLIPTextModel(_text_config(tokenizer))
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=_vae(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    path = out / LIGHT
    pipe.save_pretrained(path)
    return path


def _sdxl_unet(seed: int) -> Any:
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=IMAGE_PX // 8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=6 * 8 + 32,  # 6 time ids × 8 + text_encoder_2's projection
        cross_attention_dim=64,  # both encoders' hidden states, concatenated
        norm_num_groups=4,
    )


def build_sdxl(out: Path) -> tuple[Path, Path]:
    """An SDXL-style pipeline with tiny random weights, and a second UNet's state dict (Lightning-style)."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from safetensors.torch import save_file
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    unet = _sdxl_unet(seed=1)
    tokenizer = _tokenizer()
    torch.manual_seed(2)
    text_encoder = CLIPTextModel(_text_config(tokenizer))
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(tokenizer, projection_dim=32))
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    )
    pipe = StableDiffusionXLPipeline(
        vae=_vae(),
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
        force_zeros_for_empty_prompt=True,
    )
    path = out / "tiny-sdxl"
    pipe.save_pretrained(path)
    lightning = _sdxl_unet(seed=3)
    ckpt = out / "tiny-sdxl-lightning-unet.safetensors"
    save_file({k: v.contiguous() for k, v in lightning.state_dict().items()}, str(ckpt))
    return path, ckpt


def build_discriminator(out: Path) -> tuple[Path, Path]:
    """A tiny random CLIP vision model with the paper's 512-d projection, its image processor, a head."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from hadis_worker.discriminator import DiscriminatorHead, image_processor_class, save_head

    torch.manual_seed(4)
    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        projection_dim=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        hidden_act="gelu",
    )
    clip_dir = out / "discriminator" / "clip"
    CLIPVisionModelWithProjection(config).save_pretrained(clip_dir)
    processor = image_processor_class()(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor.save_pretrained(clip_dir)
    head_path = out / "discriminator" / "head.safetensors"
    save_head(DiscriminatorHead(), head_path)
    return clip_dir, head_path


def _sweep() -> list[dict[str, Any]]:
    """A small cascade sweep (θ, τ ∈ {0, 0.5, 1}) with made-up FIDs.

    FID(p) = 40 − 10p − 16p(1 − p) for the share p reaching the heavy model: a mix beats either model
    alone (as mixed outputs can), so the best row (θ = τ = 0.5) uses the router, the discriminator and
    both models, and the allocator gives each model a GPU.
    """
    light_s, heavy_s = 0.2, 0.4
    rows = []
    for theta in (0.0, 0.5, 1.0):
        for tau in (0.0, 0.5, 1.0):
            if theta == 1.0 and tau > 0:
                continue
            p = theta + (1 - theta) * tau
            fid = 40.0 - 10.0 * p - 16.0 * p * (1 - p)
            cost = light_s * (1 - theta) + heavy_s * p
            rows.append(
                {
                    "light": LIGHT,
                    "heavy": HEAVY,
                    "theta": theta,
                    "tau": tau,
                    "p": round(p, 4),
                    "costS": round(cost, 4),
                    "fid": round(fid, 3),
                }
            )
    return rows


def _perf(l1: float) -> list[dict[str, Any]]:
    batches = [{"batch": b, "latencyS": round(l1 * b * (0.9 if b > 1 else 1.0), 4)} for b in (1, 2, 4)]
    return [{"gpuType": GPU_TYPE, "batches": [dict(p, source="rule") for p in batches]}]


def profile(sd: Path, sdxl: Path) -> dict[str, Any]:
    """The HadisProfile (wire form) of the tiny pipelines."""
    return {
        "kind": "HadisProfile",
        "name": "tiny-diffusers",
        "description": "Tiny random-weight pipelines for CPU tests (hadis_worker.tiny_models); "
        "nominal latencies, made-up FIDs.",
        "referenceGpuType": GPU_TYPE,
        "variants": [
            {
                "name": LIGHT,
                "model": str(sd),
                "steps": STEPS,
                "guidanceScale": 0.0,
                "fid": 40.0,
                "perf": _perf(0.2),
            },
            {
                "name": HEAVY,
                "model": str(sdxl),
                "steps": STEPS,
                "guidanceScale": 0.0,
                "fid": 30.0,
                "perf": _perf(0.4),
            },
        ],
        "sweep": _sweep(),
    }


def build_all(out: Path) -> dict[str, Path]:
    """Build everything into ``out``; returns the paths by name (see the module docstring)."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    sd = build_sd(out)
    sdxl, ckpt = build_sdxl(out)
    clip, head = build_discriminator(out)
    prof = out / "tiny-diffusers.json"
    prof.write_text(json.dumps(profile(sd, sdxl), indent=1) + "\n")
    return {"sd": sd, "sdxl": sdxl, "unet_checkpoint": ckpt, "clip": clip, "head": head, "profile": prof}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hadis_worker.tiny_models", description=__doc__.split("\n", 1)[0]
    )
    parser.add_argument("out_dir", type=Path, help="where to write the pipelines and the profile")
    args = parser.parse_args(argv)
    for name, path in build_all(args.out_dir).items():
        print(f"{name:16} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
