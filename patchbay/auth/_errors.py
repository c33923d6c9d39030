"""``AuthError``: the one error the auth package raises (a ``SourceError``)."""

from __future__ import annotations

from patchbay.core.errors import SourceError

__all__ = ["AuthError"]


class AuthError(SourceError):
    """Authenticating with a source failed. The message names the source and what to do.

    ``retryable`` is true when trying again later may work (the token endpoint is down or
    answered 5xx); false when a person must change something (credentials, URL, a new login).
    The auth package itself never retries: that is the resilience layer's decision.
    """

    def __init__(
        self,
        source: str,
        message: str,
        *,
        owner: str | None = None,
        status_code: int | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(source, message, owner=owner)
        self.status_code = status_code
        self.retryable = retryable

    def again(self) -> AuthError:
        """A fresh copy, to hand the same failure to every caller that waited for it."""
        return AuthError(
            self.source,
            self.detail,
            owner=self.owner,
            status_code=self.status_code,
            retryable=self.retryable,
        )
