"""Code tables (:func:`compile_enum`) and yes/no flags (:func:`boolean`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from patchbay.core.normalise._errors import NormaliseError, _show
from patchbay.core.normalise._text import _as_text


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
