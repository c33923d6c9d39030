"""Countries: ISO 3166-1 alpha-2 codes from codes, English and translated names, and aliases."""

from __future__ import annotations

import functools
import gettext
import unicodedata

import pycountry

from patchbay.core.normalise._errors import NormaliseError, _show
from patchbay.core.normalise._text import _as_text

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
