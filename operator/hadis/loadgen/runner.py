"""Open-loop replay of a trace against an images API: requests go out at the trace's times,
whether or not earlier ones have been answered (the I/O half of the load generator).

aiohttp, not httpx: with thousands of requests in flight, httpx's connection pool spent several
milliseconds of CPU per request (measured: the load generator took 60 % of a core at E1's 35 QPS),
stealing the CPU the gateway under test needs on a small machine.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp

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


def parse_answer(
    index: int, pid: int, due: float, sent: float, done: float, status: int, raw: bytes
) -> Outcome:
    """The outcome an HTTP answer stands for (an image, or the error code the body names)."""
    try:
        body = json.loads(raw)
    except ValueError:
        return Outcome(index, pid, due, sent, done, status, error=f"http_{status}")
    if status != 200:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        code = err.get("code") or err.get("type") or f"http_{status}"
        return Outcome(index, pid, due, sent, done, status, error=str(code))
    data = (body.get("data") or [{}])[0] if isinstance(body, dict) else {}
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
        router_hard=meta.get("router_hard"),
        queue_ms=meta.get("queue_ms"),
        generation_ms=meta.get("generation_ms"),
    )


def transport_error(e: BaseException) -> str:
    """A stable name for why no HTTP answer came: connect_error, timeout or disconnected."""
    if isinstance(e, aiohttp.ClientConnectorError):
        return "connect_error"
    if isinstance(e, TimeoutError):
        return "timeout"
    if isinstance(e, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return "disconnected"
    return type(e).__name__


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
    api_key: str | None = None,
) -> list[Outcome]:
    """Send request i at ``arrivals_s[i]`` (seconds from now) with prompt ``prompts[id % len]``.

    Every request yields exactly one :class:`Outcome`: the answer, or the transport error that
    prevented one (status 0). Nothing is retried: the load generator measures, the gateway retries.
    With ``api_key`` every request carries ``Authorization: Bearer <key>`` (a gateway with API keys).
    """
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    endpoint = url.rstrip("/") + "/v1/images/generations"
    done_count = 0
    results: list[Outcome | None] = [None] * len(arrivals_s)
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=3)  # < uvicorn's 5 s: no reuse-after-close
    timeout = aiohttp.ClientTimeout(total=timeout_s)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()

        async def one(i: int) -> None:
            nonlocal done_count
            due = float(arrivals_s[i])
            delay = due - (time.perf_counter() - start)
            if delay > 0:
                await asyncio.sleep(delay)
            pid = int(prompt_ids[i])
            sent = time.perf_counter() - start
            body = json.dumps(_payload(prompts[pid % len(prompts)], model, size, i)).encode()
            try:
                async with session.post(endpoint, data=body, headers=headers) as r:
                    raw = await r.read()
                    results[i] = parse_answer(i, pid, due, sent, time.perf_counter() - start, r.status, raw)
            except (TimeoutError, aiohttp.ClientError) as e:
                results[i] = Outcome(
                    i, pid, due, sent, time.perf_counter() - start, 0, error=transport_error(e)
                )
            done_count += 1
            if progress is not None:
                progress(done_count, len(arrivals_s))

        await asyncio.gather(*(one(i) for i in range(len(arrivals_s))))
    return [o for o in results if o is not None]
