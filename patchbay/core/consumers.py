"""Consumers: every call runs as one. Policies (fields, rows, masking) attach here later."""

from __future__ import annotations

from dataclasses import dataclass

from patchbay.core.errors import PatchbayError

__all__ = ["LOCAL", "AccessDenied", "Consumer"]

LOCAL = "local"


class AccessDenied(PatchbayError):
    """The consumer may not do what it asked."""


@dataclass(frozen=True, slots=True)
class Consumer:
    name: str
    trusted: bool = False

    def require(self, entity: str, operation: str) -> None:
        """Raise unless the consumer may run ``operation`` on ``entity``.

        A trusted consumer may do everything; a consumer without a policy sees nothing.
        """
        if not self.trusted:
            raise AccessDenied(
                f"consumer {self.name!r} has no policy allowing {operation} on {entity}; "
                "it sees nothing"
            )
