"""Replica slots: a central queue per variant in front of least-outstanding balancing.

A replica takes requests only when it is idle (nothing in flight), and then up to ``cap`` of them
(the dispatcher passes the variant's batch size) in the same event-loop turn, so they reach the
worker together and run as one batch. Requests beyond that wait here, in one FIFO queue per
variant, and go to whichever replica goes idle first — the simulator's model: a free worker takes
up to its batch size of what is queued at that moment.

Handing a second batch to a busy replica (the previous rule: 2 × batch in flight) pinned each
request behind that replica's running batch — on average half a batch of extra wait, while another
replica might free up sooner. With sd35-medium batches of 2.34 s that was about a second of every
heavy request's latency in the E1 emulation (p50 2.52 s vs 1.37 s in the simulator). The price of
idle-only dispatch is one gateway→worker round trip between batches (milliseconds against batch
latencies of 0.1 to tens of seconds).

Counts are kept per endpoint URL, so a request started before a configuration change is still
counted (and released) correctly after it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field


class NoReplica(Exception):
    """The variant has no endpoint this request may use (none configured, or all excluded)."""


@dataclass
class _Waiter:
    cap: int
    exclude: frozenset[str]
    future: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Balancer:
    """Least-outstanding endpoint choice with per-replica caps and a FIFO wait for a free slot."""

    def __init__(self) -> None:
        self._endpoints: dict[str, list[str]] = {}
        self._outstanding: dict[str, int] = {}
        self._filling: set[str] = set()  # went idle → busy in this loop turn: may still fill its batch
        self._turn: dict[str, int] = {}
        self._waiters: dict[str, deque[_Waiter]] = {}

    def set_endpoints(self, endpoints: dict[str, list[str]]) -> None:
        self._endpoints = {v: list(dict.fromkeys(eps)) for v, eps in endpoints.items()}
        for variant in list(self._waiters):
            self._wake(variant)

    def endpoints(self, variant: str) -> list[str]:
        return list(self._endpoints.get(variant, []))

    def pick(self, variant: str, exclude: Iterable[str] = (), cap: int | None = None) -> str | None:
        """The least-loaded endpoint of ``variant`` not in ``exclude`` that may take a request now
        (any, without a cap; with one: idle, or filling its batch this loop turn with fewer than
        ``cap``), or ``None``; ties rotate so equal loads spread."""
        skip = set(exclude)
        eps = [e for e in self._endpoints.get(variant, []) if e not in skip]
        if cap is not None:
            eps = [e for e in eps if self._may_take(e, cap)]
        if not eps:
            return None
        turn = self._turn.get(variant, 0)
        self._turn[variant] = turn + 1
        rotated = eps[turn % len(eps) :] + eps[: turn % len(eps)]
        return min(rotated, key=lambda e: self._outstanding.get(e, 0))

    async def acquire(
        self, variant: str, cap: int, exclude: Iterable[str] = (), timeout_s: float | None = None
    ) -> str:
        """Reserve a slot on a replica of ``variant`` (FIFO behind earlier waiters); release it with
        :meth:`release`. Raises :class:`NoReplica` when no endpoint may serve it and
        :class:`TimeoutError` when no slot frees up within ``timeout_s``."""
        skip = frozenset(exclude)
        if not [e for e in self._endpoints.get(variant, []) if e not in skip]:
            raise NoReplica(variant)
        if not self._waiters.get(variant):
            endpoint = self.pick(variant, skip, cap)
            if endpoint is not None:
                self._take(endpoint)
                return endpoint
        waiter = _Waiter(max(1, cap), skip)
        self._waiters.setdefault(variant, deque()).append(waiter)
        done, _ = await asyncio.wait({waiter.future}, timeout=timeout_s)
        if not done:
            self._drop(variant, waiter)
            if waiter.future.done() and not waiter.future.cancelled():
                return waiter.future.result()  # granted just as the time ran out: keep it
            waiter.future.cancel()
            raise TimeoutError(f"no {variant} replica had a free slot in time")
        return waiter.future.result()  # an endpoint, or NoReplica when the variant lost them all

    def release(self, endpoint: str) -> None:
        """Free the slot a request held on ``endpoint``; the next waiter may take it."""
        left = self._outstanding.get(endpoint, 0) - 1
        if left > 0:
            self._outstanding[endpoint] = left
        else:
            self._outstanding.pop(endpoint, None)
        for variant, eps in self._endpoints.items():
            if endpoint in eps and self._waiters.get(variant):
                self._wake(variant)

    def _may_take(self, endpoint: str, cap: int) -> bool:
        n = self._outstanding.get(endpoint, 0)
        return n == 0 or (endpoint in self._filling and n < cap)

    def _take(self, endpoint: str) -> None:
        n = self._outstanding.get(endpoint, 0)
        self._outstanding[endpoint] = n + 1
        if n == 0:  # the batch this replica starts may fill up until the loop turns
            self._filling.add(endpoint)
            try:
                asyncio.get_running_loop().call_soon(self._filling.discard, endpoint)
            except RuntimeError:  # no loop (a synchronous caller): nothing can join anyway
                self._filling.discard(endpoint)

    def _drop(self, variant: str, waiter: _Waiter) -> None:
        queue = self._waiters.get(variant)
        if queue is not None and waiter in queue:
            queue.remove(waiter)

    def _wake(self, variant: str) -> None:
        """Grant free slots to waiters in FIFO order.

        Stops at the first waiter that excludes no replica and still finds no replica: nobody
        behind it can be served either (with the same cap), so a release costs O(slots freed), not
        O(waiters) — with a backlog of hundreds, scanning every waiter on every release made each
        request cost milliseconds and the backlog grow (measured in bench/bench_gateway.py).
        """
        queue = self._waiters.get(variant)
        if not queue:
            return
        eps = self._endpoints.get(variant, [])
        kept: deque[_Waiter] = deque()  # waiters passed over (they exclude a free replica), in order
        while queue:
            waiter = queue.popleft()
            if waiter.future.done():
                continue
            if not any(e not in waiter.exclude for e in eps):
                waiter.future.set_exception(NoReplica(variant))
                continue
            endpoint = self.pick(variant, waiter.exclude, waiter.cap)
            if endpoint is None:
                kept.append(waiter)
                if not waiter.exclude:
                    break
                continue  # a later waiter may exclude less
            self._take(endpoint)
            waiter.future.set_result(endpoint)
        kept.extend(queue)
        self._waiters[variant] = kept

    def outstanding(self, endpoint: str) -> int:
        return self._outstanding.get(endpoint, 0)

    def waiting(self, variant: str) -> int:
        """Requests queued here for a free slot on ``variant``."""
        return len(self._waiters.get(variant, ()))

    def variant_outstanding(self, variant: str) -> int:
        """In flight at the replicas plus waiting here: the variant's queue as the control loop sees it."""
        return sum(self._outstanding.get(e, 0) for e in self._endpoints.get(variant, [])) + self.waiting(
            variant
        )
