import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pycountry
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from patchbay.core.normalise import (
    NormaliseError,
    boolean,
    compile_date,
    compile_datetime,
    compile_decimal,
    compile_enum,
    country,
    currency,
    email,
    integer,
    parse_decimal,
    phone,
    squash,
    strip,
)

# Hypothesis budgets: enough to find edge cases, small enough for the file to run in seconds.
# No deadline: the first country() call builds its tables once (~0.1 s).
SOME = settings(max_examples=150, deadline=None)
MANY = settings(max_examples=300, deadline=None)

ALL_NORMALISERS = [
    strip,
    squash,
    email,
    phone,
    compile_date(),
    compile_date("%d/%m/%Y"),
    compile_datetime(),
    compile_datetime("%Y-%m-%d %H:%M:%S", "Europe/London"),
    compile_datetime("epoch"),
    parse_decimal,
    compile_decimal("comma"),
    currency,
    country,
    compile_enum({"A": "active"}),
    boolean,
    integer,
]


def rejects(fn: Any, value: Any, *, mentions: str) -> NormaliseError:
    """Assert ``fn(value)`` raises NormaliseError whose reason contains ``mentions``."""
    with pytest.raises(NormaliseError) as info:
        fn(value)
    assert mentions in info.value.reason
    assert str(info.value) == info.value.reason
    return info.value


# ---------------------------------------------------------------------------------------------
# Shared rules
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", ALL_NORMALISERS)
@pytest.mark.parametrize("value", [None, "", "   ", " \t\n ", "\u00a0"])
def test_none_and_blank_text_are_missing(fn: Any, value: Any) -> None:
    assert fn(value) is None


def test_normalise_error_is_a_value_error_whose_text_is_the_reason() -> None:
    err = NormaliseError("not a date in format %d/%m/%Y: '31/02/2019'")
    assert isinstance(err, ValueError)
    assert err.reason == str(err) == "not a date in format %d/%m/%Y: '31/02/2019'"


def test_reasons_cut_long_values_short() -> None:
    err = rejects(boolean, "x" * 1000, mentions="not a boolean: 'xxx")
    assert len(err.reason) < 120


# ---------------------------------------------------------------------------------------------
# strip / squash
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  Acme Ltd ", "Acme Ltd"),
        ("Zoë's  Kitchen Supplies Ltd \t", "Zoë's  Kitchen Supplies Ltd"),
        ("Acme\u00a0Ltd", "Acme Ltd"),  # no-break space
        ("12\u202f345", "12 345"),  # narrow no-break space
        ("Acme\u3000Ltd", "Acme Ltd"),  # ideographic space
        ("\ufeffAcme", "Acme"),  # byte-order mark from a CSV export
        ("Ac\u200bme", "Acme"),  # zero-width space
        ("Acme\x00 Ltd\x07", "Acme Ltd"),
        ("Acme\x9b Ltd", "Acme Ltd"),  # C1 control
        ("line1\r\nline2", "line1\nline2"),
        ("line1\rline2", "line1\nline2"),  # old Mac line ending does not glue the lines
        ("line1\vline2", "line1\nline2"),  # FileMaker's line break
        ("a\tb\nc", "a\tb\nc"),
        ("Cafe\u0301", "Café"),  # NFC
        (12345, "12345"),
        (Decimal("1.50"), "1.50"),
        (b"Caf\xc3\xa9", "Café"),
        (b"Caf\xe9", "Café"),  # not UTF-8: read as cp1252
        ("\x00\x01", None),
    ],
)
def test_strip(value: Any, expected: str | None) -> None:
    assert strip(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Zoë's  Kitchen Supplies Ltd \t", "Zoë's Kitchen Supplies Ltd"),
        ("  Head of\n\tSales  ", "Head of Sales"),
        ("a\u00a0\u00a0b", "a b"),
        ("a\r\n\r\nb", "a b"),
        ("plain", "plain"),
    ],
)
def test_squash(value: Any, expected: str) -> None:
    assert squash(value) == expected


def _is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc"


messy_text = st.text(
    st.characters()
    | st.sampled_from(["\x00", "\r", "\n", "\t", "\v", "\x85", "\u00a0", "\u202f", "\ufeff", " "])
)


@MANY
@given(messy_text)
def test_strip_is_idempotent_and_leaves_no_control_chars_but_tab_and_newline(text: str) -> None:
    once = strip(text)
    assert strip(once) == once
    if once is not None:
        assert once == once.strip()
        assert not any(_is_control(c) for c in once if c not in "\t\n")
        assert unicodedata.is_normalized("NFC", once)


@MANY
@given(messy_text)
def test_squash_is_idempotent_and_leaves_single_spaces_only(text: str) -> None:
    once = squash(text)
    assert squash(once) == once
    assert squash(strip(text)) == once
    if once is not None:
        assert not any(_is_control(c) for c in once)
        assert once == " ".join(once.split())


