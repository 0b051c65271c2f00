"""Every environment variable the gateway reads, in one place (``Settings.from_env``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hadis.api.wire import MAX_PROMPT_CHARS

DEFAULT_SIZES = ("256x256", "512x512", "768x768", "1024x1024")
#: Default largest request body (prompts are at most a few thousand characters).
DEFAULT_MAX_BODY_BYTES = 1 << 20


class SettingsError(ValueError):
    """A bad environment variable; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Gateway process settings (the cascade itself comes from the watched config file)."""

    config_path: Path
    host: str = "0.0.0.0"
    port: int = 8000
    queue_capacity: int = 256
    spacy_model: str | None = None  # None: the router's default pipeline
    config_poll_s: float = 1.0
    retry_after_s: int = 1
    worker_grace_s: float = 2.0
    connect_timeout_s: float = 2.0
    # request limits, each refused with a 400 naming the field (413 for the body)
    max_images: int = 4  # ``n``
    sizes: tuple[str, ...] = DEFAULT_SIZES  # ``size``
    max_prompt_chars: int = MAX_PROMPT_CHARS  # ``prompt`` and ``negative_prompt``; the workers' limit at most
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # a file with one API key per line (a mounted Secret): every /v1/* request then needs
    # ``Authorization: Bearer <key>``; None: no authentication
    api_keys_file: Path | None = None
    cascade_model: str = "hadis"
    threshold_window: int = 2000
    log_level: str = "info"
    access_log: bool = False  # uvicorn's line per request: CPU the router needs under load
    worker_connections: int = 512  # HTTP connections to all workers together (kept alive)
    score_cache: int = 16384  # router scores kept for repeated prompts (the E1 set has 5,000)
    router_process: bool = True  # the router in a child process (see router_process.py), not a thread
    router_nice: int = 10  # that child's nice increment: the event loop goes first
    # worker endpoints whose host is a DNS name (the operator's headless Services) are resolved to
    # one endpoint per address (one per pod) every this many seconds and on a config change; 0: off
    endpoint_refresh_s: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        path = e.get("HADIS_CONFIG_PATH")
        if not path:
            raise SettingsError("HADIS_CONFIG_PATH: required (the cascade configuration JSON file)")
        sizes = tuple(s.strip() for s in e.get("HADIS_IMAGE_SIZES", ",".join(DEFAULT_SIZES)).split(","))
        for s in sizes:
            _parse_size(s, "HADIS_IMAGE_SIZES")
        return cls(
            config_path=Path(path),
            host=e.get("HADIS_GATEWAY_HOST", "0.0.0.0"),
            port=_int(e, "HADIS_GATEWAY_PORT", 8000, 1, 65535),
            queue_capacity=_int(e, "HADIS_QUEUE_CAPACITY", 256, 1, 1_000_000),
            spacy_model=e.get("HADIS_SPACY_MODEL") or None,
            config_poll_s=_float(e, "HADIS_CONFIG_POLL_S", 1.0, 0.01),
            retry_after_s=_int(e, "HADIS_RETRY_AFTER_S", 1, 1, 3600),
            worker_grace_s=_float(e, "HADIS_WORKER_GRACE_S", 2.0, 0.0),
            connect_timeout_s=_float(e, "HADIS_CONNECT_TIMEOUT_S", 2.0, 0.01),
            max_images=_int(e, "HADIS_MAX_IMAGES", 4, 1, 64),
            sizes=sizes,
            max_prompt_chars=_int(e, "HADIS_MAX_PROMPT_CHARS", MAX_PROMPT_CHARS, 1, MAX_PROMPT_CHARS),
            max_body_bytes=_int(e, "HADIS_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1024, 64 << 20),
            api_keys_file=Path(keys) if (keys := e.get("HADIS_API_KEYS_FILE")) else None,
            cascade_model=e.get("HADIS_CASCADE_MODEL", "hadis"),
            threshold_window=_int(e, "HADIS_THRESHOLD_WINDOW", 2000, 1, 10_000_000),
            log_level=e.get("HADIS_LOG_LEVEL", "info"),
            access_log=_bool(e, "HADIS_ACCESS_LOG", False),
            worker_connections=_int(e, "HADIS_WORKER_CONNECTIONS", 512, 1, 100_000),
            score_cache=_int(e, "HADIS_SCORE_CACHE", 16384, 0, 10_000_000),
            router_process=_bool(e, "HADIS_ROUTER_PROCESS", True),
            router_nice=_int(e, "HADIS_ROUTER_NICE", 10, 0, 19),
            endpoint_refresh_s=_float(e, "HADIS_ENDPOINT_REFRESH_S", 5.0, 0.0),
        )


def parse_size(size: str) -> tuple[int, int]:
    """``"512x768"`` → (width, height)."""
    return _parse_size(size, "size")


def _parse_size(size: str, name: str) -> tuple[int, int]:
    w, sep, h = size.partition("x")
    if not sep or not w.isdigit() or not h.isdigit():
        raise SettingsError(f"{name}: {size!r} is not WIDTHxHEIGHT")
    if not (64 <= int(w) <= 4096 and 64 <= int(h) <= 4096):
        raise SettingsError(f"{name}: {size!r}: width and height must be within [64, 4096]")
    return int(w), int(h)


def _int(e: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = e.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected an integer, got {raw!r}") from None
    if not lo <= v <= hi:
        raise SettingsError(f"{name}: {v} is outside [{lo}, {hi}]")
    return v


def _bool(e: Mapping[str, str], name: str, default: bool) -> bool:
    raw = e.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}: expected true or false, got {raw!r}")


def _float(e: Mapping[str, str], name: str, default: float, lo: float) -> float:
    raw = e.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = float(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
    if not v >= lo:
        raise SettingsError(f"{name}: {v} is below {lo}")
    return v
