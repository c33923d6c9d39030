"""E-mail addresses: a regular expression for common ones, ``email_validator`` for the rest."""

from __future__ import annotations

import functools
import re

from email_validator import EmailNotValidError, validate_email

from patchbay.core.normalise._errors import NormaliseError, _show
from patchbay.core.normalise._text import strip

# Conservative: lower-case dot-atom local part, ASCII domain of >= 2 labels of at most 63
# characters that neither start nor end with "-", alphabetic TLD. Labels with "--" in
# positions 3-4 (Punycode or reserved) and the special-use TLDs email_validator rejects are
# left to the slow path, so everything accepted here is accepted there too.
_EMAIL_FAST = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:(?!-|..--)[a-z0-9-]{1,63}(?<!-)\.)+"
    r"(?!(?:arpa|invalid|local|localhost|onion|test)\Z)[a-z]{2,63}",
    re.ASCII,
).fullmatch


@functools.lru_cache(maxsize=4096)
def _email_slow(text: str) -> tuple[str | None, str | None]:
    """``(address, None)`` or ``(None, reason)``; cached, rejections included."""
    try:
        valid = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        return None, f"not a valid email address: {_show(text)} ({exc})"
    return valid.normalized.lower(), None


def email(value: object) -> str | None:
    """Trim, lower-case and syntactically validate an e-mail address.

    Common ASCII addresses are checked by one compiled regular expression; anything else
    (internationalised domains, unusual but valid forms) by ``email_validator`` without DNS
    look-ups, cached.

    Raises:
        NormaliseError: The address is not syntactically valid.
    """
    if value is None:
        return None
    cleaned = strip(value)
    if cleaned is None:
        return None
    text = cleaned.lower()
    if len(text) <= 254 and _EMAIL_FAST(text) is not None:
        return text
    address, reason = _email_slow(text)
    if reason is not None:
        raise NormaliseError(reason)
    return address