# ---------------------------------------------------------------------------------------------
# email
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ann@acme.example", "ann@acme.example"),
        ("  Purchasing@Kessler-Tools.DE ", "purchasing@kessler-tools.de"),
        (" Sales@Example.COM ", "sales@example.com"),
        ("first.last+tag@sub.acme.co.uk", "first.last+tag@sub.acme.co.uk"),
        ("o'brien@acme.ie", "o'brien@acme.ie"),
        ("ann@acme.example\u00a0", "ann@acme.example"),
        ("ann@bücher.de", "ann@bücher.de"),  # IDN: email_validator's slow path
        ("ann@xn--bcher-kva.de", "ann@bücher.de"),  # Punycode comes back as Unicode
        ("ann@ACME.museum", "ann@acme.museum"),
        ("x@" + "a" * 63 + ".com", "x@" + "a" * 63 + ".com"),
    ],
)
def test_email(value: str, expected: str) -> None:
    assert email(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "john.doe@",
        "not-an-email",
        "@acme.example",
        "ann@@acme.example",
        "ann..smith@acme.example",
        ".ann@acme.example",
        "ann@acme",
        "ann@acme.test",  # special-use domains are never deliverable
        "ann@localhost",
        "ann@-acme.example",
        "ann@acme-.example",
        "ann smith@acme.example",
        "ann@acme.example; bob@acme.example",
        "x@" + "a" * 64 + ".com",
        "Ann <ann@acme.example>",
    ],
)
def test_email_rejects(value: str) -> None:
    err = rejects(email, value, mentions="not a valid email address: ")
    assert repr(value.strip().lower())[:40] in err.reason


atom = st.text("abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=8)
label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
tld = st.from_regex(r"[a-z]{2,5}", fullmatch=True) | st.sampled_from(
    ["com", "de", "test", "local", "onion", "arpa", "c0m", "xn--p1ai", "museum"]
)
addresses = st.builds(
    lambda local, labels, top: f"{local}@{'.'.join([*labels, top])}",
    st.lists(atom, min_size=1, max_size=3).map(".".join),
    st.lists(label, min_size=1, max_size=3),
    tld,
)


@MANY
@given(addresses, st.booleans())
def test_email_agrees_with_email_validator_on_ascii_addresses(address: str, upper: bool) -> None:
    # The regex fast path must accept nothing email_validator rejects, and return what it
    # would return.
    text = address.upper() if upper else address
    try:
        expected: str | None = validate_email(
            address.lower(), check_deliverability=False
        ).normalized
    except EmailNotValidError:
        expected = None
    if expected is None:
        rejects(email, text, mentions="not a valid email address")
    else:
        assert email(text) == expected
        assert email(expected) == expected  # idempotent


# ---------------------------------------------------------------------------------------------
# phone
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("020 7946 0018", "GB", "+442079460018"),
        ("+44 20 7946 0018", None, "+442079460018"),
        ("(0)20-7946-0018", "GB", "+442079460018"),
        ("+44 (0)20 7946 0018", "GB", "+442079460018"),
        ("0161 496 0123", "gb", "+441614960123"),  # region in any case
        ("0049 30 123456", "DE", "+4930123456"),
        ("+49 (0)89 1234567", "DE", "+49891234567"),
        ("030/123456", "DE", "+4930123456"),
        ("+33 1 23 45 67 89", "FR", "+33123456789"),
        ("01.23.45.67.89", "FR", "+33123456789"),
        ("(212) 555-0123", "US", "+12125550123"),
        ("212.555.0123", "US", "+12125550123"),
        ("+1 212 555 0123", "GB", "+12125550123"),  # an explicit country code wins
        ("+44 20 7946 0018 ext. 12", "GB", "+442079460018"),  # the extension is dropped
        ("(415) 555-2671 x123", "US", "+14155552671"),
        (2079460018, "GB", "+442079460018"),  # an int column lost the leading zero
        (442079460018, None, "+442079460018"),  # ... or the "+"
        (442079460018.0, None, "+442079460018"),
        ("  555-0123 ", None, "555-0123"),  # no region: kept as written, trimmed
        ("12", "GB", "12"),  # too short to be a number: kept
        ("call 0207", "GB", "call 0207"),
    ],
)
def test_phone(value: Any, region: str | None, expected: str) -> None:
    assert phone(value, region) == expected


@pytest.mark.parametrize("value", ["n/a", "unknown", "-", "none"])
def test_phone_rejects_placeholders_without_digits(value: str) -> None:
    rejects(lambda v: phone(v, "GB"), value, mentions=f"not a phone number: {value!r}")


def test_phone_rejects_an_unknown_region() -> None:
    rejects(lambda v: phone(v, "XX"), "020 7946 0018", mentions="unknown phone region: 'XX'")


