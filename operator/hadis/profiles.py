"""Reading, writing and converting profile files (the only file I/O of the planning core).

Every problem is raised as :class:`hadis.errors.InputFileError` naming the file and the field.
"""

from __future__ import annotations

import csv
import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from hadis.api.base import describe_validation_error
from hadis.api.profile import BatchPoint, CascadeRow, GpuPerf, LatencyRule, Profile, RouterInfo, Variant
from hadis.api.scores import PromptScores
from hadis.errors import InputFileError

DEFAULT_PROFILE = "hadis-paper-l40s"
ATTRIBUTION = (
    "Converted from the HADIS paper artifact (Yang, Chen, Zhao, Sitaraman, Guan, 'HADIS: Hybrid Adaptive "
    "Diffusion Model Serving for Efficient Text-to-Image Generation', arXiv 2509.00642; MIT licence). "
    "FIDs are clean-FID of 5,000 ImageNet-1k prompts x 4 images."
)
GIB_PER_GB = 1e9 / 2**30


def builtin_profiles() -> list[str]:
    root = resources.files("hadis") / "data" / "profiles"
    return sorted(p.name.removesuffix(".json") for p in root.iterdir() if p.name.endswith(".json"))


def _builtin_path(name: str, suffix: str) -> Any:
    res = resources.files("hadis") / "data" / "profiles" / f"{name}{suffix}"
    if not res.is_file():
        raise InputFileError(f"unknown built-in profile {name!r}; built-in profiles: {builtin_profiles()}")
    return res


def parse_profile(text: str, source: str) -> Profile:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputFileError(f"{source}: not valid JSON: {e}") from None
    try:
        return Profile.model_validate(data)
    except ValidationError as e:
        raise InputFileError(describe_validation_error(e, source)) from None


def load_profile(ref: str | Path = DEFAULT_PROFILE) -> Profile:
    """A built-in profile by name, or a profile JSON file by path."""
    path = Path(ref)
    if path.suffix == ".json" or path.exists():
        try:
            text = path.read_text()
        except OSError as e:
            raise InputFileError(f"{path}: cannot read profile: {e.strerror}") from None
        return parse_profile(text, str(path))
    return parse_profile(_builtin_path(str(ref), ".json").read_text(), f"built-in profile {ref}")


def load_prompt_scores(ref: str | Path = DEFAULT_PROFILE) -> PromptScores:
    """The per-prompt scores beside a profile (``NAME.prompts.csv``)."""
    path = Path(ref)
    if path.suffix == ".csv" or path.exists():
        if path.suffix == ".json":
            path = path.with_name(path.name.removesuffix(".json") + ".prompts.csv")
        try:
            text = path.read_text()
        except OSError as e:
            raise InputFileError(f"{path}: cannot read prompt scores: {e.strerror}") from None
        return parse_prompt_scores(text, str(path))
    return parse_prompt_scores(_builtin_path(str(ref), ".prompts.csv").read_text(), f"built-in scores {ref}")


def load_reference_prompts(ref: str | Path = DEFAULT_PROFILE) -> list[str]:
    """The reference prompt set beside a profile (``NAME.prompts.txt``, one prompt per line)."""
    path = Path(ref)
    if path.suffix in (".json", ".txt") or path.exists():
        if path.suffix == ".json":
            path = path.with_name(path.name.removesuffix(".json") + ".prompts.txt")
        text, source = _read(path), str(path)
    else:
        text, source = _builtin_path(str(ref), ".prompts.txt").read_text(), f"built-in prompts {ref}"
    prompts = [line.strip() for line in text.splitlines() if line.strip()]
    if not prompts:
        raise InputFileError(f"{source}: no prompts")
    return prompts


