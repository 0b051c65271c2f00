"""Per-image discriminator scores and FID features, cached beside the images.

Both are keyed by the image file (its path, size and mtime: a regenerated image is scored again)
and by the scorer (a JSON file of p_real per discriminator, an .npz of features per extractor).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from hadis_worker.profiling.atomic_files import write_bytes
from hadis_worker.profiling.image_cache import VariantJob, digest, file_key, load_images
from hadis_worker.profiling.progress import say

#: images per call of the discriminator or the feature extractor
CHUNK = 32


def p_real(job: VariantJob, disc: Any, disc_key: str) -> np.ndarray:
    """(N, k) p_real of the job's images, cached in a JSON file per discriminator."""
    path = job.dir / f"p_real-{disc_key}.json"
    known: dict[str, float] = json.loads(path.read_text()) if path.is_file() else {}
    files = job.files
    key = {p: file_key(p) for p in files}
    todo = [p for p in files if key[p] not in known]
    for b in range(0, len(todo), CHUNK):
        chunk = todo[b : b + CHUNK]
        known.update({key[p]: s for p, s in zip(chunk, disc.score(load_images(chunk)), strict=True)})
    if todo:
        write_bytes(path, json.dumps({key[p]: known[key[p]] for p in files}).encode())
        say(f"[{job.name}] scored {len(todo)} images with the discriminator")
    return np.array([[known[key[p]] for p in row] for row in job.paths], dtype=np.float64)


def job_features(job: VariantJob, extractor: Any) -> np.ndarray:
    """(N, k, d) features of the job's images, cached in an .npz file per extractor."""
    path = job.dir / f"features-{extractor.name}.npz"
    return cached_features(path, job.files, extractor, job.name).reshape(len(job.paths), job.k, -1)


def cached_features(path: Path, images: list[Path], extractor: Any, label: str) -> np.ndarray:
    """(len(images), d) features of image files, those not in the .npz at ``path`` computed and added."""
    known: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as data:
            known = {k: data[k] for k in data.files}
    key = {p: digest(file_key(p), 16) for p in images}
    todo = [p for p in images if key[p] not in known]
    for b in range(0, len(todo), CHUNK):
        chunk = todo[b : b + CHUNK]
        known.update({key[p]: f for p, f in zip(chunk, extractor.extract(load_images(chunk)), strict=True)})
        if len(todo) > CHUNK:
            say(f"[{label}] {extractor.name} features: {min(b + CHUNK, len(todo))}/{len(todo)}")
    if todo:
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as f:
            savez: Any = np.savez  # numpy's stub mistakes **arrays for its keyword options
            savez(f, **{key[p]: known[key[p]] for p in images})
        os.replace(f.name, path)
        say(f"[{label}] {extractor.name} features of {len(todo)} images")
    return np.stack([np.asarray(known[key[p]], dtype=np.float64) for p in images])
