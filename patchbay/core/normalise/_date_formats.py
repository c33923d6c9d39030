"""strptime-style date formats compiled to regular expressions, for the parsers in ``_dates``.

``_compile_format`` turns a format such as ``%d/%m/%Y`` into one regular expression with a
group per directive, ``_parts`` reads a match into fields with strptime's defaults, and
``_FixedWidth`` slices zero-padded input of a numeric format straight into ISO 8601.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, timedelta, timezone, tzinfo
from operator import itemgetter

from patchbay.core.normalise._errors import NormaliseError, _show

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
        return UTC
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