# ---------------------------------------------------------------------------------------------
# dates
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "value", "expected"),
    [
        ("%d/%m/%Y", "31/12/2019", date(2019, 12, 31)),
        ("%d/%m/%Y", "1/2/2020", date(2020, 2, 1)),  # not zero-padded
        ("%d/%m/%Y", " 29/02/2020 ", date(2020, 2, 29)),
        ("%m/%d/%Y", "02/01/2020", date(2020, 2, 1)),
        ("%Y-%m-%d", "2020-02-01", date(2020, 2, 1)),
        ("%Y-%m-%d", "2020-2-1", date(2020, 2, 1)),
        ("%d.%m.%Y", "01.02.2020", date(2020, 2, 1)),
        ("%Y%m%d", "20200201", date(2020, 2, 1)),
        ("%Y%m%d", 20200201, date(2020, 2, 1)),  # stored as an integer
        ("%d-%b-%Y", "05-SEP-2019", date(2019, 9, 5)),
        ("%d-%b-%Y", "5-Sept-2019", date(2019, 9, 5)),
        ("%d %B %Y", "5 september   2019", date(2019, 9, 5)),
        ("%a %d %b %Y", "Thu 05 Sep 2019", date(2019, 9, 5)),
        ("%d/%m/%y", "05/09/19", date(2019, 9, 5)),
        ("%d/%m/%y", "05/09/69", date(1969, 9, 5)),  # strptime's pivot
        ("%d/%m/%Y %H:%M", "05/09/2019 23:59", date(2019, 9, 5)),
        ("%Y-%m-%dT%H:%M:%S%z", "2019-09-05T23:59:00+05:00", date(2019, 9, 5)),
        ("%d%%%m%%%Y", "05%09%2019", date(2019, 9, 5)),
        ("%-d/%-m/%Y", "5/9/2019", date(2019, 9, 5)),
        ("%j/%Y", "032/2020", date(2020, 2, 1)),  # strptime fallback
        (None, "2020-02-01", date(2020, 2, 1)),
        ("iso", "20200201", date(2020, 2, 1)),
        (None, "2020-02-01T23:30:00+01:00", date(2020, 2, 1)),  # the date as written
        ("%d/%m/%Y", date(2020, 2, 1), date(2020, 2, 1)),
        ("%d/%m/%Y", datetime(2020, 2, 1, 23, 59), date(2020, 2, 1)),
        ("%d/%m/%Y", "00/00/0000", None),  # legacy zero dates are missing
        ("%Y-%m-%d", "0000-00-00", None),
        ("%Y%m%d", 0, None),
        (None, "0000-00-00", None),
        (None, "0000-00-00 00:00:00", None),
    ],
)
def test_compile_date(fmt: str | None, value: Any, expected: date | None) -> None:
    assert compile_date(fmt)(value) == expected


@pytest.mark.parametrize(
    ("fmt", "value"),
    [
        ("%d/%m/%Y", "31/02/2019"),
        ("%d/%m/%Y", "29/02/2019"),
        ("%d/%m/%Y", "13/45/2020"),
        ("%m/%d/%Y", "13/45/2020"),
        ("%Y-%m-%d", "2019-13-45"),
        ("%d/%m/%Y", "2019-01-31"),
        ("%d/%m/%Y", "31/01/2019 10:00"),  # strptime: unconverted data remains
        ("%d/%m/%Y", "tomorrow"),
        ("%d-%b-%Y", "05-Sepember-2019"),
        ("%Y%m%d", "202001"),
        ("%j/%Y", "400/2020"),
        (None, "31/01/2019"),
    ],
)
def test_compile_date_rejects(fmt: str | None, value: str) -> None:
    rejects(compile_date(fmt), value, mentions=f"not a date in format {fmt or 'iso'}: {value!r}")


@pytest.mark.parametrize("fmt", ["%d/%m/%Q", "%d/%m/%Y%", "%d/%d/%Y", "%Y-%m-%d %E"])
def test_compile_date_rejects_bad_formats_at_compile_time(fmt: str) -> None:
    rejects(compile_date, fmt, mentions="date format")


DATE_FORMATS = [
    "%d/%m/%Y",
    "%Y-%m-%d",
    "%d.%m.%Y",
    "%m/%d/%Y",
    "%Y%m%d",
    "%d-%b-%Y",
    "%d %B %Y",
    "%b %d, %Y",
    "%Y/%m/%d %H:%M",
    "%A %d %B %Y",
]


@MANY
@given(st.dates(date(1000, 1, 1), date(9999, 12, 31)), st.sampled_from(DATE_FORMATS))
def test_compiled_dates_read_back_what_strftime_wrote_as_strptime_does(day: date, fmt: str) -> None:
    text = day.strftime(fmt)
    assert compile_date(fmt)(text) == day == datetime.strptime(text, fmt).date()


