"""Dates and timestamps: :func:`compile_date` and :func:`compile_datetime`.

Formats are compiled in ``_date_formats``; here they become parsers. Timestamps come out as
aware UTC datetimes: naive values are read in a time zone, aware ones converted, and epoch
seconds or milliseconds counted from 1970-01-01 UTC.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from typing import cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from patchbay.core.normalise._date_formats import _compile_format, _FixedWidth, _Format, _parts
from patchbay.core.normalise._errors import NormaliseError, _show
from patchbay.core.normalise._text import _as_text

_UTC = UTC

# "0000-00-00", "00/00/0000", "00000000", "0000-00-00 00:00:00": every digit is a zero.
_ZERO_DATE_DELETE = str.maketrans("", "", "0 -/.:Tt")


def _is_zero_date(text: str) -> bool:
    return "0" in text and not text.translate(_ZERO_DATE_DELETE)


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
