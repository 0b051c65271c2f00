"""The quality sweep's image cache: k seeded images per prompt per variant, one PNG each.

``CACHE/<variant>/<settings hash>/<prompt>-<image>-<prompt hash>.png``, keyed by everything the
pixels depend on (model, UNet, steps, guidance, dtype, size, seed), written atomically; generating
again makes only the missing ones. Image k of prompt i has the same seed in every variant.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hadis_worker.profiling.atomic_files import write_bytes
from hadis_worker.profiling.progress import say


def digest(value: Any, n: int = 10) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:n]


def seed_for(seed: int, i: int, k: int) -> int:
    """The seed of image k of prompt i: distinct per (seed, i, k), the same in every variant."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{i}:{k}".encode()).digest()[:7], "big")


def image_name(i: int, k: int, prompt: str) -> str:
    return f"{i:06d}-{k:03d}-{digest(prompt, 8)}.png"


def file_key(path: Path) -> str:
    """Cache key of an image's scores and features: a regenerated or replaced file gets new ones."""
    st = path.stat()
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def load_image(path: Path) -> Any:
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


def load_images(paths: Sequence[Path]) -> list[Any]:
    return [load_image(p) for p in paths]


def blank_image(size: int) -> Any:
    from PIL import Image

    return Image.new("RGB", (size, size), (127, 127, 127))


class VariantJob:
    """One variant: its engine plan and its image folder (keyed by everything the pixels depend on)."""

    def __init__(self, name: str, plan: Any, args: argparse.Namespace, prompts: list[str]) -> None:
        self.name, self.plan, self.prompts, self.k = name, plan, prompts, args.k
        self.size, self.seed, self.batch_size = args.size, args.seed, args.batch_size
        key = {
            "model": str(plan.model),
            "unet": str(plan.unet_checkpoint),
            "steps": plan.steps,
            "guidance": plan.guidance_scale,
            "dtype": plan.dtype,
            "size": self.size,
            "seed": self.seed,
        }
        self.dir = args.cache / name / digest(key)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "settings.json").write_text(json.dumps(key, indent=1) + "\n")
        self.paths = [[self.dir / image_name(i, k, p) for k in range(self.k)] for i, p in enumerate(prompts)]

    @property
    def files(self) -> list[Path]:
        """Every image path, prompt by prompt."""
        return [p for row in self.paths for p in row]

    def missing(self) -> list[tuple[int, int]]:
        return [
            (i, k) for i, row in enumerate(self.paths) for k, path in enumerate(row) if not path.is_file()
        ]

    def generate(self) -> int:
        """Generate the missing images; returns how many."""
        from hadis.api.wire import GenerateRequest
        from hadis_worker.engines.diffusers_engine import DiffusersEngine

        todo = self.missing()
        if not todo:
            return 0
        engine = DiffusersEngine(self.name, self.plan)
        started = time.perf_counter()
        engine.load()
        say(f"[{self.name}] loaded in {time.perf_counter() - started:.1f} s; {len(todo)} images to generate")
        started, done = time.perf_counter(), 0
        for b in range(0, len(todo), self.batch_size):
            chunk = todo[b : b + self.batch_size]
            batch = [
                GenerateRequest(
                    request_id=f"quality-{i}-{k}",
                    prompt=self.prompts[i],
                    variant=self.name,
                    width=self.size,
                    height=self.size,
                    seed=seed_for(self.seed, i, k),
                    deadline_unix_s=time.time() + 86400,
                )
                for i, k in chunk
            ]
            for (i, k), (png, _) in zip(chunk, engine.generate_blocking(batch, record=False), strict=True):
                write_bytes(self.paths[i][k], png)
            done += len(chunk)
            rate = (time.perf_counter() - started) / done
            left = rate * (len(todo) - done)
            say(f"[{self.name}] {done}/{len(todo)} generated ({rate:.2f} s/image, ~{left:.0f} s left)")
        del engine
        gc.collect()
        return done
