"""The README's curl session (examples/gateway_session.sh) run against a served gateway over the
demo with examples/gateway_consumers.yaml added, as a reader would."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from gateway_support import CLEAR_EMAIL, MASKED_EMAIL, serve
from support import unavailable

from patchbay.config import load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_readme_curl_session_runs(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("curl") is None:
        unavailable("curl is not installed (the README session is curl)")
    monkeypatch.setenv("PATCHBAY_SECRET_KEY", "readme-session-secret-key-0123456789")
    config = demo_dir / "patchbay.yaml"
    data = yaml.safe_load(config.read_text())
    data.update(yaml.safe_load((EXAMPLES / "gateway_consumers.yaml").read_text()))
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    assert set(load_config(config, resolve_secrets=False).spec.consumers) == {
        "local", "support_bot", "ops"}

    for served in serve(demo_dir):
        result = subprocess.run(
            ["bash", str(EXAMPLES / "gateway_session.sh")],
            env={"PATH": "/usr/bin:/bin", "PATCHBAY_URL": served.url,
                 "PATCHBAY_KEY": served.tokens["support_bot"]},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    sections = _sections(result.stdout)
    assert json.loads(sections["open, no data"][0]) == {"status": "ok"}
    catalog = json.loads(
        sections["the entities this key may read (fields, masks, JSON Schemas)"][0]
    )
    assert [v["name"] for v in catalog["entities"]] == ["company", "contact"]
    german = json.loads(sections["German contacts, two fields, two per page"][0])
    assert len(german["records"]) == 2 and german["next_cursor"]
    assert all(set(r) == {"id", "full_name", "email"} for r in german["records"])
    one = json.loads(sections["one contact by its canonical id"][0])
    assert one["email"] == MASKED_EMAIL
    queried = json.loads(sections["the JSON filter form"][0])
    assert len(queried["records"]) == 3
    owners = json.loads(sections["sources, with who owns them, and one source's health"][0])
    assert owners["sources"][0]["owner"] == "finance-systems@acme.example"
    refused = json.loads(sections["refused: e-mail is masked for this consumer, so it cannot be "
                                  "filtered by its clear value"][0])
    assert refused["type"] == "urn:patchbay:problem:forbidden"
    assert refused["request_id"] == "readme-1"
    assert sections["refused: no key"][0].startswith("HTTP/1.1 401")
    assert CLEAR_EMAIL not in result.stdout


def _sections(output: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in output.splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:], [])
        elif line.strip():
            current.append(line)
    return sections
