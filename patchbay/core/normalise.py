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
"""

from __future__ import annotations

import functools
import gettext
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from operator import itemgetter
from typing import NoReturn, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email

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

_UTC = UTC


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


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------

# Control characters that end a line (those str.splitlines() honours) become "\n" rather than
# vanishing, so "line1\vline2" from a FileMaker export does not glue into "line1line2". The
# unit separator is whitespace to Python, so it becomes a space for the same reason. Every
# other C0/C1 control is dropped; "\t" and "\n" stay.
_STRIP_TABLE: dict[int, str | None] = {
    code: None for code in (*range(0x20), *range(0x7F, 0xA0)) if chr(code) not in "\t\n"
}
_STRIP_TABLE.update({ord(c): "\n" for c in "\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"})
_STRIP_TABLE[0x1F] = " "
# Unicode spaces (no-break, narrow no-break, en/em/thin..., ideographic) become plain spaces.
_STRIP_TABLE.update(
    dict.fromkeys((0xA0, 0x1680, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000), " ")
)
# Zero-width space and the byte-order mark that CSV exports leave at the start of a file carry
# nothing and break equality; they are dropped.
_STRIP_TABLE.update({0x200B: None, 0xFEFF: None})


def _as_text(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        # Old drivers hand back bytes; most are UTF-8, the rest are Windows code pages.
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(value).decode("cp1252", errors="replace")
    return str(value)


def strip(value: object) -> str | None:
    """Trim text and clean it of control characters and exotic spaces.

    Non-strings are converted with ``str()`` (bytes are decoded as UTF-8, else cp1252). C0/C1
    control characters are removed, except tab and newline; the line-ending ones (``\\r``,
    ``\\v``, ``\\f``, ``\\x85``, ...) become ``\\n`` and ``\\r\\n`` becomes one ``\\n``. Unicode
    spaces (no-break, narrow no-break, ...) become ``' '``; zero-width spaces and byte-order
    marks are dropped; the result is NFC-normalised.

    Returns:
        The cleaned text, or ``None`` when nothing is left.
    """
    if value is None:
        return None
    text = value.strip() if type(value) is str else _as_text(value).strip()
    # Fast path: printable ASCII has nothing to remove, map or compose.
    if text.isascii() and text.isprintable():
        return text or None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    text = unicodedata.normalize("NFC", text.translate(_STRIP_TABLE)).strip()
    return text or None


def squash(value: object) -> str | None:
    """Like :func:`strip`, then collapse every run of whitespace (newlines, tabs) to one space."""
    text = strip(value)
    if text is None or (text.isprintable() and "  " not in text):
        return text
    return " ".join(text.split())


# --------------------------------------------------------------------------------------------
# E-mail
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Phone
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Dates and times
# --------------------------------------------------------------------------------------------

# fmt: off
_MONTHS = [
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
]
# fmt: on
_MONTH_NUMBER = {name: i for i, name in enumerate(_MONTHS, 1)}
_MONTH_NUMBER.update({name[:3]: i for i, name in enumerate(_MONTHS, 1)})
_MONTH_NUMBER["sept"] = 9
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _names_rx(names: list[str]) -> str:
    # Longest first, so "sept" is tried before "sep" and full names before abbreviations.
    return "(" + "|".join(sorted(names, key=len, reverse=True)) + ")"


# One capturing group per directive, the same patterns strptime uses, so that non-padded
# values ("1/2/2020") and formats without separators ("%Y%m%d") split the way strptime does.
# %b and %B both accept full and abbreviated English month names (strptime: one form each).
_DIRECTIVE_RX = {
    "Y": r"(\d\d\d\d)",
    "y": r"(\d\d)",
    "m": r"(1[0-2]|0[1-9]|[1-9])",
    "d": r"(3[01]|[12]\d|0[1-9]|[1-9]| [1-9])",
    "H": r"(2[0-3]|[0-1]\d|\d)",
    "I": r"(1[0-2]|0[1-9]|[1-9])",
    "M": r"([0-5]\d|\d)",
    "S": r"(6[0-1]|[0-5]\d|\d)",
    "f": r"(\d{1,6})",
    "p": r"(am|pm)",
    "b": _names_rx(list(_MONTH_NUMBER)),
    "B": _names_rx(list(_MONTH_NUMBER)),
    "h": _names_rx(list(_MONTH_NUMBER)),
    "a": _names_rx(_WEEKDAYS + [w[:3] for w in _WEEKDAYS]),
    "A": _names_rx(_WEEKDAYS + [w[:3] for w in _WEEKDAYS]),
    "z": r"([+-]\d\d:?[0-5]\d(?::?[0-5]\d(?:\.\d{1,6})?)?|(?-i:Z))",
}
# Directives strptime knows that are not compiled here: such a format takes the slow path.
_STRPTIME_ONLY = frozenset("cjUwWxXZGuV")
# Zero-padded widths of the directives the fixed-width fast path handles.
_FIXED_WIDTH = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2}

# "0000-00-00", "00/00/0000", "00000000", "0000-00-00 00:00:00": every digit is a zero.
_ZERO_DATE_DELETE = str.maketrans("", "", "0 -/.:Tt")


def _is_zero_date(text: str) -> bool:
    return "0" in text and not text.translate(_ZERO_DATE_DELETE)


class _FixedWidth:
    """Zero-padded input of a numeric format, rearranged by slicing into ISO 8601.

    ``date.fromisoformat`` and ``datetime.fromisoformat`` are C parsers that check every digit
    and the calendar, so slicing plus one of them is the cheapest exact parse there is;
    non-padded or otherwise unusual input falls through to the regular expression.
    """

    __slots__ = ("expected", "iso", "parts", "separators", "template", "width")

    def __init__(self, tokens: list[tuple[bool, str]], with_time: bool) -> None:
        slices: dict[str, slice] = {}
        positions: list[int] = []
        chars: list[str] = []
        position = 0
        for is_directive, token in tokens:
            if is_directive:
                slices[token] = slice(position, position + _FIXED_WIDTH[token])
                position += _FIXED_WIDTH[token]
            else:
                positions.append(position)
                chars.append(token)
                position += 1
        self.width = position
        self.separators: Callable[[str], object] | None = None
        self.expected: object = None
        if positions:
            self.separators = itemgetter(*positions)
            self.expected = chars[0] if len(chars) == 1 else tuple(chars)
        wanted = "YmdHMS" if with_time else "Ymd"
        keys = [k for k in wanted if k in slices]
        self.parts: Callable[[str], tuple[str, ...]] = itemgetter(*(slices[k] for k in keys))
        time = ":".join("%s" if k in slices else "00" for k in "HMS")
        self.template = "%s-%s-%sT" + time if with_time else ""
        # Formats already laid out as ISO 8601 need no rearranging at all.
        layout = "".join(f"%{t}" if d else t for d, t in tokens)
        self.iso = layout in ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")

    @staticmethod
    def of(tokens: list[tuple[bool, str]], with_time: bool) -> _FixedWidth | None:
        """The fast path for a format, when it has one.

        Every directive must reach the ISO text, or its digits would go unchecked: a date
        parser only gets one for a format of %Y, %m and %d alone.
        """
        kinds = {token for is_directive, token in tokens if is_directive}
        allowed = _FIXED_WIDTH.keys() if with_time else {"Y", "m", "d"}
        if not {"Y", "m", "d"} <= kinds <= allowed:
            return None
        return _FixedWidth(tokens, with_time)

    def text(self, text: str) -> str | None:
        """The ISO 8601 form of ``text`` when it has this layout's width and separators."""
        if len(text) != self.width:
            return None
        if self.separators is not None and self.separators(text) != self.expected:
            return None
        if self.iso:
            return text
        # str.join is cheaper than %-formatting when there are only the three date parts.
        return self.template % self.parts(text) if self.template else "-".join(self.parts(text))


