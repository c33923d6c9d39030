"""A masked e-mail address never leaves in clear: not in records (query, fetch, get, JSON),
not in errors, not in the catalog or explain, not in the audit rows or the audit command, not
in any log line — whatever the consumer tries (as tests/test_secrets.py does for secrets)."""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from governance_kit import governed
from typer.testing import CliRunner

from patchbay import Hub
from patchbay.cli import app
from patchbay.config import load_config
from patchbay.core.errors import PatchbayError
from patchbay.core.policy import record_to_json

CLEAR = "niamh.smith@turner-packaging.de"  # erp:10002 in the demo
FORMS = (CLEAR, CLEAR.split("@")[0], CLEAR.upper())

ATTEMPTS: list[dict[str, Any]] = [
    {"email": CLEAR},
    {"email__in": [CLEAR, "x@y.z"]},
    {"email__contains": "niamh.smith"},
    {"email__ne": CLEAR},
    {"where": {"or": [{"field": "email", "op": "eq", "value": CLEAR}]}},
    {"where": {"not": {"field": "email", "op": "gte", "value": CLEAR}}},
    {"order_by": "email"},
    {"order_by": "-email", "email__isnull": False},
    {"email__gt": CLEAR},
]


def _scan(label: str, text: str, found: list[str]) -> None:
    lowered = text.lower()
    for form in FORMS:
        if form.lower() in lowered:
            at = lowered.index(form.lower())
            found.append(
                f"{label}: ...{text[max(0, at - 40) : at].replace(CLEAR, '<CLEAR>')}<CLEAR>"
            )


@pytest.mark.parametrize("mask", ["partial", "redact", "hash"])
async def test_a_masked_email_never_leaves_in_clear(
    demo_dir: Path, caplog: pytest.LogCaptureFixture, mask: str
) -> None:
    caplog.set_level(logging.DEBUG)
    rules = {"contact": {"mask": {"email": mask}}, "company": {"mask": {"email": mask}}}
    path = governed(demo_dir, {"bot": {"entities": rules}})
    captured: list[tuple[str, str]] = []
    async with Hub(load_config(path)) as hub:
        for entity in ("contact", "company"):
            seen = [r async for r in hub.query(entity, consumer="bot", request_id="q")]
            captured += [(f"query {entity}", json.dumps(record_to_json(r))) for r in seen]
            captured += [(f"query {entity} repr", repr(r)) for r in seen]
            page = await hub.fetch(entity, consumer="bot", limit=1000)
            captured += [(f"fetch {entity}", json.dumps(record_to_json(r))) for r in page.records]
            got = await hub.get(entity, "erp:10002", consumer="bot")
            captured.append((f"get {entity}", json.dumps(record_to_json(got)) + repr(got)))
        captured.append(("catalog", repr(hub.catalog("bot"))))
        for attempt in ATTEMPTS:
            kwargs = dict(attempt)
            where = kwargs.pop("where", None)
            for run in ("query", "fetch", "explain"):
                try:
                    if run == "query":
                        [r async for r in hub.query("contact", where, consumer="bot", **kwargs)]
                    elif run == "fetch":
                        await hub.fetch("contact", where, consumer="bot", **kwargs)
                    else:
                        captured.append(
                            (
                                "explain",
                                json.dumps(
                                    await hub.explain("contact", where, consumer="bot", **kwargs)
                                ),
                            )
                        )
                except PatchbayError as exc:
                    captured.append(
                        (f"{run} {attempt} error", "".join(traceback.format_exception(exc)))
                    )
                else:
                    pytest.fail(f"{run} {attempt} was not refused")
    engine = sa.create_engine(load_config(path).state_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM patchbay_audit")).mappings().all()
    engine.dispose()
    assert len(rows) == 2 * 3 + len(ATTEMPTS) * 2  # query, fetch, get per entity; refusals
    captured += [("audit row", json.dumps({k: str(v) for k, v in row.items()})) for row in rows]
    cli = CliRunner().invoke(app, ["--config", str(path), "audit", "-o", "json", "--limit", "1000"])
    assert cli.exit_code == 0
    captured.append(("patchbay audit", cli.output))
    captured += [(f"log {r.name}", r.getMessage() + str(r.__dict__)) for r in caplog.records]

    found: list[str] = []
    for label, text in captured:
        _scan(label, text, found)
    assert found == []
    # The scan looks where the address would be: the records do carry its masked form.
    joined = " ".join(text for label, text in captured if label.startswith("get contact"))
    expected = {"partial": "n***@turner-packaging.de", "redact": "[redacted]", "hash": "hash:"}[
        mask
    ]
    assert expected in joined
