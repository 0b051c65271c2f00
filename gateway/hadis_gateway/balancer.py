"""Least-outstanding-requests balancing across one variant's worker endpoints."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager


class Balancer:
    """Picks the endpoint with the fewest requests in flight; ties rotate so equal loads spread.

    Counts are kept per endpoint URL, so a request started before a configuration change is still
    counted (and released) correctly after it.
    """

    def __init__(self) -> None:
        self._endpoints: dict[str, list[str]] = {}
        self._outstanding: dict[str, int] = {}
        self._turn: dict[str, int] = {}

    def set_endpoints(self, endpoints: dict[str, list[str]]) -> None:
        self._endpoints = {v: list(dict.fromkeys(eps)) for v, eps in endpoints.items()}

    def endpoints(self, variant: str) -> list[str]:
        return list(self._endpoints.get(variant, []))

    def pick(self, variant: str, exclude: Iterable[str] = ()) -> str | None:
        """The least-loaded endpoint of ``variant`` not in ``exclude``, or ``None`` if there is none."""
        skip = set(exclude)
        eps = [e for e in self._endpoints.get(variant, []) if e not in skip]
        if not eps:
            return None
        turn = self._turn.get(variant, 0)
        self._turn[variant] = turn + 1
        rotated = eps[turn % len(eps) :] + eps[: turn % len(eps)]
        return min(rotated, key=lambda e: self._outstanding.get(e, 0))

    @contextmanager
    def track(self, endpoint: str) -> Iterator[None]:
        """Count one request in flight on ``endpoint`` for the duration of the block."""
        self._outstanding[endpoint] = self._outstanding.get(endpoint, 0) + 1
        try:
            yield
        finally:
            left = self._outstanding[endpoint] - 1
            if left:
                self._outstanding[endpoint] = left
            else:
                del self._outstanding[endpoint]

    def outstanding(self, endpoint: str) -> int:
        return self._outstanding.get(endpoint, 0)

    def variant_outstanding(self, variant: str) -> int:
        return sum(self._outstanding.get(e, 0) for e in self._endpoints.get(variant, []))