@SOME
@given(st.dates(date(1969, 1, 1), date(2068, 12, 31)))
def test_two_digit_years_pivot_like_strptime(day: date) -> None:
    text = day.strftime("%d/%m/%y")
    assert compile_date("%d/%m/%y")(text) == day == datetime.strptime(text, "%d/%m/%y").date()


@SOME
@given(st.dates(date(1000, 1, 1), date(9999, 12, 31)))
def test_non_padded_days_and_months_parse_as_strptime_parses_them(day: date) -> None:
    text = f"{day.day}/{day.month}/{day.year}"
    assert compile_date("%d/%m/%Y")(text) == day == datetime.strptime(text, "%d/%m/%Y").date()


# ---------------------------------------------------------------------------------------------
# datetimes
# ---------------------------------------------------------------------------------------------

LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    ("fmt", "tz", "value", "expected"),
    [
        ("%Y-%m-%d %H:%M:%S", None, "2020-07-01 10:00:00", datetime(2020, 7, 1, 10, tzinfo=UTC)),
        (
            "%Y-%m-%d %H:%M:%S",
            "Europe/London",
            "2020-07-01 10:00:00",  # BST
            datetime(2020, 7, 1, 9, tzinfo=UTC),
        ),
        (
            "%Y-%m-%d %H:%M:%S",
            "Europe/London",
            "2020-01-01 10:00:00",  # GMT
            datetime(2020, 1, 1, 10, tzinfo=UTC),
        ),
        (
            "%Y-%m-%d %H:%M:%S",
            "Europe/London",
            "2021-10-31 01:30:00",  # happens twice: the first (BST) is taken
            datetime(2021, 10, 31, 0, 30, tzinfo=UTC),
        ),
        (
            "%Y-%m-%d %H:%M:%S",
            "Europe/London",
            "2021-03-28 01:30:00",  # never happens: read with the offset before the change
            datetime(2021, 3, 28, 1, 30, tzinfo=UTC),
        ),
        (
            "%m/%d/%Y %I:%M %p",
            "America/New_York",
            "07/01/2020 1:05 PM",
            datetime(2020, 7, 1, 17, 5, tzinfo=UTC),
        ),
        ("%d/%m/%Y %I:%M %p", None, "01/07/2020 12:30 am", datetime(2020, 7, 1, 0, 30, tzinfo=UTC)),
        (
            "%d/%m/%Y %I:%M %p",
            None,
            "01/07/2020 12:30 PM",
            datetime(2020, 7, 1, 12, 30, tzinfo=UTC),
        ),
        (
            "%Y-%m-%dT%H:%M:%S.%f%z",
            "Europe/London",  # ignored: the value has its own offset
            "2020-07-01T10:00:00.5+02:00",
            datetime(2020, 7, 1, 8, 0, 0, 500000, tzinfo=UTC),
        ),
        ("%Y-%m-%dT%H:%M:%S%z", None, "2020-07-01T10:00:00Z", datetime(2020, 7, 1, 10, tzinfo=UTC)),
        ("%d/%m/%Y", "Europe/London", "01/07/2020", datetime(2020, 6, 30, 23, tzinfo=UTC)),
        (None, "Europe/London", "2020-07-01 10:00:00", datetime(2020, 7, 1, 9, tzinfo=UTC)),
        (None, "Europe/London", "2020-07-01T10:00:00+00:00", datetime(2020, 7, 1, 10, tzinfo=UTC)),
        ("iso", None, "2020-07-01T10:00:00Z", datetime(2020, 7, 1, 10, tzinfo=UTC)),
        (None, "Europe/London", "2020-07-01", datetime(2020, 6, 30, 23, tzinfo=UTC)),
        (None, "Europe/London", datetime(2020, 7, 1, 10), datetime(2020, 7, 1, 9, tzinfo=UTC)),
        (
            None,
            "Europe/London",
            datetime(2020, 7, 1, 10, tzinfo=timezone(timedelta(hours=-5))),
            datetime(2020, 7, 1, 15, tzinfo=UTC),
        ),
        (None, "Europe/London", date(2020, 7, 1), datetime(2020, 6, 30, 23, tzinfo=UTC)),
        ("epoch", "Europe/London", 1593597600, datetime(2020, 7, 1, 10, tzinfo=UTC)),
        ("epoch", None, "1593597600", datetime(2020, 7, 1, 10, tzinfo=UTC)),
        ("epoch", None, 1593597600.25, datetime(2020, 7, 1, 10, 0, 0, 250000, tzinfo=UTC)),
        ("epoch", None, "1593597600.000001", datetime(2020, 7, 1, 10, 0, 0, 1, tzinfo=UTC)),
        ("epoch", None, Decimal("-1.5"), datetime(1969, 12, 31, 23, 59, 58, 500000, tzinfo=UTC)),
        ("epoch_ms", None, 1593597600123, datetime(2020, 7, 1, 10, 0, 0, 123000, tzinfo=UTC)),
        ("epoch_ms", None, "1593597600123", datetime(2020, 7, 1, 10, 0, 0, 123000, tzinfo=UTC)),
        ("%Y-%m-%d %H:%M:%S", "Europe/London", "0000-00-00 00:00:00", None),
        (None, None, "0000-00-00 00:00:00", None),
    ],
)
def test_compile_datetime(fmt: str | None, tz: str | None, value: Any, expected: Any) -> None:
    result = compile_datetime(fmt, tz)(value)
    assert result == expected
    if result is not None:
        assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("fmt", "value"),
    [
        ("%Y-%m-%d %H:%M:%S", "2020-02-30 10:00:00"),
        ("%Y-%m-%d %H:%M:%S", "2020-02-01 24:00:00"),
        ("%Y-%m-%d %H:%M:%S", "2020-02-01"),
        ("%d/%m/%Y %H:%M", "01/02/2020 10:61"),
        ("%Y-%m-%dT%H:%M:%S%z", "2020-02-01T10:00:00+25:00"),
        (None, "yesterday"),
        (None, "0001-01-01T00:00:00+01:00"),  # before the first representable UTC instant
    ],
)
def test_compile_datetime_rejects(fmt: str | None, value: str) -> None:
    rejects(compile_datetime(fmt), value, mentions=f"not a date in format {fmt or 'iso'}: ")


