"""The error every normaliser raises, and how a value is shown inside its reason."""

from __future__ import annotations


class NormaliseError(ValueError):
    """A value that cannot be normalised.

    Attributes:
        reason: A short human text naming the value, e.g.
            ``not a date in format %d/%m/%Y: '31/02/2019'``; ``str(error)`` is the same text.
    """

    reason: str

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _show(value: object) -> str:
    """The repr of a value for an error reason, cut short so a stray blob cannot flood a log."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
