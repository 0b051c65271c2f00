"""Wiring of the router and the thresholds' reference distributions."""

from __future__ import annotations

import math
from pathlib import Path

from fastapi.testclient import TestClient
from tests.gateway_fakes import cascade_config, hard_word_score, write_config

from hadis.profiles import load_prompt_scores
from hadis_gateway.scoring import default_scorer, reference_threshold, word_count_score
from hadis_gateway.server import create_app
from hadis_gateway.settings import Settings
from hadis_gateway.thresholds import WindowQuantile


def test_reference_threshold_follows_the_profile() -> None:
    scores = load_prompt_scores("hadis-paper-l40s")
    router = reference_threshold("hadis-paper-l40s", None, 100)
    assert min(scores.router) <= router.quantile(0.7) <= max(scores.router)
    light = next(iter(scores.p_real))
    disc = reference_threshold("hadis-paper-l40s", light, 100)
    assert 0.0 <= disc.quantile(0.2) <= 1.0


def test_reference_threshold_without_reference_starts_empty() -> None:
    t = reference_threshold("no-such-profile", None, 10)
    assert isinstance(t, WindowQuantile) and math.isnan(t.quantile(0.5))
    t = reference_threshold("hadis-paper-l40s", "no-such-variant", 10)
    assert isinstance(t, WindowQuantile)


def test_unloadable_router_falls_back_to_word_count(tmp_path: Path) -> None:
    scorer = default_scorer(Settings(config_path=tmp_path / "c.json", spacy_model="no_such_spacy_pipeline"))
    assert list(scorer(["two words", "one"])) == [2.0, 1.0] == [word_count_score("two words"), 1.0]


def test_app_builds_thresholds_from_the_profile(tmp_path: Path) -> None:
    light = next(iter(load_prompt_scores("hadis-paper-l40s").p_real))
    path = tmp_path / "c.json"
    cfg = cascade_config([], [])
    cfg["row"]["light"] = light
    cfg["variants"] = {light: {"batchSize": 1}, "heavy": {"batchSize": 1}}
    write_config(path, cfg)
    app = create_app(Settings(config_path=path), score_prompt=hard_word_score)
    with TestClient(app):
        d = app.state.gateway.dispatcher
        assert not math.isnan(d.router_threshold.quantile(0.5))
        assert 0.0 <= d.disc_threshold.quantile(0.5) <= 1.0