@pytest.mark.parametrize(
    ("fmt", "value"),
    [("epoch", "soon"), ("epoch", True), ("epoch", float("nan")), ("epoch_ms", "1e5")],
)
def test_epoch_rejects(fmt: str, value: Any) -> None:
    rejects(compile_datetime(fmt), value, mentions=f"not a timestamp in format {fmt}: ")


@pytest.mark.parametrize("tz", ["Europe/Londn", "Mars/Olympus", "", "../etc/passwd"])
def test_compile_datetime_rejects_unknown_time_zones_at_compile_time(tz: str) -> None:
    rejects(lambda t: compile_datetime("%Y-%m-%d", t), tz, mentions="unknown time zone")


ZONES = [
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/St_Johns",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
]
DATETIME_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%Y%m%d%H%M%S",
    "%m/%d/%Y %I:%M:%S %p",
    "%d.%m.%Y %H:%M",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%d-%b-%Y %H:%M:%S",
]
naive_datetimes = st.datetimes(datetime(1900, 1, 1), datetime(2100, 12, 31))


@MANY
@given(naive_datetimes, st.sampled_from(ZONES), st.sampled_from(DATETIME_FORMATS))
def test_naive_text_is_read_in_the_zone_and_returned_in_utc(
    moment: datetime, zone: str, fmt: str
) -> None:
    text = moment.strftime(fmt)
    wall = datetime.strptime(text, fmt)
    expected = wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    result = compile_datetime(fmt, zone)(text)
    assert result == expected
    assert result is not None
    assert result.tzinfo is UTC
    assert result.replace(tzinfo=None) == expected.replace(tzinfo=None)


@MANY
@given(naive_datetimes, st.sampled_from(ZONES))
def test_naive_datetimes_and_iso_text_convert_like_zoneinfo(moment: datetime, zone: str) -> None:
    parse = compile_datetime(None, zone)
    # A datetime carries fold (which of two ambiguous wall times); text cannot, and reads as
    # the first, as datetime.replace(tzinfo=...) does with fold=0.
    as_text = moment.replace(fold=0)
    for value, wall in ((moment, moment), (moment.isoformat(), as_text),
                        (moment.isoformat(sep=" "), as_text)):
        expected = wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
        result = parse(value)
        assert result == expected
        assert result is not None
        assert result.tzinfo is UTC


aware_datetimes = st.datetimes(
    datetime(1900, 1, 1),
    datetime(2100, 12, 31),
    timezones=st.sampled_from([ZoneInfo(z) for z in ZONES]),
)


@SOME
@given(aware_datetimes)
def test_aware_values_are_converted_not_reinterpreted(moment: datetime) -> None:
    parse = compile_datetime(None, "Asia/Kolkata")
    expected = moment.astimezone(UTC)
    assert parse(moment) == expected
    assert parse(moment.isoformat()) == expected


