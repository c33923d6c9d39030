"""API keys of the REST gateway: ``pb_<id>_<secret>``, each mapped to one consumer.

Only an HMAC-SHA256 of the secret, keyed with the config's ``secret_key``, is stored: a copy of
the ``state`` database alone does not let anyone check guesses. The secret is 256 random bits, so
a slow KDF would add latency to every request without adding safety. Keys made under an earlier
``secret_key`` still verify while it is listed in ``previous_secret_keys``. The comparison is
constant-time. The table (``api_keys``) comes with the state migrations (0003).

A key verified against the database is remembered by the process for ``cache_seconds`` (1 s by
default) as its stored hash, never its secret: a request in that second checks the secret's HMAC
against it without a database read (and without a trip to a worker thread), which was a fifth of
the gateway's time on a page. Revoking a key forgets it in the revoking process at once; every
other worker refuses it within ``cache_seconds``. Unknown, wrong and revoked credentials are never
remembered: each of them costs a database read, as before.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from patchbay import state
from patchbay.core.errors import ConfigError

__all__ = ["PREFIX", "ApiKey", "ApiKeys", "api_keys_table"]

PREFIX = "pb"
_TOKEN = re.compile(r"^pb_([0-9a-f]{16})_([A-Za-z0-9_\-]{20,200})$")
# last_used_at is a hint for people, not an audit trail (that is the audit log): written at most
# once a minute per key, so a busy key does not turn every read into a write.
_TOUCH_EVERY = timedelta(minutes=1)

api_keys_table = sa.Table(
    "api_keys",
    sa.MetaData(),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("consumer", sa.String(200), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("secret_hash", sa.String(128), nullable=False),
    sa.Column("scopes", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
)


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret."""

    id: str
    consumer: str
    name: str
    scopes: frozenset[str] | None  # None: the consumer's whole policy
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class ApiKeys:
    """Create, list, revoke and verify API keys in the ``state`` database."""

    def __init__(
        self,
        engine: sa.Engine,
        secret_keys: Sequence[str],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        cache_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not secret_keys or not secret_keys[0]:
            raise ConfigError(
                "API keys are stored as an HMAC keyed with secret_key: add "
                "'secret_key: env:PATCHBAY_SECRET_KEY' (or file:PATH) to the config",
                path="secret_key",
            )
        self._engine = engine
        self._keys = [key.encode() for key in secret_keys]
        self._clock = clock
        self._ready = False
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        # key id -> (the key, its stored hash, when it was read): live keys only.
        self._verified: dict[str, tuple[ApiKey, str, float]] = {}

    def __repr__(self) -> str:
        return "ApiKeys(secret_keys=***)"

    def _table(self) -> sa.Table:
        if not self._ready:
            state.upgrade(self._engine)
            if self._engine.dialect.name == "sqlite" and self._engine.url.database not in (
                None, "", ":memory:"
            ):
                # Every request reads its key while the audit writer commits to the same file:
                # in SQLite's default journal mode a commit makes readers wait (milliseconds
                # each, under load tens); in WAL mode readers never wait for the writer. The
                # mode is a property of the database file, set once.
                with self._engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            self._ready = True
        return api_keys_table

    def _hash(self, secret: str, key: bytes) -> str:
        return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()

    def create(
        self, consumer: str, name: str, scopes: Sequence[str] | None = None
    ) -> tuple[ApiKey, str]:
        """A new key for ``consumer``: the stored key and the token, shown this once only."""
        table = self._table()
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = self._clock()
        scope_set = None if scopes is None else frozenset(scopes)
        with self._engine.begin() as conn:
            conn.execute(
                table.insert().values(
                    id=key_id,
                    consumer=consumer,
                    name=name,
                    secret_hash=self._hash(secret, self._keys[0]),
                    scopes=None if scope_set is None else json.dumps(sorted(scope_set)),
                    created_at=now,
                )
            )
        key = ApiKey(key_id, consumer, name, scope_set, now, None, None)
        return key, f"{PREFIX}_{key_id}_{secret}"

    def list(self) -> list[ApiKey]:
        table = self._table()
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(table).order_by(table.c.created_at, table.c.id)).all()
        return [_key(row) for row in rows]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key (kept, for the record); False when there is no such live key."""
        table = self._table()
        self._verified.pop(key_id, None)
        with self._engine.begin() as conn:
            result = conn.execute(
                table.update()
                .where(table.c.id == key_id, table.c.revoked_at.is_(None))
                .values(revoked_at=self._clock())
            )
        self._verified.pop(key_id, None)  # a request may have remembered it meanwhile
        return result.rowcount == 1

    def verify(self, token: str) -> ApiKey | None:
        """The live key ``token`` belongs to; None when it is malformed, unknown, wrong or
        revoked (the caller does not learn which)."""
        match = _TOKEN.match(token)
        if match is None:
            return None
        key_id, secret = match.groups()
        table = self._table()
        read_at = self._monotonic()
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.id == key_id)).first()
        if row is None:
            self._verified.pop(key_id, None)
            # Spend the same work as for a known id, so timing does not tell ids apart.
            hmac.compare_digest(self._hash(secret, self._keys[0]), "0" * 64)
            return None
        if row.revoked_at is not None:
            self._verified.pop(key_id, None)
        stored = str(row.secret_hash)
        if not self._matches(secret, stored) or row.revoked_at is not None:
            return None
        found = _key(row)
        self._touch(found)
        self._verified[key_id] = (found, stored, read_at)
        return found

    def recently_verified(self, token: str) -> ApiKey | None:
        """The key of ``token`` when the database confirmed it live within ``cache_seconds``
        and the secret matches; None means "ask the database" (:meth:`verify`), never "no"."""
        match = _TOKEN.match(token)
        if match is None:
            return None
        key_id, secret = match.groups()
        remembered = self._verified.get(key_id)
        if remembered is None:
            return None
        key, stored, read_at = remembered
        if self._monotonic() - read_at >= self._cache_seconds:
            self._verified.pop(key_id, None)
            return None
        return key if self._matches(secret, stored) else None

    def _matches(self, secret: str, stored: str) -> bool:
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(self._hash(secret, key), stored)
        return matched

    def _touch(self, key: ApiKey) -> None:
        now = self._clock()
        last = key.last_used_at
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        if last is not None and now - last < _TOUCH_EVERY:
            return
        table = api_keys_table
        with self._engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == key.id).values(last_used_at=now))


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands timestamps back naive; they were written as UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _key(row: sa.Row[object]) -> ApiKey:
    data = row._mapping
    raw_scopes = data["scopes"]
    scopes = None if raw_scopes is None else frozenset(json.loads(raw_scopes))
    created = _aware(data["created_at"])
    assert created is not None
    return ApiKey(
        id=data["id"],
        consumer=data["consumer"],
        name=data["name"],
        scopes=scopes,
        created_at=created,
        revoked_at=_aware(data["revoked_at"]),
        last_used_at=_aware(data["last_used_at"]),
    )