def parse_prompt_scores(text: str, source: str) -> PromptScores:
    """CSV with columns ``prompt_index,router_score,<variant>:<image>,...``."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or header[:2] != ["prompt_index", "router_score"]:
        raise InputFileError(f"{source}: header must start with prompt_index,router_score")
    cols: dict[str, list[int]] = {}
    for j, name in enumerate(header[2:], start=2):
        variant, _, _ = name.partition(":")
        cols.setdefault(variant, []).append(j)
    try:
        data = np.array([[float(x) for x in row] for row in reader if row], dtype=np.float64)
    except ValueError as e:
        raise InputFileError(f"{source}: {e}") from None
    if data.ndim != 2 or data.shape[1] != len(header):
        raise InputFileError(f"{source}: every row must have {len(header)} columns")
    return PromptScores(router=data[:, 1].copy(), p_real={v: data[:, js].copy() for v, js in cols.items()})


def write_profile(profile: Profile, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(profile.to_wire(), indent=1) + "\n")


def write_prompt_scores(scores: PromptScores, path: Path) -> None:
    variants = list(scores.p_real)
    header = ["prompt_index", "router_score"]
    for v in variants:
        header += [f"{v}:{k}" for k in range(scores.p_real[v].shape[1])]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    for i in range(scores.size):
        row = [str(i), f"{scores.router[i]:.6g}"]
        for v in variants:
            row += [f"{x:.6g}" for x in scores.p_real[v][i]]
        w.writerow(row)
    path.write_text(out.getvalue())


# --- conversion of the HADIS artifact (../shared/data/hadis-l40s) ---------------------------------


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as e:
        raise InputFileError(f"{path}: cannot read: {e.strerror}") from None


def parse_sweep_csv(text: str, source: str, names: dict[int, str]) -> list[CascadeRow]:
    """``light_model,heavy_model,router_ratio,disc_ratio,threshold,latency,fid`` (model = index)."""
    reader = csv.DictReader(io.StringIO(text))
    need = ["light_model", "heavy_model", "router_ratio", "disc_ratio", "threshold", "fid"]
    missing = [c for c in need if c not in (reader.fieldnames or [])]
    if missing:
        raise InputFileError(f"{source}: missing column(s) {missing}; has {reader.fieldnames}")
    rows: list[CascadeRow] = []
    for n, rec in enumerate(reader, start=2):
        where = f"{source}:{n}"
        num = {c: _number(rec, c, where) for c in need}
        if rec.get("latency") not in (None, ""):
            num["latency"] = _number(rec, "latency", where)
        try:
            light, heavy = names[int(num["light_model"])], names[int(num["heavy_model"])]
        except KeyError as e:
            raise InputFileError(f"{where}: unknown model index {e}; known {sorted(names)}") from None
        try:
            rows.append(
                CascadeRow(
                    light=light,
                    heavy=heavy,
                    theta=num["router_ratio"],
                    tau=num["disc_ratio"],
                    p=num["threshold"],
                    cost_s=num.get("latency"),
                    fid=num["fid"],
                )
            )
        except ValidationError as e:
            raise InputFileError(describe_validation_error(e, where)) from None
    return rows


def _number(rec: dict[str, str | None], column: str, where: str) -> float:
    value = rec.get(column)
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputFileError(f"{where}: column {column!r}: expected a number, got {value!r}") from None


def read_sweep_csv(path: Path, names: dict[int, str]) -> list[CascadeRow]:
    """Read a sweep CSV file (see :func:`parse_sweep_csv`)."""
    rows = parse_sweep_csv(_read(path), str(path), names)
    if not rows:
        raise InputFileError(f"{path}: no configurations")
    return rows


def _rule_batches(
    l1: float, sizes: list[int], rule: LatencyRule, measured: dict[int, tuple[float, float | None]]
) -> list[BatchPoint]:
    points = []
    for b in sizes:
        if b in measured:
            lat, mem = measured[b]
            points.append(BatchPoint(batch=b, latency_s=lat, memory_gib=mem, source="measured"))
        elif b == 1:
            points.append(BatchPoint(batch=1, latency_s=l1, source="measured"))
        else:
            points.append(BatchPoint(batch=b, latency_s=round(b * l1 * rule.discount, 6), source="rule"))
    return points


#: Measurements the artifact reports in its notes (SD3.5-Large on the L40S): latency ratio to bs1, GB.
SD35_LARGE_MEASURED = {1: (1.0, 30.4), 2: (2.21, None), 4: (4.47, 36.0)}
L40S_MEMORY_GIB = 46 * GIB_PER_GB


def convert_artifact(src: Path) -> tuple[Profile, PromptScores]:
    """Build the default profile and prompt scores from the HADIS artifact folder."""
    try:
        meta = json.loads(_read(src / "variants.json"))
    except json.JSONDecodeError as e:
        raise InputFileError(f"{src / 'variants.json'}: not valid JSON: {e}") from None
    rule = LatencyRule()
    gpu = "L40S"
    variants: list[Variant] = []
    for v in meta["variants"]:
        l1 = float(v["latency_s_bs1"])
        measured: dict[int, tuple[float, float | None]] = {}
        if v["name"] == "sd35-large":
            measured = {
                b: (round(l1 * r, 6), round(gb * GIB_PER_GB, 3) if gb else None)
                for b, (r, gb) in SD35_LARGE_MEASURED.items()
            }
        variants.append(
            Variant(
                name=v["name"],
                index=v["index"],
                model=v["checkpoint"].split(" ")[0],
                steps=v["steps"],
                guidance_scale=v["guidance_scale"],
                size_gib=v.get("size_gib"),
                fid=v["fid"],
                perf=[
                    GpuPerf(
                        gpu_type=gpu,
                        gpu_memory_gib=round(L40S_MEMORY_GIB, 3),
                        batches=_rule_batches(l1, list(meta["batch_sizes"]), rule, measured),
                    )
                ],
            )
        )
    names = {v.index: v.name for v in variants if v.index is not None}
    sweep = parse_sweep_csv(_read(src / "cascade_sweep.csv"), str(src / "cascade_sweep.csv"), names)
    router = RouterInfo(features=meta["router"]["features"], weights=meta["router"]["weights"])
    profile = Profile(
        name=meta["profile"],
        description=f"{meta['gpu']}: the four model variants of the HADIS paper. {meta['note']}",
        attribution=ATTRIBUTION,
        reference_gpu_type=gpu,
        latency_rule=rule,
        variants=variants,
        router=router,
        sweep=sweep,
    )
    return profile, _convert_scores(src, router, [v.name for v in variants])


def _convert_scores(src: Path, router: RouterInfo, variants: list[str]) -> PromptScores:
    feats = list(csv.DictReader(io.StringIO(_read(src / "prompt_features.csv"))))
    x = np.array([[float(r[f]) for f in router.features] for r in feats], dtype=np.float64)
    std = x.std(axis=0)
    z = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    score = z @ np.array(router.weights)
    n = len(feats)
    per: dict[str, dict[int, dict[int, float]]] = {v: {} for v in variants}
    for r in csv.DictReader(io.StringIO(_read(src / "discriminator_scores.csv"))):
        per[r["variant"]].setdefault(int(r["prompt_index"]), {})[int(r["image"])] = float(r["p_real"])
    p_real = {}
    for v in variants:
        k = max(len(d) for d in per[v].values())
        p_real[v] = np.array([[per[v][i][j] for j in range(k)] for i in range(n)], dtype=np.float64)
    return PromptScores(router=score, p_real=p_real)
