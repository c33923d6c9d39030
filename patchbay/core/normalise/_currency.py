"""Currencies: ISO 4217 alpha codes from codes, names and symbols.

The ISO tables also tell ``_numbers`` which three-letter word beside an amount is a currency.
"""

from __future__ import annotations

import functools

import pycountry

from patchbay.core.normalise._errors import NormaliseError, _show
from patchbay.core.normalise._text import _as_text

_CURRENCY_SYMBOLS = {
    "€": "EUR",
    "£": "GBP",
    "$": "USD",
    "US$": "USD",
    "¥": "JPY",
    "₹": "INR",
    "₩": "KRW",
    "₽": "RUB",
    "₺": "TRY",
    "₪": "ILS",
    "₴": "UAH",
}


@functools.cache
def _currency_tables() -> tuple[frozenset[str], dict[str, str]]:
    """ISO 4217 alpha codes, and numeric codes and upper-cased names -> alpha code."""
    codes = frozenset(c.alpha_3 for c in pycountry.currencies)
    other = {c.name.upper(): c.alpha_3 for c in pycountry.currencies}
    other.update({c.numeric: c.alpha_3 for c in pycountry.currencies if hasattr(c, "numeric")})
    return codes, other


@functools.lru_cache(maxsize=1024)
def _currency_text(raw: str) -> tuple[str | None, str | None]:
    text = raw.strip()
    if not text:
        return None, None
    codes, other = _currency_tables()
    code = " ".join(text.upper().split())
    if code in codes:
        return code, None
    if text.isdigit() and len(text) <= 3:
        found = other.get(text.zfill(3))
    else:
        found = _CURRENCY_SYMBOLS.get(code) or other.get(code)
    if found is None:
        return None, f"not a currency: {_show(text)}"
    return found, None


def currency(value: object) -> str | None:
    """Normalise a currency to its ISO 4217 alpha code (``eur`` -> ``EUR``).

    Accepts alpha codes in any case, numeric codes (``978``, ``"036"``, ``36``), ISO names
    (``Euro``, ``Pound Sterling``) and the symbols € £ $ ¥ (EUR, GBP, USD, JPY) plus a few
    unambiguous others (₹ ₩ ₽ ₺ ₪ ₴, US$).

    Raises:
        NormaliseError: Not a current ISO 4217 currency.
    """
    if value is None:
        return None
    code, reason = _currency_text(value if type(value) is str else _as_text(value))
    if reason is not None:
        raise NormaliseError(reason)
    return code
