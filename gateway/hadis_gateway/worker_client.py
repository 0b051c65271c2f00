"""HTTP to the workers: one ``POST`` of a JSON body, the status and raw body back.

Two implementations of :class:`WorkerClient`:

* :class:`AiohttpWorkerClient` — what the gateway uses. Measured on the gateway's own path (one
  core, keep-alive connections to an instant worker), aiohttp spends ~0.25 ms of CPU per worker
  call where httpx spends ~3 ms (its pure-Python connection pool and HTTP/1.1 stack), and the
  worker call is most of the gateway's own work per request.
* :class:`HttpxWorkerClient` — over any ``httpx.AsyncBaseTransport``; tests run the gateway
  in-process against ASGI fake workers with it.

Both map their failures onto the two cases the dispatcher distinguishes: :class:`WorkerUnreachable`
(could not connect, connection dropped, or a connect timeout: another replica may do) and
:class:`WorkerTimeout` (the worker took the request and did not answer in time).
"""

from __future__ import annotations

from typing import Protocol

import aiohttp
import httpx

JSON_HEADERS = {"content-type": "application/json"}


class WorkerUnreachable(Exception):
    """The request did not get through (connection refused, dropped, or not made in time)."""


class WorkerTimeout(Exception):
    """The worker did not answer before the timeout."""


class WorkerClient(Protocol):
    async def post(self, url: str, body: bytes, timeout_s: float) -> tuple[int, bytes]:
        """POST ``body`` (JSON) to ``url``: (HTTP status, response body)."""

    async def aclose(self) -> None:
        """Close every connection."""


class AiohttpWorkerClient:
    """Keep-alive connections to the workers, at most ``max_connections`` open at once."""

    def __init__(self, *, max_connections: int, connect_timeout_s: float) -> None:
        self._connect_timeout_s = connect_timeout_s
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections, limit_per_host=0, keepalive_timeout=60),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s),
            skip_auto_headers=("User-Agent",),
            auto_decompress=False,
        )

    async def post(self, url: str, body: bytes, timeout_s: float) -> tuple[int, bytes]:
        timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=self._connect_timeout_s)
        try:
            async with self._session.post(url, data=body, headers=JSON_HEADERS, timeout=timeout) as r:
                return r.status, await r.read()
        except aiohttp.ConnectionTimeoutError as e:  # before the total timeout: connecting
            raise WorkerUnreachable(repr(e)) from None
        except TimeoutError as e:
            raise WorkerTimeout(repr(e)) from None
        except (aiohttp.ClientError, OSError) as e:
            raise WorkerUnreachable(repr(e)) from None

    async def aclose(self) -> None:
        await self._session.close()


class HttpxWorkerClient:
    """The same over httpx (any transport; the tests' in-process one)."""

    def __init__(
        self,
        *,
        max_connections: int,
        connect_timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(None, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def post(self, url: str, body: bytes, timeout_s: float) -> tuple[int, bytes]:
        try:
            r = await self._client.post(url, content=body, headers=JSON_HEADERS, timeout=timeout_s)
        except httpx.ConnectTimeout as e:
            raise WorkerUnreachable(repr(e)) from None
        except httpx.TimeoutException as e:
            raise WorkerTimeout(repr(e)) from None
        except httpx.TransportError as e:
            raise WorkerUnreachable(repr(e)) from None
        return r.status_code, r.content

    async def aclose(self) -> None:
        await self._client.aclose()
