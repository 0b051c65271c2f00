"""Endpoint discovery: a worker endpoint named by a DNS name becomes one endpoint per address.

In Kubernetes the operator writes one endpoint per variant, its headless Service
(``http://svc-sd35-medium.ns.svc:8000``), whose DNS answer lists the ready worker pods. The
balancer treats every endpoint URL as one replica (it sends a batch only to an idle one), so the
name alone would give a variant one pod's throughput however many pods it has. Here each ``http``
endpoint whose host is a name is resolved (IPv4 and IPv6, TCP) into one URL per address — same
scheme, port and path — and the result goes to the balancer's ``set_endpoints``, whose counts are
kept by URL, so requests in flight across a change are still released correctly.

* IP literals pass through unchanged (local mode: ``http://127.0.0.1:PORT``, exactly as before);
  so do other schemes (``https`` to an address would fail the certificate's name check).
* Names are resolved again every ``refresh_s`` seconds and at once when the configuration changes;
  addresses are sorted, so a DNS server that shuffles its answer changes nothing.
* An empty answer gives no endpoint for the name: the variant's requests get the explicit "no
  workers" answer (``/readyz`` reports the count and stays ready: see server.py). Kubernetes DNS
  answers a headless Service without ready pods with NXDOMAIN (:class:`NoAddress`), which counts
  as empty for a name that resolved before — its pods are gone.
* Any other failure (timeout, server failure) keeps the name's last good addresses; a name never
  resolved (NXDOMAIN included: a typo looks the same) stays as the endpoint itself, so a request
  to it fails or is retried as without discovery. Each change of a name's state is logged once
  (host names only, never a URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple
from urllib.parse import SplitResult, urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, Gauge

log = logging.getLogger(__name__)

#: host name → its addresses (``[]``: none); raises :class:`NoAddress` for a name that does not
#: exist or has no address, anything else when there is no answer.
Resolver = Callable[[str], Awaitable[Sequence[str]]]
#: Sets the endpoints of every variant (the balancer's ``set_endpoints``).
Apply = Callable[[dict[str, list[str]]], None]

#: getaddrinfo errors meaning "the name has no address" (an answer), not "no answer".
NO_ADDRESS_ERRORS = frozenset(
    code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code is not None
)


class NoAddress(Exception):
    """The name does not exist or has no address (NXDOMAIN or NODATA): an answer, not a failure."""


async def getaddrinfo_resolver(host: str) -> list[str]:
    """The event loop's ``getaddrinfo`` (IPv4 and IPv6, TCP): the host's addresses. Raises
    :class:`NoAddress` when the name does not exist or has none; any other failure as it is."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            host, None, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except socket.gaierror as e:
        if e.errno in NO_ADDRESS_ERRORS:
            raise NoAddress(e.strerror or str(e)) from None
        raise
    return [str(info[4][0]) for info in infos]


class _Named(NamedTuple):
    """An endpoint URL whose host is a name, taken apart to put addresses in its place."""

    parts: SplitResult
    host: str  # lower case, as DNS compares


def named_host(endpoint: str) -> _Named | None:
    """The endpoint's host when discovery expands it (``http`` and a name, not an IP literal)."""
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname
        _ = parts.port  # raises on a port that is not a number
    except ValueError:
        return None
    if parts.scheme.lower() != "http" or not host or _is_ip(host):
        return None
    return _Named(parts, host)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.partition("%")[0])  # fe80::1%eth0: a scoped IPv6 literal
    except ValueError:
        return False
    return True


def with_address(named: _Named, address: str) -> str:
    """The endpoint with ``address`` in place of its host name (IPv6 in brackets), the rest kept."""
    p = named.parts
    host = f"[{address}]" if ":" in address else address
    userinfo = p.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + host + (f":{p.port}" if p.port is not None else "")
    return urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment))


def ordered(addresses: Sequence[str]) -> list[str]:
    """Distinct addresses, IPv4 before IPv6, then by value: a stable order whatever DNS returned."""
    parsed: dict[str, tuple[int, int, str]] = {}
    for a in addresses:
        try:
            ip = ipaddress.ip_address(a.partition("%")[0])
        except ValueError:
            continue  # not an address: never put into a URL
        parsed.setdefault(a, (ip.version, int(ip), a))
    return [a for a, _ in sorted(parsed.items(), key=lambda kv: kv[1])]


def expand(configured: dict[str, list[str]], known: dict[str, list[str]]) -> dict[str, list[str]]:
    """Every variant's endpoints with each named one replaced by one URL per known address of its
    name (none when it has none); a name not known yet stays as it is. Config order is kept, each
    name's addresses in :func:`ordered` order; duplicates are dropped."""
    out: dict[str, list[str]] = {}
    for variant, endpoints in configured.items():
        urls: list[str] = []
        for endpoint in endpoints:
            named = named_host(endpoint)
            if named is None or named.host not in known:
                urls.append(endpoint)
            else:
                urls.extend(with_address(named, a) for a in known[named.host])
        out[variant] = list(dict.fromkeys(urls))
    return out


