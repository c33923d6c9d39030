"""Text: :func:`strip` and :func:`squash`.

``_as_text`` is also here: every normaliser turns a value that is not a ``str`` into text with it
(bytes from old drivers are decoded).
"""

from __future__ import annotations

import unicodedata

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
