from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from patchbay.core.cursor import CursorSigner, query_digest
from patchbay.core.errors import CursorError

KEY = b"k" * 32


def test_round_trip_keeps_types() -> None:
    signer = CursorSigner(KEY)
    positions = {
        "erp": [datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), Decimal("12.50"), 7],
        "crm": {"file": "a.csv", "row": 3},
        "old": [date(2020, 1, 1), None, "x/y"],
    }
    token = signer.dump("q1", positions)
    assert token.replace("-", "").replace("_", "").isalnum()  # URL-safe, no padding
    assert signer.load(token, "q1") == positions


def test_tampering_is_rejected() -> None:
    signer = CursorSigner(KEY)
    token = signer.dump("q1", {"erp": [1]})
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(CursorError, match="signature"):
        signer.load(flipped, "q1")
    with pytest.raises(CursorError):
        signer.load("not a cursor!", "q1")


def test_another_key_is_rejected() -> None:
    token = CursorSigner(KEY).dump("q1", {"erp": [1]})
    with pytest.raises(CursorError, match="signature"):
        CursorSigner(b"z" * 32).load(token, "q1")


def test_a_cursor_only_continues_its_own_query() -> None:
    signer = CursorSigner(KEY)
    token = signer.dump(query_digest({"where": {"a": 1}}), {"erp": [1]})
    with pytest.raises(CursorError, match="different query"):
        signer.load(token, query_digest({"where": {"a": 2}}))


def test_the_key_never_shows() -> None:
    assert "k" * 16 not in repr(CursorSigner(KEY))