class EndpointDiscovery:
    """Keeps ``apply`` fed with the configured endpoints, names expanded to their addresses.

    ``set_config`` (synchronous: the config watcher's callback) applies at once with what is known
    and wakes :meth:`run`, which resolves every name then and every ``refresh_s`` seconds.
    ``enabled=False`` (``HADIS_ENDPOINT_REFRESH_S=0``) applies the configured endpoints unchanged.
    """

    def __init__(
        self,
        apply: Apply,
        *,
        resolver: Resolver | None = None,  # None: getaddrinfo_resolver
        refresh_s: float = 5.0,
        timeout_s: float = 2.0,
        enabled: bool = True,
    ) -> None:
        self._apply_to = apply
        self.resolver = resolver or getaddrinfo_resolver
        self.refresh_s, self.timeout_s = refresh_s, timeout_s
        self.enabled = enabled and refresh_s > 0
        self._configured: dict[str, list[str]] = {}
        self._known: dict[str, list[str]] = {}  # name → last good addresses ([]: it has none)
        self._state: dict[str, str] = {}  # name → "ok" | "none" | "failed": logged on change
        self._applied: dict[str, list[str]] | None = None
        self._wake: asyncio.Event | None = None  # made by run(), on its own loop

    @property
    def current(self) -> dict[str, list[str]]:
        """The endpoints last applied, per variant."""
        return {v: list(eps) for v, eps in (self._applied or {}).items()}

    def names(self) -> list[str]:
        """The host names the configured endpoints use (sorted)."""
        found = {n.host for eps in self._configured.values() for e in eps if (n := named_host(e))}
        return sorted(found)

    def set_config(self, endpoints: dict[str, list[str]]) -> None:
        self._configured = {v: list(eps) for v, eps in endpoints.items()}
        self._apply(force=True)
        if self._wake is not None:
            self._wake.set()

    async def refresh(self) -> bool:
        """Resolve every configured name once (concurrently, each within ``timeout_s``) and apply
        the result; ``True`` when the endpoints changed."""
        if self._wake is not None:
            self._wake.clear()  # a config change from now on asks for another round
        if not self.enabled:
            return False
        names = self.names()
        results = await asyncio.gather(*(self._resolve(n) for n in names), return_exceptions=True)
        for name, result in zip(names, results, strict=True):
            if isinstance(result, NoAddress) and name in self._known:
                self._resolved(name, [])  # it had addresses: its pods are gone
            elif isinstance(result, BaseException):
                self._failed(name, result)
            else:
                self._resolved(name, ordered(result))
        for gone in (set(self._known) | set(self._state)) - set(self.names()):  # left the config
            self._known.pop(gone, None)
            self._state.pop(gone, None)
        return self._apply()

    async def run(self) -> None:
        """Refresh forever (cancel the task to stop): every ``refresh_s`` s and after config changes.
        An unexpected error is logged, never fatal."""
        if not self.enabled:
            return
        self._wake = wake = asyncio.Event()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.refresh_s)
            try:
                await self.refresh()
            except Exception:
                log.exception("endpoint discovery")

    async def _resolve(self, name: str) -> Sequence[str]:
        return await asyncio.wait_for(self.resolver(name), self.timeout_s)

    def _resolved(self, name: str, addresses: list[str]) -> None:
        state = "ok" if addresses else "none"
        before, previous = self._state.get(name), self._known.get(name)
        self._known[name], self._state[name] = addresses, state
        if state == "none" and before != "none":
            log.warning("worker host %s has no address (no ready workers?): no endpoints for it", name)
        elif state == "ok" and (before != "ok" or previous != addresses):
            log.info("worker host %s resolves to %d address(es)", name, len(addresses))

    def _failed(self, name: str, error: BaseException) -> None:
        if self._state.get(name) == "failed":
            return
        self._state[name] = "failed"
        reason = "timed out" if isinstance(error, TimeoutError) else f"{type(error).__name__}: {error}"
        kept = self._known.get(name)
        keeping = "the name itself" if kept is None else f"its last {len(kept)} address(es)"
        log.warning("cannot resolve worker host %s (%s); keeping %s", name, reason, keeping)

    def _apply(self, *, force: bool = False) -> bool:
        endpoints = expand(self._configured, self._known) if self.enabled else self._configured
        if not force and endpoints == self._applied:
            return False
        changed = endpoints != self._applied
        self._applied = {v: list(eps) for v, eps in endpoints.items()}
        self._apply_to({v: list(eps) for v, eps in endpoints.items()})
        return changed


def endpoints_gauge(registry: CollectorRegistry) -> Gauge:
    """``hadis_gateway_endpoints{variant}``: the endpoints (replicas) the gateway dispatches to."""
    return Gauge(
        "hadis_gateway_endpoints",
        "Worker endpoints the gateway dispatches to per variant, after DNS names are expanded",
        ["variant"],
        registry=registry,
    )
