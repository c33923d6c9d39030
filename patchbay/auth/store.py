"""The encrypted credential store: secrets kept in the ``state`` database, named by ``store:NAME``.

Each secret is encrypted with Fernet (AES-128-CBC with an HMAC-SHA256 tag: authenticated, so a
wrong key or a tampered row fails instead of decrypting to garbage). The Fernet keys are derived
from the configured secrets (``secret_key`` first, then ``previous_secret_keys``) with
HKDF-SHA256, a fixed salt ``KDF_SALT`` and info ``KDF_INFO``; the salt is fixed so that every
worker given the same secret derives the same key (the secrets are expected to be high-entropy
keys, not passwords). A ``MultiFernet`` encrypts with the first key and decrypts with any.

Rotating without downtime:

1. deploy every worker with ``secret_key: NEW`` and ``previous_secret_keys: [OLD]``: they read
   entries encrypted under either key;
2. ``patchbay creds rotate-key`` (``CredentialStore.rotate``) re-encrypts every entry under NEW in
   one transaction: readers see all old tokens or all new ones, and can read both;
3. drop ``previous_secret_keys``.

Entries are keyed by (name, tenant); tenant ``""`` is the default. The plaintext never reaches
the database, and no secret appears in a repr, a log line or an error message.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from patchbay import state
from patchbay.core.errors import PatchbayError

__all__ = [
    "KDF_INFO",
    "KDF_SALT",
    "CredentialNotFound",
    "CredentialStore",
    "CredentialTokenStore",
    "StoreError",
    "credentials_table",
    "derive_key",
]

KDF_SALT = b"patchbay.auth.store/v1"
KDF_INFO = b"patchbay credential store fernet key"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")

metadata = sa.MetaData()
credentials_table = sa.Table(
    "patchbay_credentials",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("tenant", sa.String(200), primary_key=True),
    sa.Column("secret", sa.Text, nullable=False),  # a Fernet token, never the plaintext
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


class StoreError(PatchbayError):
    """The credential store cannot do what was asked (no key, wrong key, bad name)."""


class CredentialNotFound(StoreError):
    """No credential under that name for that tenant."""

    def __init__(self, name: str, tenant: str) -> None:
        self.name = name
        self.tenant = tenant
        super().__init__(f"no credential {_label(name, tenant)} in the credential store")


def _label(name: str, tenant: str) -> str:
    return f"{name!r} for tenant {tenant!r}" if tenant else repr(name)


def derive_key(secret: str) -> bytes:
    """The Fernet key (url-safe base64 of 32 bytes) derived from one configured secret."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=KDF_SALT, info=KDF_INFO).derive(
        secret.encode("utf-8")
    )
    return base64.urlsafe_b64encode(raw)


def _fernet(keys: Sequence[str]) -> MultiFernet:
    if isinstance(keys, str) or not keys or not all(keys):
        raise StoreError(
            "the credential store needs secret_key (and previous_secret_keys only for rotation)"
        )
    return MultiFernet([Fernet(derive_key(k)) for k in keys])


