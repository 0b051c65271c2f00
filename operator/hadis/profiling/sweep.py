"""The quality sweep: FID of every routed mix of two variants' images over a θ × τ grid.

Given, for N prompts with k images each, the router score of every prompt, the discriminator's
p_real of every light image and the features of every variant's images, a cascade configuration
(light, heavy, θ, τ) picks one image per (prompt, image slot) the way the gateway and the simulator
(:mod:`hadis.sim.cascade`) decide:

* router: a prompt is *hard* iff its score ≥ the (1−θ) quantile of the N router scores
  (θ = 0: none, θ = 1: all); hard prompts take the heavy variant's images;
* discriminator: a light image of a prompt that is not hard escalates iff its p_real < the τ
  quantile of p_real over the light-routed prompts' images (τ = 0: none, τ = 1: all), so τ is the
  share of the light-routed images that escalate; escalated slots take the heavy image.

The mix's FID against the reference statistics is the row's quality; its cost is the expected
seconds per query light·(1−θ) + heavy·p with p = θ + (1−θ)τ (the cascade_sweep.csv convention:
hard prompts skip the light model). Rows carry the nominal p; the share actually sent to heavy on
this prompt set (quantiles over few prompts are coarse) is kept in :attr:`SweepRow.heavy_share`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hadis.api.profile import CascadeRow
from hadis.profiling.fid import FeatureStats, FidAgainst, as_samples

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SWEEP_COLUMNS = ("light_model", "heavy_model", "router_ratio", "disc_ratio", "threshold", "latency", "fid")
#: CascadeRow wants FID > 0; a mix whose features equal the reference's is written as this.
MIN_FID = 1e-9


def default_grid(step: float = 0.1) -> list[float]:
    """0, step, …, 1 (rounded so that 0.30000000000000004 is 0.3)."""
    n = round(1 / step)
    if n < 1 or abs(n * step - 1) > 1e-9:
        raise ValueError(f"grid step {step} does not divide 1")
    return [round(i / n, 10) for i in range(n + 1)]


def ordered_pairs(variants: Sequence[str]) -> list[tuple[str, str]]:
    """(light, heavy) for every i < j of ``variants`` listed from lightest to heaviest."""
    return [(variants[i], variants[j]) for i in range(len(variants)) for j in range(i + 1, len(variants))]


def hard_prompts(router: FloatArray, theta: float) -> BoolArray:
    """Prompts the router sends straight to heavy: score ≥ the (1−θ) quantile of the scores."""
    if theta <= 0:
        return np.zeros(router.shape[0], dtype=np.bool_)
    if theta >= 1:
        return np.ones(router.shape[0], dtype=np.bool_)
    return np.asarray(router >= np.quantile(router, 1.0 - theta), dtype=np.bool_)


def heavy_slots(router: FloatArray, p_real_light: FloatArray, theta: float, tau: float) -> BoolArray:
    """(N, k) mask: True where the routed mix takes the heavy image (hard prompt or escalated)."""
    hard = hard_prompts(router, theta)
    out = np.repeat(hard[:, None], p_real_light.shape[1], axis=1)
    if tau <= 0 or hard.all():
        return out
    if tau >= 1:
        return np.ones_like(out)
    routed = p_real_light[~hard]
    thr = float(np.quantile(routed, tau))
    return out | ((p_real_light < thr) & ~hard[:, None])


@dataclass(frozen=True)
class QualityData:
    """Scores and features of one prompt set: N prompts, k images per prompt, d features per image."""

    router: FloatArray  # (N,)
    p_real: Mapping[str, FloatArray]  # variant -> (N, k); needed for every variant used as light
    features: Mapping[str, FloatArray]  # variant -> (N, k, d)

    def __post_init__(self) -> None:
        n = self.router.shape[0]
        shapes = {v: f.shape for v, f in self.features.items()}
        if not shapes:
            raise ValueError("quality data: no variant features")
        first = next(iter(shapes.values()))
        for v, s in shapes.items():
            if len(s) != 3 or s[0] != n or s != first:
                raise ValueError(f"quality data: features of {v!r}: shape {s}, expected ({n}, k, d)={first}")
        for v, p in self.p_real.items():
            if p.shape != first[:2]:
                raise ValueError(f"quality data: p_real of {v!r} has shape {p.shape}, expected {first[:2]}")

    def mix(self, light: str, heavy: str, heavy_mask: BoolArray) -> FloatArray:
        """The (N·k, d) features of the routed mix."""
        f = np.where(heavy_mask[:, :, None], self.features[heavy], self.features[light])
        return np.asarray(f.reshape(-1, f.shape[-1]), dtype=np.float64)


@dataclass(frozen=True)
class SweepRow:
    light: str
    heavy: str
    theta: float
    tau: float
    p: float
    heavy_share: float
    latency: float | None
    fid: float

    def cascade_row(self) -> CascadeRow:
        return CascadeRow(
            light=self.light,
            heavy=self.heavy,
            theta=self.theta,
            tau=self.tau,
            p=self.p,
            cost_s=self.latency,
            fid=max(self.fid, MIN_FID),
        )


def expected_latency(light_s: float, heavy_s: float, theta: float, p: float) -> float:
    """Seconds per query: the light model on the prompts the router leaves to it, heavy on share p."""
    return light_s * (1 - theta) + heavy_s * p


class _PairMixer:
    """FIDs of mixes of two variants' images, with the reference projection done once per variant.

    A mix takes, per image slot, the light or the heavy row. Σ_ref^½ is applied to both variants'
    features once (Y = X Σ_ref^½); a mix's inner matrix is then the n × n Gram of its centred Y rows
    when n < d, else the d × d Gram updated from the precomputed one of the variant that supplies
    most rows (only the swapped rows are multiplied), so a row costs at most n·d² and one eigvalsh.
    """

    def __init__(self, light: FloatArray, heavy: FloatArray, fid: FidAgainst) -> None:
        self.fid = fid
        self.x = (light.reshape(-1, light.shape[-1]), heavy.reshape(-1, heavy.shape[-1]))
        as_samples(self.x[0])
        fid.check_dim(self.x[0].shape[1])
        self.y = (self.x[0] @ fid.root, self.x[1] @ fid.root)
        n, d = self.x[0].shape
        self.small = n < d
        self.gram = (self.y[0].T @ self.y[0], self.y[1].T @ self.y[1]) if not self.small else None

    def __call__(self, heavy_mask: BoolArray) -> float:
        m = heavy_mask.reshape(-1)
        n = m.shape[0]
        x = np.where(m[:, None], self.x[1], self.x[0])
        mu = x.mean(axis=0)
        xc = x - mu
        trace_sigma = float((xc * xc).sum()) / (n - 1)
        if self.gram is None:
            yc = np.where(m[:, None], self.y[1], self.y[0]) - mu @ self.fid.root
            return self.fid.distance(mu, trace_sigma, (yc @ yc.T) / (n - 1))
        base, swap = (0, m) if m.sum() <= n / 2 else (1, ~m)
        other = 1 - base
        ya, yb = self.y[other][swap], self.y[base][swap]
        g = self.gram[base] + ya.T @ ya - yb.T @ yb
        y_mu = mu @ self.fid.root
        return self.fid.distance(mu, trace_sigma, (g - n * np.outer(y_mu, y_mu)) / (n - 1))


def sweep_pair(
    data: QualityData,
    light: str,
    heavy: str,
    fid: FidAgainst,
    *,
    thetas: Sequence[float] | None = None,
    taus: Sequence[float] | None = None,
    latency: Mapping[str, float] | None = None,
) -> list[SweepRow]:
    """Every (θ, τ) of the grid for one ordered pair (identical mixes are scored once)."""
    if light not in data.p_real:
        raise ValueError(f"no p_real for the light variant {light!r}")
    p_light = data.p_real[light]
    mixer = _PairMixer(data.features[light], data.features[heavy], fid)
    seen: dict[bytes, float] = {}
    rows = []
    for theta in thetas if thetas is not None else default_grid():
        for tau in taus if taus is not None else default_grid():
            mask = heavy_slots(data.router, p_light, theta, tau)
            key = mask.tobytes()
            if key not in seen:
                seen[key] = mixer(mask)
            p = round(theta + (1 - theta) * tau, 6)
            lat = None
            if latency is not None:
                lat = round(expected_latency(latency[light], latency[heavy], theta, p), 6)
            rows.append(SweepRow(light, heavy, theta, tau, p, float(mask.mean()), lat, seen[key]))
    return rows


def sweep(
    data: QualityData,
    pairs: Sequence[tuple[str, str]],
    reference: FeatureStats,
    *,
    thetas: Sequence[float] | None = None,
    taus: Sequence[float] | None = None,
    latency: Mapping[str, float] | None = None,
) -> list[SweepRow]:
    """:func:`sweep_pair` for every pair, in order."""
    fid = FidAgainst(reference)
    return [
        row
        for light, heavy in pairs
        for row in sweep_pair(data, light, heavy, fid, thetas=thetas, taus=taus, latency=latency)
    ]


def single_fids(data: QualityData, reference: FeatureStats) -> dict[str, float]:
    """FID of each variant's own images."""
    fid = FidAgainst(reference)
    return {v: fid.of_features(f.reshape(-1, f.shape[-1])) for v, f in data.features.items()}


def format_sweep_csv(rows: Sequence[CascadeRow], index: Mapping[str, int]) -> str:
    """cascade_sweep.csv (also the Pareto table's format): models by index, θ, τ, p, cost (blank if
    unknown), FID; :func:`hadis.profiles.parse_sweep_csv` reads it back."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(SWEEP_COLUMNS)
    for r in rows:
        cost = "" if r.cost_s is None else f"{r.cost_s:.6g}"
        w.writerow([index[r.light], index[r.heavy], r.theta, r.tau, round(r.p, 6), cost, f"{r.fid:.6g}"])
    return out.getvalue()
