"""``hadis train router --learned``: the real all-MiniLM-L6-v2 encoder (the training extra) and a
ridge head on ~40 synthetic prompts whose light-model p_real depends on what they say."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.training_data import EASY, HARD, write_inputs

from hadis.cli.main import main
from hadis.training.metrics import auroc

pytestmark = pytest.mark.slow

HELD_OUT_EASY = ["a pink flower", "a wooden chair", "a silver spoon", "a striped zebra"]
HELD_OUT_HARD = [
    "the philosophical ambiguity of an abstract ideology",
    "a conceptual meditation on the nature of uncertainty and belief",
    "the theoretical melancholy of an imaginary moral dilemma",
    "an existential interpretation of the meaning of progress",
]


def test_learned_router_ranks_unseen_hard_prompts_above_easy_ones(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("transformers", reason="needs the diffusers extra (pip install 'hadis[diffusers]')")
    from hadis_worker.training.router import EncoderMissingError, RidgeHead, SentenceEncoder, encoder_dir

    try:
        encoder_dir()
    except EncoderMissingError as e:  # must not skip: the training extra is part of the dev setup
        pytest.fail(f"{e}")
    features, scores = write_inputs(tmp_path / "data", EASY * 2, HARD * 2, seed=3)  # 40 prompts
    learned = tmp_path / "learned.json"
    args = ["--features", str(features), "--scores", str(scores), "--light", "light", "--tau", "0.5"]
    code = main(["train", "router", *args, "--out", str(tmp_path / "rule.json"), "--learned", str(learned)])
    out, err = capfd.readouterr()
    assert code == 0, err
    assert "embedded 40/40 prompts" in out and "ridge alpha" in out, out
    doc = json.loads(learned.read_text())
    assert doc["kind"] == "learned" and doc["light"] == "light" and doc["nPrompts"] == 40
    head = RidgeHead.from_dict(doc["head"])
    assert head.weights.shape == (384,)
    assert json.loads((tmp_path / "rule.json").read_text())["kind"] == "rule-based"

    emb = SentenceEncoder().embed(HELD_OUT_EASY + HELD_OUT_HARD)
    score = head.router_score(emb)
    assert auroc(score, [0] * 4 + [1] * 4) >= 0.9, score
    assert np.mean(score[4:]) > np.mean(score[:4])
