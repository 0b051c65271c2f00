"""Wiring of the pluggable parts: the prompt router and the thresholds' reference distributions.

The rule-based router and its calibration live in ``hadis_gateway.router``; they are imported
lazily so the gateway still serves (with a stand-in scorer and live-only quantiles, logged) if
they cannot load. Tests inject their own scorer and thresholds through ``create_app``.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from concurrent.futures import Executor, ThreadPoolExecutor
from functools import lru_cache
from typing import Any

from hadis.api.scores import PromptScores
from hadis.errors import UserError
from hadis.profiles import load_prompt_scores, load_reference_prompts
from hadis_gateway.batch_scorer import ScoreMany, one_by_one
from hadis_gateway.settings import Settings
from hadis_gateway.thresholds import Threshold, WindowQuantile

log = logging.getLogger(__name__)


def word_count_score(prompt: str) -> float:
    """Stand-in router score (longer prompts are harder) for when the real router is unavailable."""
    return float(len(prompt.split()))


def default_scorer(settings: Settings) -> ScoreMany:
    """The paper's rule-based router (``PromptRouter.score_many``) if it loads, else a stand-in."""
    try:
        module: Any = importlib.import_module("hadis_gateway.router")
        router = module.PromptRouter(settings.spacy_model)
        score: ScoreMany = router.score_many
    except Exception as e:
        log.warning("prompt router unavailable (%r); scoring prompts by word count", e)
        return one_by_one(word_count_score)
    log.info("prompt router loaded (spaCy pipeline %s)", getattr(router, "loaded_model", "?"))
    return score


def router_thread() -> ThreadPoolExecutor:
    """Where an in-process scorer runs: one thread (the router is not thread-safe)."""
    return ThreadPoolExecutor(1, thread_name_prefix="hadis-router")


async def start_router_process(settings: Settings, timeout_s: float = 180.0) -> tuple[Executor, ScoreMany]:
    """The router in a child process (executor, score function), or the stand-in if it cannot start."""
    from hadis_gateway import router_process

    proc = router_process.RouterProcess(settings.spacy_model, nice=settings.router_nice)
    loop = asyncio.get_running_loop()
    try:
        name = await asyncio.wait_for(loop.run_in_executor(proc, router_process.loaded_model), timeout_s)
    except Exception as e:
        log.warning("prompt router unavailable (%r); scoring prompts by word count", e)
        proc.shutdown(wait=False, cancel_futures=True)
        return router_thread(), one_by_one(word_count_score)
    log.info("prompt router loaded in a child process (spaCy pipeline %s)", name)
    return proc, router_process.score_many


@lru_cache(maxsize=4)
def _reference_scores(profile: str) -> PromptScores | None:
    try:
        return load_prompt_scores(profile)
    except UserError as e:
        log.warning("no reference scores for profile %r (%s); thresholds start from live scores", profile, e)
        return None


def reference_threshold(profile: str, variant: str | None, window: int) -> Threshold:
    """Quantiles of the profile's router scores (``variant=None``) or of ``variant``'s p_real."""
    scores = _reference_scores(profile)
    if scores is not None:
        ref = scores.router if variant is None else scores.p_real.get(variant)
        if ref is not None:
            try:
                module: Any = importlib.import_module("hadis_gateway.router.calibration")
                threshold: Threshold = module.QuantileThreshold(ref, window)
                return threshold
            except Exception as e:
                log.warning("router calibration unavailable (%r); using a seeded sliding window", e)
                return WindowQuantile(seed=ref.ravel().tolist(), window=window)
    return WindowQuantile(window=window)


@lru_cache(maxsize=4)
def reference_prompt_indices(profile: str) -> dict[str, int]:
    """Reference prompt → its row in the profile's prompt set (emulated workers look up its scores)."""
    try:
        prompts = load_reference_prompts(profile)
    except UserError as e:
        log.info("no reference prompts for profile %r (%s)", profile, e)
        return {}
    index: dict[str, int] = {}
    for i, prompt in enumerate(prompts):
        index.setdefault(prompt, i)
    return index
