"""Decimals and integers as legacy systems write them (``1.234,50``, ``(12.00)``, ``1,234``).

A currency symbol, word or ISO code beside an amount is accepted and dropped; ``_currency`` knows
the ISO codes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import NoReturn

from patchbay.core.normalise._currency import _currency_tables
from patchbay.core.normalise._errors import NormaliseError, _show
from patchbay.core.normalise._text import _as_text

_STYLES = {
    "auto": "auto",
    "dot": "dot",
    "decimal_point": "dot",
    "comma": "comma",
    "decimal_comma": "comma",
}
_SPACES = " \u00a0\u202f\u2009"  # space, no-break, narrow no-break, thin: all seen as groups
# The apostrophe groups Swiss thousands; word processors turn it into a right single quote.
_APOSTROPHES = "'\u2019"
_CURRENCY_SIGNS = "$€£¥₹₩₽₺₪₴₱₦฿₫¢"
# Words some European ledgers write instead of a code; 3-letter codes are checked against ISO.
_CURRENCY_WORDS = frozenset({"kr", "kr.", "zł", "kč", "ft", "fr", "fr.", "lei"})
_CURRENCY_TOKEN = rf"(?:[^\W\d_]{{1,3}}\.?|[a-z]{{0,2}}[{_CURRENCY_SIGNS}])"

# Whatever surrounds the number (sign, parentheses, currency) and the number itself, which
# runs from the first to the last digit and may start or end with a separator (".5", "12.").
_AMOUNT = re.compile(
    r"(?P<pre>[^0-9]*?)"
    rf"(?P<num>[.,]?[0-9](?:[0-9.,{_APOSTROPHES}{_SPACES}]*[0-9])?[.,]?)"
    r"(?P<post>[^0-9]*)",
    re.ASCII,
).fullmatch
_PRE = re.compile(
    rf"(\()?([+\-\u2212])?({_CURRENCY_TOKEN})?([+\-\u2212])?(\()?", re.IGNORECASE
).fullmatch
_POST = re.compile(
    rf"(\))?([\-\u2212])?({_CURRENCY_TOKEN})?([\-\u2212])?(\))?", re.IGNORECASE
).fullmatch


def _core_rx(point: str, groups: str) -> Callable[[str], re.Match[str] | None]:
    """Digits with one kind of well-formed thousands separator and an optional fraction."""
    sep = re.escape(groups)
    return re.compile(
        rf"(?P<int>\d{{1,3}}(?P<sep>[{sep}])\d{{3}}(?:(?P=sep)\d{{3}})*|\d+)?"
        rf"(?:{re.escape(point)}(?P<frac>\d*))?",
        re.ASCII,
    ).fullmatch


_CORE = {
    "dot": _core_rx(".", "," + _APOSTROPHES + _SPACES),
    "comma": _core_rx(",", "." + _APOSTROPHES + _SPACES),
}


def _auto_style(num: str) -> str:
    """Which separator is the decimal point, by the rules documented on parse_decimal."""
    comma, point = num.rfind(","), num.rfind(".")
    if comma >= 0 and point >= 0:
        return "dot" if point > comma else "comma"
    if comma >= 0:
        if num.count(",") > 1:
            return "dot"
        whole, frac = num[:comma], num[comma + 1 :]
        if len(frac) == 3 and frac.isdigit() and whole.isdigit() and len(whole) <= 3:
            # "1,234" groups thousands; "0,125" cannot, a group never starts with 0.
            return "dot" if whole[0] != "0" else "comma"
        return "comma"
    if point >= 0 and num.count(".") > 1:
        return "comma"
    return "dot"


def _is_currency(token: str | None) -> bool:
    if not token:
        return True
    lowered = token.lower()
    if lowered in _CURRENCY_WORDS or any(c in _CURRENCY_SIGNS for c in token):
        return True
    return len(token) == 3 and token.upper() in _currency_tables()[0]


def _decimal_text(text: str, style: str) -> Decimal:
    """The slow path: signs, parentheses, currency and thousands separators in any style."""
    whole = _AMOUNT(text)
    if whole is None:
        raise ValueError(text)
    pre = _PRE("".join(whole["pre"].split()))
    post = _POST("".join(whole["post"].split()))
    if pre is None or post is None:
        raise ValueError(text)
    opened = (pre[1] or pre[5] or "") + (post[1] or post[5] or "")
    signs = [s for s in (pre[2], pre[4], post[2], post[4]) if s]
    if (
        opened not in ("", "()")
        or len(signs) + bool(opened) > 1
        or (pre[3] and post[3])
        or not _is_currency(pre[3] or post[3])
    ):
        raise ValueError(text)
    negative = bool(opened) or (bool(signs) and signs[0] != "+")
    return _decimal_number(whole["num"], style, negative)


def _decimal_number(num: str, style: str, negative: bool) -> Decimal:
    """Digits and separators only (``1.234,50``), read in ``style``."""
    if style == "auto":
        style = _auto_style(num)
    core = _CORE[style](num)
    if core is None:
        raise ValueError(num)
    integral, sep, frac = core["int"] or "0", core["sep"], core["frac"]
    if sep:
        integral = integral.replace(sep, "")
    digits = f"{integral}.{frac}" if frac else integral
    return Decimal("-" + digits if negative else digits)


_SEPARATED = re.compile(r"-?[0-9][0-9.,]*[0-9]", re.ASCII).fullmatch


def _decimal_parser(style: str) -> Callable[[object], Decimal | None]:
    # Fast path per style: an optional "-", digits with the style's usual thousands
    # separator and decimal point; anything else takes _decimal_text.
    if style == "comma":
        fast = re.compile(r"-?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?", re.ASCII).fullmatch

        def plain(text: str) -> str:
            return text.replace(".", "").replace(",", ".")

    elif style == "dot":
        fast = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?", re.ASCII).fullmatch

        def plain(text: str) -> str:
            return text.replace(",", "")

    else:
        # "1,234" is ambiguous in auto style, so only separator-free numbers are fast.
        fast = re.compile(r"-?\d+(?:\.\d+)?", re.ASCII).fullmatch

        def plain(text: str) -> str:
            return text

    def parse(value: object) -> Decimal | None:
        if value is None:
            return None
        if type(value) is str:
            if fast(value) is not None:
                number = Decimal(plain(value))
                # "-0.00" is zero; a signed zero would print as "-0.00" in JSON.
                return number.copy_abs() if value[0] == "-" and not number else number
            if _SEPARATED(value) is not None:
                # Digits and separators only (auto style's "1.234,50"): skip the search for
                # signs and currencies around the number.
                negative = value[0] == "-"
                try:
                    number = _decimal_number(value[1:] if negative else value, style, negative)
                except (ValueError, InvalidOperation):
                    raise NormaliseError(
                        f"not a decimal number ({style} style): {_show(value)}"
                    ) from None
                return number if number else number.copy_abs()
            text = value.strip()
        elif type(value) is int:
            return Decimal(value)
        elif isinstance(value, Decimal):
            if not value.is_finite():
                raise NormaliseError(f"not a decimal number ({style} style): {_show(value)}")
            return value if value else value.copy_abs()
        elif isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise NormaliseError(f"not a decimal number ({style} style): {_show(value)}")
            # The shortest repr, never the binary expansion: 0.1 -> Decimal("0.1").
            number = Decimal(repr(value))
            return number if number else number.copy_abs()
        elif isinstance(value, bool):
            raise NormaliseError(f"not a decimal number ({style} style): {_show(value)}")
        elif isinstance(value, int):
            return Decimal(int(value))
        else:
            text = _as_text(value).strip()
        if not text:
            return None
        try:
            number = _decimal_text(text, style)
        except (ValueError, InvalidOperation):
            raise NormaliseError(f"not a decimal number ({style} style): {_show(text)}") from None
        return number if number else number.copy_abs()

    return parse


_BY_STYLE = {style: _decimal_parser(style) for style in ("auto", "dot", "comma")}
_DECIMAL_PARSERS = {name: _BY_STYLE[style] for name, style in _STYLES.items()}


def compile_decimal(style: str = "auto") -> Callable[[object], Decimal | None]:
    """Return the decimal parser for ``style``; see :func:`parse_decimal` for the forms.

    Raises:
        NormaliseError: ``style`` is not one of auto, dot, comma, decimal_point,
            decimal_comma.
    """
    parser = _DECIMAL_PARSERS.get(style)
    if parser is None:
        raise NormaliseError(
            f"unknown decimal style: {_show(style)} (use auto, dot, comma, decimal_point or "
            "decimal_comma)"
        )
    return parser


def parse_decimal(value: object, style: str = "auto") -> Decimal | None:
    """Parse an amount as legacy systems write it into an exact ``Decimal``.

    Accepted: ``1234.50``, ``1,234.50``, ``1.234,50``, ``1 234,50``, ``1'234.50``, ``(12.00)``
    (accounting negative), ``-12.00``, ``12.00-``, ``+12``, U+2212 minus, a currency
    symbol or ISO code before or after the number (``€ 1.234,50``, ``$1,234.50``,
    ``1234.50 EUR``, ``US$5``), ints, floats (via their shortest repr) and finite Decimals.
    Thousands groups must be well formed: one separator kind, groups of three.

    Args:
        value: The value to parse.
        style: ``"dot"`` (``.`` is the decimal point; ``,``, ``'`` and spaces group thousands),
            ``"comma"`` (``,`` is the decimal point; ``.``, ``'`` and spaces group thousands)
            or ``"auto"``: when both ``,`` and ``.`` appear the last one is the decimal point;
            a lone ``,`` groups thousands when exactly three digits follow it and one to three
            digits (not starting with 0) precede it, and so does a repeated ``,``; otherwise it
            is the decimal point. A lone ``.`` is the decimal point, a repeated one groups
            thousands. ``"decimal_point"`` and ``"decimal_comma"`` are aliases.

    Returns:
        The number (never a negative zero), or ``None`` for a missing value.

    Raises:
        NormaliseError: Not a number in that style (``12,3x``, ``abc``, NaN, Infinity, a
            malformed group such as ``1,23,4.5``), or an unknown style.
    """
    return compile_decimal(style)(value)


def integer(value: object) -> int | None:
    """Parse an integer: ints, integral floats and Decimals, text such as ``1,234`` or ``12.0``.

    Text other than plain digits is read as :func:`parse_decimal` reads it in auto style and
    must be integral. Booleans are rejected: a bool in an integer field is a mapping mistake.

    Raises:
        NormaliseError: Not an integral number.
    """
    if value is None:
        return None
    if type(value) is int:
        return value
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value) if len(value) <= 4300 else _integer_error(value)
    if isinstance(value, bool):
        return _integer_error(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else _integer_error(value)
    if isinstance(value, Decimal):
        number = value
    else:
        try:
            parsed = _DECIMAL_PARSERS["auto"](value)
        except NormaliseError:
            return _integer_error(_as_text(value).strip())
        if parsed is None:
            return None
        number = parsed
    # adjusted() bounds the digits int() would have to produce (Python's own limit is 4300).
    if not number.is_finite() or number.adjusted() > 4300 or number != number.to_integral_value():
        return _integer_error(value)
    return int(number)


def _integer_error(value: object) -> NoReturn:
    raise NormaliseError(f"not an integer: {_show(value)}")
