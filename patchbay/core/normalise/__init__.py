"""Normalisers: small pure functions that turn one messy legacy value into one canonical value.

A mapping compiles its normalisers once and then calls them for every row, so they sit on the hot
path (a million rows must stream at more than 100k rows/s in total). Each one is written so that
the common case costs well under a microsecond: plain type checks, one compiled regular
expression, no ``strptime``, no exceptions. Slower, rarer forms take a second path that is
cached where the same values repeat (e-mail addresses outside the fast path, countries,
currencies, phone numbers).

Shared rules:

* ``None`` in gives ``None`` out; an empty or whitespace-only string is *missing*, not an error,
  and also gives ``None``. So do legacy zero dates such as ``0000-00-00``.
* A value that cannot be normalised raises :class:`NormaliseError`, a ``ValueError`` whose text
  is a short reason naming the value, e.g. ``not a date in format %d/%m/%Y: '31/02/2019'``.
* ``compile_*`` functions check their arguments when called (at mapping load time) and raise
  ``NormaliseError`` for a bad format, style or time zone; the function they return does not
  re-check them per row.

The normalisers live in private modules, one concept each (``_text``, ``_email``,
``_phone``, ``_dates`` with its format compiler ``_date_formats``, ``_numbers``, ``_currency``,
``_places``, ``_codes``, and ``_errors``); import them from here.
"""

from patchbay.core.normalise._codes import boolean, compile_enum
from patchbay.core.normalise._currency import currency
from patchbay.core.normalise._dates import compile_date, compile_datetime
from patchbay.core.normalise._email import email
from patchbay.core.normalise._errors import NormaliseError
from patchbay.core.normalise._numbers import compile_decimal, integer, parse_decimal
from patchbay.core.normalise._phone import phone
from patchbay.core.normalise._places import country
from patchbay.core.normalise._text import squash, strip

__all__ = [
    "NormaliseError",
    "boolean",
    "compile_date",
    "compile_datetime",
    "compile_decimal",
    "compile_enum",
    "country",
    "currency",
    "email",
    "integer",
    "parse_decimal",
    "phone",
    "squash",
    "strip",
]
