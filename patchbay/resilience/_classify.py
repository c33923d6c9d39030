"""Turn one try's outcome into a decision, once, as plain data (cf. Airbyte's ResponseAction).

``classify`` is the only place that knows which failures are transient:

- ``OK``            a response below 400;
- ``RETRY``         a transport failure that may pass (refused, reset, dropped, timed out),
                    502/503/504, and 500 when the policy asks for it;
- ``RATE_LIMITED``  429: wait what ``Retry-After`` says (seconds or an HTTP-date), or back off;
- ``FAIL``          everything else. The caller returns the response (the connector classifies
                    the final status) or re-raises the error. A ``FAIL`` that carries a ``wait``
                    is a source asking for a longer wait than ``retry_after_cap`` allows.

Bare exceptions (anything not an ``httpx.TransportError``) are never retried: a bug in a
connector must surface, not be hammered five times.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

import httpx

from ._policy import RetryPolicy

__all__ = ["Action", "Decision", "classify", "parse_retry_after"]

_TRANSIENT_STATUS = frozenset({502, 503, 504})
# Transport errors that can pass on their own. Not UnsupportedProtocol, LocalProtocolError or
# ProxyError: those are configuration or client bugs and fail the same way every time.
_TRANSIENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


class Action(enum.Enum):
    OK = "ok"
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    FAIL = "fail"


@dataclass(frozen=True)
class Decision:
    action: Action
    wait: float | None  # seconds the source asked for (Retry-After); None: use the backoff
    reason: str

    @property
    def transient(self) -> bool:
        return self.action in (Action.RETRY, Action.RATE_LIMITED)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            return None
        return max(0.0, (when - now).total_seconds())
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def classify(
    response: httpx.Response | None,
    error: BaseException | None,
    policy: RetryPolicy,
    now: datetime,
) -> Decision:
    if error is not None:
        name = type(error).__name__
        if isinstance(error, _TRANSIENT_ERRORS):
            return Decision(Action.RETRY, None, f"{name}: {error}" if str(error) else name)
        return Decision(Action.FAIL, None, f"{name} is not a transient failure")
    if response is None:
        raise ValueError("classify() needs a response or an error")
    status = response.status_code
    if status < 400:
        return Decision(Action.OK, None, f"HTTP {status}")
    transient = status == 429 or status in _TRANSIENT_STATUS or (status == 500 and policy.retry_500)
    if not transient:
        return Decision(Action.FAIL, None, f"HTTP {status}")
    action = Action.RATE_LIMITED if status == 429 else Action.RETRY
    wait = parse_retry_after(response.headers.get("Retry-After"), now)
    if wait is None:
        return Decision(action, None, f"HTTP {status}")
    if wait > policy.retry_after_cap:
        return Decision(
            Action.FAIL,
            wait,
            f"HTTP {status} with Retry-After of {wait:.0f} s, "
            f"longer than the cap of {policy.retry_after_cap:g} s (retry_after_cap)",
        )
    return Decision(action, wait, f"HTTP {status}, Retry-After {wait:.3g} s")