class _Format:
    """A strptime-style format compiled to one regular expression with a group per directive."""

    __slots__ = ("fmt", "kinds", "match", "tokens")

    def __init__(self, fmt: str, pattern: str, tokens: list[tuple[bool, str]]) -> None:
        self.fmt = fmt
        self.tokens = tokens
        self.kinds = tuple(token for is_directive, token in tokens if is_directive)
        self.match = re.compile(pattern, re.ASCII | re.IGNORECASE).fullmatch

    def groups_of(self, *kinds: str) -> tuple[int, ...] | None:
        """Group numbers of ``kinds`` when the format has exactly those directives, else None."""
        if sorted(self.kinds) != sorted(kinds):
            return None
        return tuple(self.kinds.index(kind) + 1 for kind in kinds)


def _compile_format(fmt: str) -> _Format | None:
    """Compile ``fmt``, or return None when it needs a directive only strptime has.

    Raises:
        NormaliseError: Unknown or repeated directive, or a lone ``%`` at the end.
    """
    parts: list[str] = []
    tokens: list[tuple[bool, str]] = []  # (is_directive, directive letter or literal char)
    i, end = 0, len(fmt)
    while i < end:
        char = fmt[i]
        if char != "%":
            if char.isspace():
                # Like strptime: whitespace in the format matches any run of whitespace.
                while i < end and fmt[i].isspace():
                    tokens.append((False, fmt[i]))
                    i += 1
                parts.append(r"\s+")
                continue
            parts.append(re.escape(char))
            tokens.append((False, char))
            i += 1
            continue
        i += 1
        if i < end and fmt[i] == "-":  # glibc's "no padding" flag: padding is optional anyway
            i += 1
        if i >= end:
            raise NormaliseError(f"date format ends with a lone '%': {_show(fmt)}")
        directive = fmt[i]
        i += 1
        if directive == "%":
            parts.append("%")
            tokens.append((False, "%"))
            continue
        pattern = _DIRECTIVE_RX.get(directive)
        if pattern is None:
            if directive in _STRPTIME_ONLY:
                return None
            raise NormaliseError(f"unknown directive %{directive} in date format {_show(fmt)}")
        if (True, directive) in tokens:
            raise NormaliseError(f"directive %{directive} repeated in date format {_show(fmt)}")
        parts.append(pattern)
        tokens.append((True, directive))
    return _Format(fmt, "".join(parts), tokens)


