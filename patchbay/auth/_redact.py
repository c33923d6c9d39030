"""A logging filter that keeps query-string secrets out of httpx's request log.

What httpx logs (0.28): the ``httpx`` logger writes one INFO record per response,
``'HTTP Request: %s %s "%s %d %s"'`` with ``request.url`` as the second argument, i.e. the
URL *after* the auth flow ran, including a query-string API key. httpcore's DEBUG records
(``httpcore.http11`` / ``httpcore.http2``) name request methods only, never URLs or request
headers, but do list response headers, where a ``Set-Cookie`` can carry a session token.

``QueryRedactor(name)`` replaces the value of query parameter ``name`` with ``***`` in those
records' arguments and message, and ``Set-Cookie`` values in httpcore's. ``install_redactor``
adds it (once per parameter name) to exactly those loggers; ``build_auth`` calls it for every
``api_key`` spec with ``in: query``.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote

__all__ = [
    "LOGGERS",
    "CookieRedactor",
    "QueryRedactor",
    "install_cookie_redactor",
    "install_redactor",
]

LOGGERS = ("httpx", "httpcore.http11", "httpcore.http2")

_SET_COOKIE = re.compile(r"(\(b'set-cookie', b')[^']*(')", re.IGNORECASE)


class QueryRedactor(logging.Filter):
    def __init__(self, param: str) -> None:
        super().__init__()
        self.param = param
        names = {re.escape(param), re.escape(quote(param, safe=""))}
        self._pattern = re.compile(rf"([?&](?:{'|'.join(sorted(names))})=)[^&#\s\"']*")

    def _redact(self, text: str) -> str:
        text = self._pattern.sub(r"\1***", text)
        return _SET_COOKIE.sub(r"\1***\2", text)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self._redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._redact(str(arg)) if not isinstance(arg, int | float) else arg
                for arg in record.args
            )
        return True


def install_redactor(param: str) -> None:
    """Add a ``QueryRedactor`` for ``param`` to httpx's and httpcore's loggers (idempotent)."""
    for name in LOGGERS:
        log = logging.getLogger(name)
        if not any(isinstance(f, QueryRedactor) and f.param == param for f in log.filters):
            log.addFilter(QueryRedactor(param))


class CookieRedactor(logging.Filter):
    """Masks ``Set-Cookie`` values (session tokens) in httpcore's DEBUG response-header logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _SET_COOKIE.sub(r"\1***\2", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SET_COOKIE.sub(r"\1***\2", arg)
                if isinstance(arg, str)
                else (
                    _SET_COOKIE.sub(r"\1***\2", str(arg)) if isinstance(arg, list | tuple) else arg
                )
                for arg in record.args
            )
        return True


def install_cookie_redactor() -> None:
    """Add the ``CookieRedactor`` to httpx's and httpcore's loggers (idempotent)."""
    for name in LOGGERS:
        log = logging.getLogger(name)
        if not any(isinstance(f, CookieRedactor) for f in log.filters):
            log.addFilter(CookieRedactor())
