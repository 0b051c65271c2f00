"""Open-loop replay of a trace against an images API: requests go out at the trace's times,
whether or not earlier ones have been answered (the I/O half of the load generator)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from hadis.loadgen.summary import Outcome

ProgressFn = Callable[[int, int], None]


def _payload(prompt: str, model: str, size: str, seed: int) -> dict[str, Any]:
    return {
        "model": model,
        "prompt": prompt,
        "n": 1,
        "size": size,
        "response_format": "b64_json",
        "seed": seed,
    }


def _parse(index: int, pid: int, due: float, sent: float, done: float, r: httpx.Response) -> Outcome:
    try:
        body = r.json()
    except ValueError:
        return Outcome(index, pid, due, sent, done, r.status_code, error=f"http_{r.status_code}")
    if r.status_code != 200:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        code = err.get("code") or err.get("type") or f"http_{r.status_code}"
        return Outcome(index, pid, due, sent, done, r.status_code, error=str(code))
    data = (body.get("data") or [{}])[0]
    meta = data.get("x_hadis") or {}
    return Outcome(
        index,
        pid,
        due,
        sent,
        done,
        200,
        error=None if data.get("b64_json") else "no_image",
        variant=meta.get("variant"),
        escalated=meta.get("escalated"),
        router_score=meta.get("router_score"),
        p_real=meta.get("discriminator_score"),
    )


async def replay(
    url: str,
    arrivals_s: Sequence[float],
    prompt_ids: Sequence[int],
    prompts: Sequence[str],
    *,
    model: str = "hadis",
    size: str = "512x512",
    timeout_s: float = 120.0,
    progress: ProgressFn | None = None,
) -> list[Outcome]:
    """Send request i at ``arrivals_s[i]`` (seconds from now) with prompt ``prompts[id % len]``.

    Every request yields exactly one :class:`Outcome`: the answer, or the transport error that
    prevented one (status 0). Nothing is retried: the load generator measures, the gateway retries.
    """
    endpoint = url.rstrip("/") + "/v1/images/generations"
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
    done_count = 0
    results: list[Outcome | None] = [None] * len(arrivals_s)

    async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as client:
        start = time.perf_counter()

        async def one(i: int) -> None:
            nonlocal done_count
            due = float(arrivals_s[i])
            delay = due - (time.perf_counter() - start)
            if delay > 0:
                await asyncio.sleep(delay)
            pid = int(prompt_ids[i])
            sent = time.perf_counter() - start
            try:
                r = await client.post(endpoint, json=_payload(prompts[pid % len(prompts)], model, size, i))
                results[i] = _parse(i, pid, due, sent, time.perf_counter() - start, r)
            except httpx.HTTPError as e:
                results[i] = Outcome(
                    i, pid, due, sent, time.perf_counter() - start, 0, error=type(e).__name__
                )
            done_count += 1
            if progress is not None:
                progress(done_count, len(arrivals_s))

        await asyncio.gather(*(one(i) for i in range(len(arrivals_s))))
    return [o for o in results if o is not None]