@functools.lru_cache(maxsize=256)
def _utc_offset(text: str) -> tzinfo:
    if text in ("Z", "z"):
        return _UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    seconds = float(digits[4:]) if len(digits) > 4 else 0.0
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4]), seconds=seconds)
    return timezone(sign * delta)  # ValueError beyond +-24 h, like strptime


_Parts = tuple[int, int, int, int, int, int, int, tzinfo | None]


def _parts(fmt: _Format, text: str) -> _Parts:
    """Year, month, day, hour, minute, second, microsecond and offset, with strptime defaults."""
    found = fmt.match(text)
    if found is None:
        raise ValueError(text)
    year, month, day, hour, minute, second, micro = 1900, 1, 1, 0, 0, 0, 0
    hour12, pm, offset = -1, False, None
    for kind, group in zip(fmt.kinds, found.groups(), strict=True):
        if kind == "Y":
            year = int(group)
        elif kind == "y":
            year = int(group)
            year += 2000 if year <= 68 else 1900  # strptime's pivot
        elif kind == "m":
            month = int(group)
        elif kind in "bBh":
            month = _MONTH_NUMBER[group.lower()]
        elif kind == "d":
            day = int(group)
        elif kind == "H":
            hour = int(group)
        elif kind == "I":
            hour12 = int(group)
        elif kind == "p":
            pm = group.lower() == "pm"
        elif kind == "M":
            minute = int(group)
        elif kind == "S":
            second = int(group)
        elif kind == "f":
            micro = int(group.ljust(6, "0"))
        elif kind == "z":
            offset = _utc_offset(group)
        # %a / %A: the weekday is matched but, as in strptime, not used.
    if hour12 >= 0:
        # strptime: 12 AM is hour 0, 12 PM is hour 12, no %p means AM.
        hour = hour12 % 12 + (12 if pm else 0)
    return year, month, day, hour, minute, second, micro, offset


def _date_text_parser(fmt: str | None) -> Callable[[str], date]:
    """A function from stripped text to a date; it raises ValueError when the text does not fit."""
    from_iso = date.fromisoformat
    if fmt is None or fmt == "iso":

        def iso(text: str) -> date:
            # A timestamp in a date column keeps its written calendar date.
            if len(text) <= 10:
                return from_iso(text)
            return datetime.fromisoformat(text).date()

        return iso
    compiled = _compile_format(fmt)
    if compiled is None:
        # Slow path (~4.5 µs): a directive such as %j or %U that is not compiled here.
        strptime = datetime.strptime
        return lambda text: strptime(text, fmt).date()
    match = compiled.match
    ymd = compiled.groups_of("Y", "m", "d")
    by_regex: Callable[[str], date]
    if ymd is not None:
        # Non-padded %d/%m/%Y and the like: one match, three ints.
        def numeric(text: str) -> date:
            found = match(text)
            if found is None:
                raise ValueError(text)
            year, month, day = found.group(*ymd)
            return date(int(year), int(month), int(day))

        by_regex = numeric
    else:
        by_regex = _date_text_parser_general(compiled)
    fixed = _FixedWidth.of(compiled.tokens, with_time=False)
    if fixed is None:
        return by_regex
    as_iso = fixed.text

    def padded(text: str) -> date:
        iso_text = as_iso(text)
        if iso_text is not None:
            try:
                return from_iso(iso_text)
            except ValueError:
                pass  # e.g. 31 February: the regular expression path gives the error
        return by_regex(text)

    return padded


