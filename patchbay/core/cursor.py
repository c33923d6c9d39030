"""Signed cursors: opaque, URL-safe, versioned, HMAC-signed continuation tokens.

A cursor holds each source's resume position and a digest of the query it belongs to, so it
works on any worker with the same ``secret_key`` and is refused when tampered with or replayed
against another query. Positions may hold dates, datetimes and Decimals: they are tagged so that
they come back with their types.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from patchbay.core.errors import CursorError

__all__ = ["CursorSigner", "query_digest"]

VERSION = 1
_SIG_BYTES = 16


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, bytes):
        return {"$b": base64.b64encode(value).decode()}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag == "$dt":
                return datetime.fromisoformat(inner)
            if tag == "$d":
                return date.fromisoformat(inner)
            if tag == "$dec":
                return Decimal(inner)
            if tag == "$b":
                return base64.b64decode(inner)
        return {k: _decode(v) for k, v in value.items()}
    return value


def query_digest(query: Any) -> str:
    """A short digest of the query's JSON form: a cursor only continues the query it came from."""
    text = json.dumps(_encode(query), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class CursorSigner:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the cursor key must be at least 16 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "CursorSigner(key=***)"

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIG_BYTES]

    def dump(self, digest: str, positions: dict[str, Any]) -> str:
        body = {"v": VERSION, "q": digest, "p": _encode(positions)}
        payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        token = self._sign(payload) + payload
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode()

    def load(self, cursor: str, digest: str) -> dict[str, Any]:
        """The positions in ``cursor``; CursorError when it is forged or from another query."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (ValueError, TypeError):
            raise CursorError("invalid cursor: not a patchbay cursor") from None
        signature, payload = raw[:_SIG_BYTES], raw[_SIG_BYTES:]
        if len(signature) < _SIG_BYTES or not hmac.compare_digest(signature, self._sign(payload)):
            raise CursorError("invalid cursor: signature does not match (tampered, or another key)")
        body = json.loads(payload)
        if body.get("v") != VERSION:
            raise CursorError(f"invalid cursor: version {body.get('v')!r} is not supported")
        if body.get("q") != digest:
            raise CursorError("invalid cursor: it belongs to a different query")
        positions = _decode(body.get("p"))
        if not isinstance(positions, dict):
            raise CursorError("invalid cursor: no positions")
        return positions