# ---------------------------------------------------------------------------------------------
# decimals
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "style", "expected"),
    [
        ("1234.50", "auto", "1234.50"),
        ("1,234.50", "auto", "1234.50"),
        ("1.234,50", "auto", "1234.50"),
        ("1 234,50", "auto", "1234.50"),
        ("1\u00a0234,50", "auto", "1234.50"),
        ("1\u202f234.50", "auto", "1234.50"),
        ("1'234.50", "auto", "1234.50"),
        ("1\u2019234.50", "auto", "1234.50"),
        ("(12.00)", "auto", "-12.00"),
        ("-12.00", "auto", "-12.00"),
        ("12.00-", "auto", "-12.00"),
        ("\u221212.00", "auto", "-12.00"),
        ("+12", "auto", "12"),
        ("€ 1.234,50", "auto", "1234.50"),
        ("$1,234.50", "auto", "1234.50"),
        ("1234.50 EUR", "auto", "1234.50"),
        ("eur 1234.50", "auto", "1234.50"),
        ("(€ 1.234,50)", "auto", "-1234.50"),
        ("-$12.00", "auto", "-12.00"),
        ("US$ 5", "auto", "5"),
        ("12,50 kr", "auto", "12.50"),
        ("  1 234 567  ", "auto", "1234567"),
        ("1,234", "auto", "1234"),  # one comma, three digits, short integer part: thousands
        ("1,234,567", "auto", "1234567"),
        ("12,5", "auto", "12.5"),
        ("1234,567", "auto", "1234.567"),
        ("0,125", "auto", "0.125"),  # a group never starts with 0: decimal comma
        ("1.234", "auto", "1.234"),  # a single point is the decimal point
        ("1.234.567", "auto", "1234567"),
        ("1.234.567,8", "auto", "1234567.8"),
        (".5", "auto", "0.5"),
        ("12.", "auto", "12"),
        ("-0.00", "auto", "0.00"),
        ("(0.00)", "auto", "0.00"),
        ("1.234,50", "comma", "1234.50"),
        ("1234,5", "comma", "1234.5"),
        ("1.234", "comma", "1234"),
        ("1 234,50", "comma", "1234.50"),
        ("1'234,50", "decimal_comma", "1234.50"),
        ("1,234.50", "dot", "1234.50"),
        ("1,234", "dot", "1234"),
        ("1 234.5", "decimal_point", "1234.5"),
        (1234, "auto", "1234"),
        (0.1, "auto", "0.1"),
        (1e20, "auto", "1E+20"),
        (Decimal("12.340"), "comma", "12.340"),
    ],
)
def test_parse_decimal(value: Any, style: str, expected: str) -> None:
    result = parse_decimal(value, style)
    assert result is not None
    assert str(result) == expected
    assert compile_decimal(style)(value) == result


@pytest.mark.parametrize(
    ("value", "style"),
    [
        ("12,3x", "auto"),
        ("1.2.3,4,5", "dot"),
        ("1.2.3,4,5", "auto"),
        ("1,23,4.5", "dot"),
        ("1,23,456.00", "dot"),  # lakh grouping is not read
        ("0,5", "dot"),  # in dot style a comma only groups thousands
        ("1.234,5", "dot"),
        ("1,234.5", "comma"),
        ("1 234,5 6", "auto"),
        ("1,234'567", "auto"),  # two kinds of thousands separator
        ("abc", "auto"),
        ("NaN", "auto"),
        ("Infinity", "auto"),
        ("-", "auto"),
        ("--12", "auto"),
        ("(-12)", "auto"),
        ("(12", "auto"),
        ("12 abc", "auto"),
        ("12 XYZ", "auto"),  # not an ISO currency
        ("€12 EUR", "auto"),
        ("12%", "auto"),
        ("1e5", "auto"),
        ("1_000", "auto"),
        ("two", "auto"),
        ("n/a", "comma"),
        (float("nan"), "auto"),
        (float("inf"), "auto"),
        (Decimal("NaN"), "auto"),
        (True, "auto"),
    ],
)
def test_parse_decimal_rejects(value: Any, style: str) -> None:
    canonical = {"auto": "auto", "dot": "dot", "comma": "comma"}[style]
    rejects(lambda v: parse_decimal(v, style), value, mentions=f"({canonical} style): ")


def test_an_unknown_decimal_style_is_rejected_when_compiled() -> None:
    rejects(compile_decimal, "european", mentions="unknown decimal style: 'european'")
    rejects(lambda v: parse_decimal(v, "european"), "1", mentions="unknown decimal style")


STYLE_SEPARATORS = {
    "dot": (".", ["", ",", " ", "'", "\u00a0", "\u202f"]),
    "comma": (",", ["", ".", " ", "'", "\u00a0"]),
}
NEGATIVE_FORMS = ["-{}", "({})", "{}-", "\u2212{}", "- {}"]
CURRENCY_FORMS = ["{}", "€ {}", "{} EUR", "${}", "{} usd", "£{}"]


def _written(amount: Decimal, places: int, point: str, group: str) -> str:
    whole, _, fraction = f"{abs(amount):.{places}f}".partition(".")
    grouped = f"{int(whole):,}".replace(",", group) if group else whole
    return f"{grouped}{point}{fraction}" if places else grouped


