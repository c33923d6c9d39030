"""Phone numbers: E.164 through phonenumbers, cached per text and region."""

from __future__ import annotations

import functools

import phonenumbers

from patchbay.core.normalise._errors import NormaliseError, _show
from patchbay.core.normalise._text import strip

_E164 = phonenumbers.PhoneNumberFormat.E164
_POSSIBLE = phonenumbers.ValidationResult.IS_POSSIBLE


@functools.lru_cache(maxsize=8192)
def _phone_text(text: str, region: str | None) -> str | None:
    """E.164 of a possible number, else ``None``; cached because phonenumbers costs ~20 µs."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    # Only a full-length number has an E.164 form: is_possible_number() also accepts numbers
    # that can only be dialled locally ("0207"), which would come out as "+440207".
    if phonenumbers.is_possible_number_with_reason(number) != _POSSIBLE:
        return None
    # E.164 has no extension, so "x123" / "ext. 12" are dropped here.
    return phonenumbers.format_number(number, _E164)


def phone(value: object, region: str | None = None) -> str | None:
    """Format a phone number as E.164, or keep the trimmed original when it cannot be parsed.

    Args:
        value: Text (any national or international layout, with an optional extension, which
            is dropped) or an integer (a number stored without its ``+`` or leading zero).
        region: The ISO 3166 alpha-2 region for numbers written without a country code.

    Returns:
        E.164 (``+442079460018``) when phonenumbers finds a possible number, otherwise the
        trimmed original text.

    Raises:
        NormaliseError: The text has no digit at all (``n/a``, ``unknown``): a placeholder,
            not a phone number; or ``region`` is not a region phonenumbers knows.
    """
    if value is None:
        return None
    if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
        upper = region.upper()
        if upper not in phonenumbers.SUPPORTED_REGIONS:
            raise NormaliseError(f"unknown phone region: {_show(region)}")
        region = upper
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        digits = str(value)
        # An integer column has lost the "+" (and any leading zero): try it as national
        # first, then as international.
        return _phone_text(digits, region) or _phone_text("+" + digits, None) or digits
    text = strip(value)
    if text is None:
        return None
    formatted = _phone_text(text, region)
    if formatted is not None:
        return formatted
    if not any(c.isdigit() for c in text):
        raise NormaliseError(f"not a phone number: {_show(text)}")
    return text