def _date_text_parser_general(compiled: _Format) -> Callable[[str], date]:
    def general(text: str) -> date:
        year, month, day, *_ = _parts(compiled, text)
        return date(year, month, day)

    return general


def compile_date(fmt: str | None = None) -> Callable[[object], date | None]:
    """Compile a date format once into a fast parser.

    Args:
        fmt: A strptime-style format (``%d/%m/%Y``, ``%Y%m%d``, ``%d-%b-%y``...), compiled to a
            regular expression for %Y %y %m %d %b %B %H %I %p %M %S %f %z %a %A, ``%%`` and
            literal text; non-padded days and months are accepted as strptime accepts them,
            and zero-padded numeric input is sliced straight into ISO 8601. A format with
            another strptime directive (%j, %U...) falls back to ``strptime``, the slow path
            (~4.5 µs). ``None`` or ``"iso"`` means ``date.fromisoformat`` (a full ISO
            timestamp is accepted too and keeps its written date).

    Returns:
        A function mapping text (or an int such as ``20200131``) to a ``date``. A ``date``
        passes through, a ``datetime`` gives its ``.date()``, and legacy zero dates
        (``00/00/0000``, ``0000-00-00``) give ``None``. It raises :class:`NormaliseError`
        for text that does not fit the format or is not a calendar date (``31/02/2019``).

    Raises:
        NormaliseError: The format has an unknown or repeated directive.
    """
    text_parser = _date_text_parser(fmt)
    label = fmt or "iso"

    def parse_date(value: object) -> date | None:
        if value is None:
            return None
        if type(value) is str:
            text = value.strip()
        elif isinstance(value, datetime):
            return value.date()
        elif isinstance(value, date):
            return value
        else:
            text = _as_text(value).strip()
        if not text:
            return None
        try:
            return text_parser(text)
        except (ValueError, OverflowError):
            if _is_zero_date(text):
                return None
            raise NormaliseError(f"not a date in format {label}: {_show(text)}") from None

    return parse_date


def _zone(tz: str | None) -> tzinfo:
    if tz is None or tz in ("UTC", "utc", "Etc/UTC", "Z"):
        return _UTC
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise NormaliseError(f"unknown time zone: {_show(tz)}") from None


def _datetime_text_parser(fmt: str | None) -> Callable[[str], datetime]:
    """A function from stripped text to a datetime; it raises ValueError when it does not fit.

    The datetime is naive (a wall time, read in the zone later) unless the text has an offset.
    """
    from_iso = datetime.fromisoformat
    if fmt is None or fmt == "iso":
        return from_iso
    compiled = _compile_format(fmt)
    if compiled is None:
        strptime = datetime.strptime
        return lambda text: strptime(text, fmt)
    match = compiled.match
    ymdhms = compiled.groups_of("Y", "m", "d", "H", "M", "S")
    by_regex: Callable[[str], datetime]
    if ymdhms is not None:

        def numeric(text: str) -> datetime:
            found = match(text)
            if found is None:
                raise ValueError(text)
            year, month, day, hour, minute, second = found.group(*ymdhms)
            return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))

        by_regex = numeric
    else:

        def general(text: str) -> datetime:
            year, month, day, hour, minute, second, micro, offset = _parts(compiled, text)
            return datetime(year, month, day, hour, minute, second, micro, tzinfo=offset)

        by_regex = general
    fixed = _FixedWidth.of(compiled.tokens, with_time=True)
    if fixed is None:
        return by_regex
    as_iso = fixed.text

    def padded(text: str) -> datetime:
        iso_text = as_iso(text)
        if iso_text is not None:
            try:
                return from_iso(iso_text)
            except ValueError:
                pass  # e.g. 31 February: the regular expression path gives the error
        return by_regex(text)

    return padded


