"""Consumers: every call runs as one, under its policy (``patchbay.core.policy``).

``local`` is the trusted default of Python and CLI callers. A consumer without a policy sees
nothing; a trusted one sees everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from patchbay.core.errors import PatchbayError

if TYPE_CHECKING:
    from patchbay.core.policy import EntityPolicy, Policy

__all__ = ["LOCAL", "AccessDenied", "Consumer", "RateLimited"]

LOCAL = "local"


class AccessDenied(PatchbayError):
    """The consumer may not do what it asked."""


class RateLimited(PatchbayError):
    """The consumer made more requests than its rate limit allows; ``retry_after`` says, in
    seconds, when the next one will be accepted. Not an AccessDenied: the request is allowed,
    just not now (the gateway answers 429, not 403)."""

    def __init__(self, consumer: str, retry_after: float) -> None:
        self.consumer = consumer
        self.retry_after = retry_after
        super().__init__(
            f"consumer {consumer!r} is over its rate limit; retry in {retry_after:.1f} s"
        )


@dataclass(frozen=True, slots=True)
class Consumer:
    name: str
    trusted: bool = False
    policy: Policy | None = None

    def require(self, entity: str, operation: str) -> EntityPolicy | None:
        """The consumer's rules for ``operation`` on ``entity``, or None when it is trusted.

        Raises AccessDenied when it may not: a consumer without a policy sees nothing.
        """
        if self.trusted:
            return None
        if self.policy is None:
            raise AccessDenied(
                f"consumer {self.name!r} has no policy allowing {operation} on {entity}; "
                "it sees nothing"
            )
        return self.policy.for_entity(entity, operation)