@MANY
@given(
    st.integers(-(10**12), 10**12),
    st.sampled_from([0, 1, 2, 3, 4]),
    st.sampled_from(["dot", "comma"]),
    st.data(),
)
def test_decimals_read_back_exactly_in_their_style(
    units: int, places: int, style: str, data: st.DataObject
) -> None:
    amount = Decimal(units).scaleb(-places)
    point, groups = STYLE_SEPARATORS[style]
    text = _written(amount, places, point, data.draw(st.sampled_from(groups)))
    if amount < 0:
        text = data.draw(st.sampled_from(NEGATIVE_FORMS)).format(text)
    text = data.draw(st.sampled_from(CURRENCY_FORMS)).format(text)
    result = parse_decimal(text, style)
    assert result == amount
    assert result is not None
    assert str(result) == str(amount)


@MANY
@given(
    st.integers(-(10**12), 10**12),
    st.sampled_from([1, 2, 4]),  # 3 places are ambiguous in auto style ("1,234"): not here
    st.sampled_from(["dot", "comma"]),
    st.data(),
)
def test_auto_style_reads_back_unambiguous_amounts(
    units: int, places: int, style: str, data: st.DataObject
) -> None:
    amount = Decimal(units).scaleb(-places)
    point, groups = STYLE_SEPARATORS[style]
    text = _written(amount, places, point, data.draw(st.sampled_from(groups)))
    if amount < 0:
        text = data.draw(st.sampled_from(NEGATIVE_FORMS)).format(text)
    result = parse_decimal(text, "auto")
    assert result is not None
    assert str(result) == str(amount)


@SOME
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_become_their_shortest_repr_not_the_binary_expansion(number: float) -> None:
    result = parse_decimal(number)
    assert result == Decimal(repr(number)) or (number == 0 and result == 0)
    assert result is not None and float(result) == number


# ---------------------------------------------------------------------------------------------
# currency / country
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("EUR", "EUR"),
        (" eur ", "EUR"),
        ("€", "EUR"),
        ("£", "GBP"),
        ("$", "USD"),
        ("¥", "JPY"),
        ("US$", "USD"),
        ("978", "EUR"),
        (978, "EUR"),
        ("036", "AUD"),
        (36, "AUD"),
        ("Pound Sterling", "GBP"),
        ("euro", "EUR"),
        ("chf", "CHF"),
    ],
)
def test_currency(value: Any, expected: str) -> None:
    assert currency(value) == expected


@pytest.mark.parametrize("value", ["XYZ", "E", "000", "1234", "€€", "DEM", "Dollar"])
def test_currency_rejects(value: str) -> None:
    rejects(currency, value, mentions=f"not a currency: {value!r}")


def test_every_iso_currency_code_maps_to_itself() -> None:
    for record in pycountry.currencies:
        assert currency(record.alpha_3.lower()) == record.alpha_3
        if hasattr(record, "numeric"):
            assert currency(record.numeric) == record.alpha_3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("DE", "DE"),
        ("de", "DE"),
        ("DEU", "DE"),
        ("276", "DE"),
        (276, "DE"),
        (4, "AF"),
        ("Germany", "DE"),
        ("Federal Republic of Germany", "DE"),
        ("  united   kingdom ", "GB"),
        ("South Korea", "KR"),
        ("Türkiye", "TR"),
        ("Deutschland", "DE"),
        ("España", "ES"),
        ("Espana", "ES"),
        ("Österreich", "AT"),
        ("OSTERREICH", "AT"),
        ("Schweiz", "CH"),
        ("Suisse", "CH"),
        ("Sverige", "SE"),
        ("Nederland", "NL"),
        ("Belgique", "BE"),
        ("België", "BE"),
        ("Italia", "IT"),
        ("Polska", "PL"),
        ("Česko", "CZ"),
        ("Česká republika", "CZ"),
        ("Danmark", "DK"),
        ("Norge", "NO"),
        ("Suomi", "FI"),
        ("Éire", "IE"),
        ("Magyarország", "HU"),
        ("Brasil", "BR"),
        ("México", "MX"),
        ("Mexique", "MX"),
        ("UK", "GB"),
        ("U.K.", "GB"),
        ("England", "GB"),
        ("Great Britain", "GB"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("US", "US"),
        ("United States of America", "US"),
        ("Holland", "NL"),
        ("The Netherlands", "NL"),
        ("Korea, South", "KR"),
        ("Russia", "RU"),
        ("Czech Republic", "CZ"),
        ("Ivory Coast", "CI"),
        ("Cote d'Ivoire", "CI"),
        ("Turkey", "TR"),
        ("Bosnia & Herzegovina", "BA"),
        ("St Lucia", "LC"),
        ("St. Kitts and Nevis", "KN"),
        ("Guinea Bissau", "GW"),
        ("EL", "GR"),
    ],
)
def test_country(value: Any, expected: str) -> None:
    assert country(value) == expected