def _check(name: str, tenant: str) -> None:
    if not _NAME.match(name) or len(name) > 200:
        raise StoreError(
            f"credential name {name!r} must start with a letter or digit and hold only "
            "letters, digits, '_', '.' and '-'"
        )
    if tenant and (not _NAME.match(tenant) or len(tenant) > 200):
        raise StoreError(
            f"tenant {tenant!r} must start with a letter or digit and hold only "
            "letters, digits, '_', '.' and '-'"
        )


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone=True columns; they were stored as UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class CredentialStore:
    """Secrets by (name, tenant), encrypted under keys derived from ``keys``.

    ``keys`` are the configured secrets, current first (``[secret_key, *previous_secret_keys]``):
    the first encrypts, any decrypts. Opening the store brings the state database up to date
    (``patchbay.state.upgrade``). Synchronous, like the other state stores.
    """

    def __init__(self, engine: sa.Engine, keys: Sequence[str]) -> None:
        self.engine = engine
        self._fernet = _fernet(keys)
        self._keys = len(keys)
        state.upgrade(engine)

    def __repr__(self) -> str:
        url = self.engine.url.render_as_string(hide_password=True)
        return f"CredentialStore({url!r}, keys={self._keys})"

    def set(self, name: str, secret: str, tenant: str = "") -> None:
        """Store (or replace) the secret of ``name`` for ``tenant`` ("" is the default tenant)."""
        _check(name, tenant)
        if not secret:
            raise StoreError(f"the secret of credential {_label(name, tenant)} is empty")
        token = self._fernet.encrypt(secret.encode("utf-8")).decode("ascii")
        now = datetime.now(UTC)
        t = credentials_table
        key = (t.c.name == name) & (t.c.tenant == tenant)
        for attempt in range(2):
            try:
                with self.engine.begin() as conn:
                    updated = conn.execute(
                        t.update().where(key).values(secret=token, updated_at=now)
                    )
                    if not updated.rowcount:
                        conn.execute(
                            t.insert().values(
                                name=name,
                                tenant=tenant,
                                secret=token,
                                created_at=now,
                                updated_at=now,
                            )
                        )
                return
            except sa.exc.IntegrityError:  # another writer inserted it first: update theirs
                if attempt:
                    raise

    def get(self, name: str, tenant: str = "") -> str:
        """The secret of ``name`` for ``tenant``.

        There is no fallback: a tenant without its own credential is an error
        (``CredentialNotFound``, naming name and tenant), even when the default tenant ("") has
        one, so that one tenant's requests never go out with another's credential.
        """
        t = credentials_table
        with self.engine.connect() as conn:
            token = conn.scalar(
                sa.select(t.c.secret).where((t.c.name == name) & (t.c.tenant == tenant))
            )
        if token is None:
            raise CredentialNotFound(name, tenant)
        return self._decrypt(name, tenant, token, self._fernet)

    def delete(self, name: str, tenant: str = "") -> bool:
        """Remove a credential; False when there was none."""
        t = credentials_table
        with self.engine.begin() as conn:
            result = conn.execute(t.delete().where((t.c.name == name) & (t.c.tenant == tenant)))
        return bool(result.rowcount)

    def list(self) -> list[tuple[str, str, datetime]]:
        """(name, tenant, updated_at) of every credential, in name and tenant order; no secrets."""
        t = credentials_table
        query = sa.select(t.c.name, t.c.tenant, t.c.updated_at).order_by(t.c.name, t.c.tenant)
        with self.engine.connect() as conn:
            return [(name, tenant, _aware(at)) for name, tenant, at in conn.execute(query)]

    def rotate(self, keys_new_first: Sequence[str]) -> int:
        """Re-encrypt every entry under the first of ``keys_new_first``; the others (and the keys
        this store was opened with) decrypt. One transaction: on any failure nothing changes.
        From then on the store uses ``keys_new_first``. Returns how many entries were rotated."""
        new = _fernet(keys_new_first)
        t = credentials_table
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(t.c.name, t.c.tenant, t.c.secret).with_for_update()).all()
            for name, tenant, token in rows:
                try:
                    fresh = new.rotate(token.encode("ascii"))
                except InvalidToken:
                    # Maybe encrypted under a key only this store was opened with.
                    plain = self._decrypt(name, tenant, token, self._fernet).encode("utf-8")
                    fresh = new.encrypt(plain)
                conn.execute(
                    t.update()
                    .where((t.c.name == name) & (t.c.tenant == tenant))
                    .values(secret=fresh.decode("ascii"))
                )
        self._fernet = new
        self._keys = len(keys_new_first)
        return len(rows)

    @staticmethod
    def _decrypt(name: str, tenant: str, token: str, fernet: MultiFernet) -> str:
        try:
            return fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise StoreError(
                f"credential {_label(name, tenant)} cannot be decrypted with the configured "
                "secret_key: was it rotated? give the old key in previous_secret_keys"
            ) from None


class CredentialTokenStore:
    """OAuth tokens kept encrypted in the credential store (as JSON under ``token.{key}``), so
    a rotated refresh token survives a restart. Implements ``patchbay.auth.TokenStore``."""

    def __init__(self, store: CredentialStore) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"CredentialTokenStore({self.store!r})"

    async def get(self, key: str) -> dict[str, Any] | None:
        try:
            text = await asyncio.to_thread(self.store.get, f"token.{key}")
        except CredentialNotFound:
            return None
        value = json.loads(text)
        return value if isinstance(value, dict) else None

    async def put(self, key: str, value: dict[str, Any]) -> None:
        await asyncio.to_thread(self.store.set, f"token.{key}", json.dumps(value))