# Naive wall time -> UTC without datetime.replace(tzinfo=...), which costs ~0.65 µs in 3.11:
# shift by the zone's offset for that wall time (fold=0, as replace() would give) and add the
# difference to the aware epoch.
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)


def _utc_converter(zone: tzinfo) -> Callable[[datetime], datetime]:
    """A function taking a naive datetime (read in ``zone``) or an aware one to aware UTC."""
    # ZoneInfo and timezone always return an offset, never None.
    offset_of = cast(Callable[[datetime], timedelta], zone.utcoffset)
    epoch, naive_epoch, utc = _EPOCH, _NAIVE_EPOCH, _UTC

    def to_utc(value: datetime) -> datetime:
        if value.tzinfo is None:
            if value.fold:  # the second of two ambiguous wall times: only a datetime says so
                return value.replace(tzinfo=zone).astimezone(utc)
            return epoch + (value - naive_epoch - offset_of(value))
        return value.astimezone(utc)

    return to_utc


_EPOCH_TEXT = re.compile(r"[+-]?\d+(?:\.\d*)?", re.ASCII).fullmatch


def _epoch_parser(
    per_second: int, to_utc: Callable[[datetime], datetime]
) -> Callable[[object], datetime | None]:
    """Seconds (``per_second=1``) or milliseconds (1000) since 1970-01-01 UTC."""
    label = "epoch" if per_second == 1 else "epoch_ms"
    scale = Decimal(1_000_000 // per_second)

    def parse_epoch(value: object) -> datetime | None:
        if value is None:
            return None
        try:
            if type(value) is int:
                return _EPOCH + timedelta(microseconds=value * 1_000_000 // per_second)
            if isinstance(value, datetime):
                return to_utc(value)
            if isinstance(value, bool):
                raise ValueError(value)
            if isinstance(value, int | float):
                return _EPOCH + timedelta(seconds=value / per_second)
            if isinstance(value, Decimal):
                number = value
            else:
                text = _as_text(value).strip()
                if not text:
                    return None
                if _EPOCH_TEXT(text) is None:
                    raise ValueError(text)
                number = Decimal(text)
            # Decimal keeps text and Decimal inputs exact to the microsecond.
            micros = (number * scale).to_integral_value(ROUND_HALF_EVEN)
            return _EPOCH + timedelta(microseconds=int(micros))
        except (ValueError, OverflowError, ArithmeticError):
            raise NormaliseError(f"not a timestamp in format {label}: {_show(value)}") from None

    return parse_epoch


def compile_datetime(
    fmt: str | None = None, tz: str | None = None
) -> Callable[[object], datetime | None]:
    """Compile a timestamp format once into a parser that always returns aware UTC datetimes.

    Args:
        fmt: A strptime-style format as for :func:`compile_date` (a date-only format gives
            midnight); ``None`` or ``"iso"`` for ``datetime.fromisoformat``; ``"epoch"`` for
            seconds or ``"epoch_ms"`` for milliseconds since 1970 (int, float or text).
        tz: The IANA time zone in which naive values are read (default UTC). Aware values
            (``%z``, ISO offsets, aware datetimes) are converted instead. A wall time that a
            DST change makes ambiguous or skips is read with the offset before the change
            (``fold=0``), as ``datetime.replace(tzinfo=ZoneInfo(tz))`` reads it.

    Returns:
        A function mapping text, ``datetime`` or ``date`` values to aware datetimes in UTC;
        legacy zero timestamps give ``None``. It raises :class:`NormaliseError` for values
        that do not fit or fall outside the range of ``datetime`` once in UTC.

    Raises:
        NormaliseError: Unknown time zone, or a bad format.
    """
    to_utc = _utc_converter(_zone(tz))
    if fmt in ("epoch", "epoch_ms"):
        return _epoch_parser(1 if fmt == "epoch" else 1000, to_utc)
    text_parser = _datetime_text_parser(fmt)
    label = fmt or "iso"

    def parse_datetime(value: object) -> datetime | None:
        if value is None:
            return None
        text = ""
        try:
            if type(value) is str:
                text = value.strip()
            elif isinstance(value, datetime):
                return to_utc(value)
            elif isinstance(value, date):
                return to_utc(datetime(value.year, value.month, value.day))
            else:
                text = _as_text(value).strip()
            return to_utc(text_parser(text)) if text else None
        except (ValueError, OverflowError):
            if _is_zero_date(text):
                return None
            shown = _show(text or value)
            raise NormaliseError(f"not a date in format {label}: {shown}") from None

    return parse_datetime


# --------------------------------------------------------------------------------------------
# Decimals
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Currencies and countries
# --------------------------------------------------------------------------------------------

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


# Locales whose country names are matched besides English (pycountry ships their gettext
# catalogues): the languages legacy European and American systems were set up in.
# fmt: off
_COUNTRY_LOCALES = (
    "de", "fr", "es", "it", "nl", "pt", "pt_BR", "sv", "da", "nb_NO", "fi", "pl", "cs", "hu",
    "ro", "tr", "el", "ga", "is", "et", "lv", "lt", "sk", "sl", "hr",
)
# fmt: on
# Names people write that ISO and the catalogues do not have.
_COUNTRY_ALIASES = {
    "GB": ("UK", "U.K.", "England", "Scotland", "Wales", "Northern Ireland", "Great Britain"),
    "US": ("USA", "U.S.A.", "U.S.", "US of A", "United States of America", "America"),
    "NL": ("Holland",),
    "KR": ("Korea, South", "Republic of Korea", "S. Korea"),
    "KP": ("Korea, North", "N. Korea"),
    "RU": ("Russia",),
    "CZ": ("Czech Republic",),
    "SK": ("Slovak Republic",),
    "CI": ("Ivory Coast",),
    "TR": ("Turkey",),
    "MK": ("Macedonia",),
    "MM": ("Burma",),
    "SZ": ("Swaziland",),
    "CV": ("Cape Verde",),
    "TL": ("East Timor",),
    "VA": ("Vatican", "Vatican City", "Holy See"),
    "PS": ("Palestine",),
    "AE": ("UAE", "U.A.E.", "Emirates"),
    "BN": ("Brunei",),
    "MO": ("Macau",),
    "CD": ("DR Congo", "DRC", "Congo-Kinshasa", "Democratic Republic of the Congo"),
    "CG": ("Congo-Brazzaville",),
    "FM": ("Micronesia",),
    "GR": ("EL",),  # the EU's VAT and statistics code for Greece
}
_FOLD_PUNCTUATION = str.maketrans(
    {".": "", "'": "", "\u2019": "", ",": " ", "-": " ", "(": " ", ")": " ", "&": " and "}
)


def _fold(name: str) -> str:
    """A matching key: no accents, case-folded, punctuation-insensitive, "St" == "Saint"."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = plain.casefold().translate(_FOLD_PUNCTUATION).split()
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    return " ".join("saint" if word == "st" else word for word in words)


def _country_names(record: object) -> list[str]:
    return [
        n for n in (getattr(record, a, None) for a in ("name", "official_name", "common_name")) if n
    ]


@functools.cache
def _country_tables() -> tuple[dict[str, str], dict[str, str]]:
    """Codes -> alpha-2, and folded names -> alpha-2; built on first use, once (~0.1 s)."""
    codes: dict[str, str] = {}
    names: dict[str, str] = {}
    for record in pycountry.countries:
        alpha2 = record.alpha_2
        codes.update({alpha2: alpha2, record.alpha_3: alpha2, record.numeric: alpha2})
        for name in _country_names(record):
            names.setdefault(_fold(name), alpha2)
    for alpha2, aliases in _COUNTRY_ALIASES.items():
        for alias in aliases:
            names.setdefault(_fold(alias), alpha2)
    # Translations: a few catalogues give one name to two countries (a slip in one language).
    # The country most locales agree on wins; a tie is left out rather than guessed.
    votes: dict[str, dict[str, set[str]]] = {}
    for locale in _COUNTRY_LOCALES:
        catalogue = gettext.translation(
            "iso3166-1", pycountry.LOCALES_DIR, languages=[locale], fallback=True
        )
        for record in pycountry.countries:
            for name in _country_names(record):
                translated = catalogue.gettext(name)
                if translated != name:
                    key = _fold(translated)
                    votes.setdefault(key, {}).setdefault(record.alpha_2, set()).add(locale)
    for key, by_country in votes.items():
        if key in names:
            continue
        ranked = sorted(by_country.items(), key=lambda item: len(item[1]), reverse=True)
        if len(ranked) == 1 or len(ranked[0][1]) > len(ranked[1][1]):
            names[key] = ranked[0][0]
    return codes, names


@functools.lru_cache(maxsize=2048)
def _country_text(raw: str) -> tuple[str | None, str | None]:
    text = " ".join(raw.split())
    if not text:
        return None, None
    codes, names = _country_tables()
    if text.isdigit() and len(text) <= 3:
        found = codes.get(text.zfill(3))
    elif len(text) <= 3 and text.isascii() and text.isalpha() and text.upper() in codes:
        found = codes[text.upper()]
    else:
        found = names.get(_fold(text))
    if found is None:
        return None, f"not a country: {_show(text)}"
    return found, None


def country(value: object) -> str | None:
    """Normalise a country to its ISO 3166-1 alpha-2 code.

    Accepts alpha-2, alpha-3 and numeric codes; English short, official and common names;
    names in 25 European languages (``Deutschland``, ``España``, ``Česko``, ``Éire``...);
    and common aliases (``UK``, ``USA``, ``Holland``, ``Ivory Coast``...). Names match
    case-, accent- and punctuation-insensitively. Results are cached.

    Raises:
        NormaliseError: No country by that code or name.
    """
    if value is None:
        return None
    code, reason = _country_text(value if type(value) is str else _as_text(value))
    if reason is not None:
        raise NormaliseError(reason)
    return code


# --------------------------------------------------------------------------------------------
# Codes, booleans
# --------------------------------------------------------------------------------------------


def compile_enum(
    mapping: Mapping[str, str], default: str | None = None, case_sensitive: bool = False
) -> Callable[[object], str | None]:
    """Compile a table of source codes to canonical values (``{"A": "active"}``).

    Args:
        mapping: Source code -> canonical value. Keys are matched after trimming and, unless
            ``case_sensitive``, case-folding. The key ``"*"`` is the fallback for any other
            code. A ``None`` value maps that code to ``None``.
        default: The fallback when no key matches (an alternative to ``"*"``).
        case_sensitive: Match keys exactly (after trimming).

    Returns:
        A function mapping a code (text, or anything ``str()`` makes one of) to its value.
        It raises :class:`NormaliseError` naming the value and up to ten known codes when
        nothing matches and there is no fallback.

    Raises:
        NormaliseError: Two keys become the same after trimming and case-folding but map to
            different values, or both ``"*"`` and ``default`` are given.
    """
    table: dict[str, str | None] = {}
    fallback: str | None = default
    has_fallback = default is not None
    for raw_key, target in mapping.items():
        key = str(raw_key).strip()
        if key == "*":
            if default is not None:
                raise NormaliseError("code table has both a '*' entry and a default")
            fallback, has_fallback = target, True
            continue
        if not case_sensitive:
            key = key.casefold()
        if key in table and table[key] != target:
            raise NormaliseError(f"code {_show(raw_key)} appears twice with different values")
        table[key] = target
    known = [str(k) for k in mapping if str(k).strip() != "*"]
    shown = ", ".join(repr(k) for k in known[:10])
    if len(known) > 10:
        shown += f" (and {len(known) - 10} more)"

    def lookup(value: object) -> str | None:
        if value is None:
            return None
        code = (value if type(value) is str else _as_text(value)).strip()
        if not code:
            return None
        key = code if case_sensitive else code.casefold()
        if key in table:
            return table[key]
        if has_fallback:
            return fallback
        raise NormaliseError(f"unknown code {_show(code)}; known codes: {shown}")

    return lookup


_TRUE = ("true", "t", "yes", "y", "ja", "j", "oui", "si", "sí", "sì", "1", "on", "active")
_FALSE = ("false", "f", "no", "n", "nein", "non", "0", "off", "inactive")
_BOOLEANS = {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)}


def boolean(value: object) -> bool | None:
    """Parse a yes/no flag.

    Accepts true/false, t/f, yes/no, y/n, ja/nein, j/n, oui/non, si/no, 1/0, on/off and
    active/inactive in any case, the numbers 0 and 1, and bools.

    Raises:
        NormaliseError: Anything else, e.g. ``maybe`` or ``2``.
    """
    if value is None or value is True or value is False:
        return value
    if type(value) is str:
        found = _BOOLEANS.get(value.strip().lower())
        if found is not None:
            return found
        if not value.strip():
            return None
    elif isinstance(value, int | float | Decimal):
        if value == 1:
            return True
        if value == 0:
            return False
    else:
        return boolean(_as_text(value))
    raise NormaliseError(f"not a boolean: {_show(value)}")