@pytest.mark.parametrize("value", ["Atlantis", "XX", "XXX", "999", "Europe", "Korea"])
def test_country_rejects(value: str) -> None:
    err = rejects(country, value, mentions=f"not a country: {value!r}")
    assert len(err.reason) < 60  # names the value, lists nothing


def _names(record: Any) -> list[str]:
    fields = ("name", "official_name", "common_name")
    return [getattr(record, f) for f in fields if getattr(record, f, None)]


def test_every_iso_country_code_and_english_name_maps_to_its_alpha_2() -> None:
    for record in pycountry.countries:
        for value in (record.alpha_2, record.alpha_3, record.numeric, *_names(record)):
            assert country(value) == record.alpha_2, value


@SOME
@given(st.sampled_from(list(pycountry.countries)), st.data())
def test_country_names_match_in_any_case(record: Any, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(_names(record)))
    flips = data.draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    mixed = "".join(c.upper() if up else c.lower() for c, up in zip(name, flips, strict=True))
    assert country(mixed) == record.alpha_2


# ---------------------------------------------------------------------------------------------
# compile_enum / boolean / integer
# ---------------------------------------------------------------------------------------------


def test_compile_enum_matches_trimmed_case_folded_codes() -> None:
    status = compile_enum({"A": "active", "I": "inactive", "P": "prospect"})
    assert status("A") == "active"
    assert status(" a ") == "active"
    assert status("i") == "inactive"
    assert status(None) is None
    assert status("  ") is None


def test_compile_enum_case_sensitive() -> None:
    status = compile_enum({"A": "active", "a": "archived"}, case_sensitive=True)
    assert status("A") == "active"
    assert status(" a") == "archived"
    rejects(status, "B", mentions="unknown code 'B'")


def test_compile_enum_fallbacks() -> None:
    star = compile_enum({"A": "active", "*": "other"})
    assert star("X") == "other"
    default = compile_enum({"A": "active"}, default="other")
    assert default("X") == "other"
    assert default("") is None  # missing stays missing
    assert compile_enum({"1": "open", "2": "closed"})(2) == "closed"


def test_compile_enum_maps_a_code_to_none_when_asked() -> None:
    status = compile_enum({"A": "active", "N/A": None})  # type: ignore[dict-item]
    assert status("n/a") is None


def test_compile_enum_names_the_value_and_a_few_known_codes() -> None:
    status = compile_enum({f"C{i}": f"code {i}" for i in range(15)})
    err = rejects(status, "Z9", mentions="unknown code 'Z9'; known codes: 'C0', 'C1'")
    assert "'C9'" in err.reason
    assert "'C10'" not in err.reason
    assert "(and 5 more)" in err.reason


def test_compile_enum_rejects_ambiguous_tables() -> None:
    rejects(lambda m: compile_enum(m), {"a": "x", "A": "y"}, mentions="appears twice")
    rejects(lambda m: compile_enum(m, default="z"), {"*": "x"}, mentions="both")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[(v, True) for v in ["true", "True", "T", "yes", "Y", "ja", "J", "oui", "si", "Sí"]],
        *[(v, True) for v in ["1", "on", "ON", "active", " y ", 1, 1.0, Decimal("1"), True]],
        *[(v, False) for v in ["false", "F", "no", "N", "nein", "non", "0", "off", "inactive"]],
        *[(v, False) for v in [0, 0.0, Decimal("0.00"), False]],
    ],
)
def test_boolean(value: Any, expected: bool) -> None:
    assert boolean(value) is expected


@pytest.mark.parametrize("value", ["maybe", "2", 2, -1, 0.5, "yess", "nope"])
def test_boolean_rejects(value: Any) -> None:
    rejects(boolean, value, mentions=f"not a boolean: {value!r}")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12, 12),
        ("12", 12),
        (" 12 ", 12),
        ("-12", -12),
        ("+12", 12),
        ("1,234", 1234),
        ("1 234 567", 1234567),
        ("1.234.567", 1234567),
        ("12.0", 12),
        ("(4)", -4),
        (12.0, 12),
        (Decimal("12.000"), 12),
        (Decimal("1E+3"), 1000),
        ("007", 7),
    ],
)
def test_integer(value: Any, expected: int) -> None:
    result = integer(value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    "value",
    [
        "12.5",
        "1.234",
        "abc",
        "1e3",
        1.5,
        float("nan"),
        float("inf"),
        Decimal("1.5"),
        True,
        "9" * 5000,
    ],
)
def test_integer_rejects(value: Any) -> None:
    rejects(integer, value, mentions="not an integer: ")


@SOME
@given(st.integers(-(10**30), 10**30))
def test_integers_read_back_with_or_without_thousands_separators(number: int) -> None:
    assert integer(str(number)) == number
    assert integer(f"{number:,}") == number
    assert integer(f"{number:,}".replace(",", " ")) == number
