"""Optional API keys: with ``HADIS_API_KEYS_FILE`` set, every ``/v1/*`` request needs a key.

The file (in Kubernetes a mounted Secret) holds one key per line; blank lines and lines starting
with ``#`` are ignored. A request carries its key as ``Authorization: Bearer <key>``, which is
what the official ``openai`` client sends for its ``api_key``. The file is re-read every poll
interval, so a rotated Secret takes effect without a restart; a file that cannot be read then
keeps the keys last read. Keys are compared by their SHA-256 digests with
:func:`hmac.compare_digest`, against every key, so the time taken says nothing about how much of a
key matched or which key did. Keys are never logged; only their number is.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from pathlib import Path

log = logging.getLogger(__name__)


class ApiKeysError(ValueError):
    """The keys file cannot be read; the message names ``HADIS_API_KEYS_FILE`` and the reason."""


def parse_keys(text: str) -> list[str]:
    """The keys in a keys file's text: one per line, stripped; blank lines and ``#`` comments ignored."""
    keys = []
    for line in text.splitlines():
        key = line.strip()
        if key and not key.startswith("#"):
            keys.append(key)
    return keys


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def bearer_token(authorization: bytes | None) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` header value (scheme case-insensitive)."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    token = token.strip()
    return token or None


class ApiKeys:
    """The accepted keys, read from ``path`` (:meth:`reload`); :meth:`allows` checks a request."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._digests: tuple[bytes, ...] = ()
        self._text: str | None = None
        try:
            self.reload()
        except OSError as e:  # at start-up: refuse to start rather than serve without the keys
            raise ApiKeysError(f"HADIS_API_KEYS_FILE: cannot read {path}: {e.strerror or e}") from None

    def __len__(self) -> int:
        return len(self._digests)

    def reload(self) -> bool:
        """Read the file again; True when its keys changed. Raises OSError when it cannot be read."""
        text = self.path.read_text(encoding="utf-8", errors="replace")
        if text == self._text:
            return False
        self._text = text
        self._digests = tuple(_digest(k.encode()) for k in dict.fromkeys(parse_keys(text)))
        if self._digests:
            log.info("API keys: %d key(s) read from %s", len(self._digests), self.path)
        else:
            log.warning("API keys: %s holds no key; every /v1 request is refused", self.path)
        return True

    def allows(self, authorization: bytes | None) -> bool:
        """Whether an ``Authorization`` header value carries one of the keys (constant time)."""
        token = bearer_token(authorization)
        if token is None:
            return False
        candidate = _digest(token)
        found = False
        for digest in self._digests:  # no early exit: every key is compared
            found |= hmac.compare_digest(candidate, digest)
        return found

    async def run(self, poll_s: float) -> None:
        """Re-read the file every ``poll_s`` seconds (a rotated Secret applies without a restart)."""
        failing = False
        while True:
            await asyncio.sleep(poll_s)
            try:
                self.reload()
                failing = False
            except OSError as e:
                if not failing:  # once per outage, not every poll
                    log.warning("API keys: cannot read %s (%s); keeping the %d key(s) read before",
                                self.path, e.strerror or e, len(self))  # fmt: skip
                failing = True
