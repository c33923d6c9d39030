"""The CLI as a user runs it: records on stdout, summaries on stderr, one-line errors."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from support import BUILTIN_CONNECTORS
from typer.testing import CliRunner

from patchbay.cli import app

INSTALLED = f"installed connectors: {', '.join(BUILTIN_CONNECTORS)}"

runner = CliRunner()


def run(demo_dir: Path, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["--config", str(demo_dir / "patchbay.yaml"), *args], input=input)


def test_query_as_jsonl_with_summary_on_stderr(demo_dir: Path) -> None:
    result = run(demo_dir, "query", "contact", "-w", "address__country=IE", "-f", "jsonl")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines
    assert {line["address"]["country"] for line in lines} == {"IE"}
    assert "read 100 rows" in result.stderr
    assert "quarantined 1" in result.stderr
    assert "read 100" not in result.stdout


def test_query_as_json_with_fields_and_limit(demo_dir: Path) -> None:
    result = run(
        demo_dir,
        "query",
        "invoice",
        "--where",
        "status=paid",
        "--limit",
        "3",
        "--fields",
        "number,total.amount",
        "-f",
        "json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data) == 3
    assert set(data[0]) == {"id", "number", "total.amount"}


def test_query_as_table(demo_dir: Path) -> None:
    result = run(demo_dir, "query", "product", "--order-by", "sku", "--limit", "2")
    assert result.exit_code == 0, result.output
    assert "erp:AX-1001" in result.stdout


def test_unknown_field_is_one_line_with_the_fields(demo_dir: Path) -> None:
    result = run(demo_dir, "query", "contact", "-w", "emial=x")
    assert result.exit_code == 2
    assert "unknown field 'emial'" in result.stderr
    assert "email" in result.stderr
    assert "Traceback" not in result.output


def test_bad_where_syntax(demo_dir: Path) -> None:
    result = run(demo_dir, "query", "contact", "-w", "email")
    assert result.exit_code == 2
    assert "FIELD=VALUE" in result.stderr


def test_unknown_entity_is_not_found(demo_dir: Path) -> None:
    result = run(demo_dir, "query", "customer")
    assert result.exit_code == 4
    assert "known entities: company, contact" in result.stderr


def test_get(demo_dir: Path) -> None:
    result = run(demo_dir, "get", "invoice", "erp:500002", "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["id"] == "erp:500002"
    assert len(data["lines"]) == 4
    assert isinstance(data["total"]["amount"], str)  # Money amounts are strings in JSON
    table = run(demo_dir, "get", "invoice", "erp:500002")
    assert "lines" in table.stdout
    missing = run(demo_dir, "get", "invoice", "erp:1")
    assert missing.exit_code == 4
    assert "no invoice with id 'erp:1'" in missing.stderr


def test_sources_entities_and_schema(demo_dir: Path) -> None:
    sources = run(demo_dir, "sources")
    assert "finance-systems@acme.example" in sources.stdout
    entities = run(demo_dir, "entities")
    assert "invoice" in entities.stdout
    schema = run(demo_dir, "entities", "invoice")
    assert json.loads(schema.stdout)["title"] == "Invoice"


def test_explain(demo_dir: Path) -> None:
    result = run(demo_dir, "explain", "contact", "-w", "email=ann@acme.example")
    plan = json.loads(result.stdout)
    erp = plan["sources"][0]
    assert erp["pushed_down"][0]["path"] == "EMAIL"


def test_check_and_discover(demo_dir: Path) -> None:
    assert run(demo_dir, "check").exit_code == 0
    discovered = run(demo_dir, "discover", "erp")
    assert "INV_HDR" in discovered.stdout
    (demo_dir / "crm_contacts.csv").unlink()
    (demo_dir / "erp.sqlite").unlink()
    result = run(demo_dir, "check")
    assert result.exit_code == 3
    assert "failing" in result.stdout


def test_unreachable_source_exit_code_and_partial(demo_dir: Path) -> None:
    (demo_dir / "erp.sqlite").unlink()
    result = run(demo_dir, "query", "contact", "-f", "jsonl")
    assert result.exit_code == 3
    assert "source 'erp' (owner: finance-systems@acme.example)" in result.stderr
    partial = run(demo_dir, "query", "contact", "-f", "jsonl", "--partial")
    assert partial.exit_code == 0
    assert len(partial.stdout.splitlines()) == 39
    assert "source erp failed" in partial.stderr


def test_strict_exit_code(demo_dir: Path) -> None:
    result = run(demo_dir, "query", "company", "--strict", "-f", "jsonl")
    assert result.exit_code == 5
    assert "name: required" in result.stderr


def test_config_validate(demo_dir: Path, tmp_path: Path) -> None:
    ok = run(demo_dir, "config", "validate")
    assert ok.exit_code == 0
    assert "ok (2 sources, 6 mappings)" in ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nsources: {erp: {connector: oracle}}\n")
    result = runner.invoke(app, ["config", "validate", str(bad)])
    assert result.exit_code == 2
    assert INSTALLED in result.stderr
    assert "Traceback" not in result.output


def test_config_validate_touches_no_source(demo_dir: Path) -> None:
    (demo_dir / "erp.sqlite").unlink()
    (demo_dir / "crm_contacts.csv").unlink()
    assert run(demo_dir, "config", "validate").exit_code == 0


def test_quarantine_list_show_purge(demo_dir: Path) -> None:
    run(demo_dir, "query", "invoice", "-f", "jsonl")
    listed = run(demo_dir, "quarantine", "list")
    assert "500003" in listed.stdout
    assert "3 quarantined rows" in listed.stderr
    state = sqlite3.connect(demo_dir / "state" / "state.db")
    [entry_id] = state.execute(
        "select id from patchbay_quarantine where remote_id = '500003'"
    ).fetchone()
    state.close()
    shown = run(demo_dir, "quarantine", "show", str(entry_id))
    data = json.loads(shown.stdout)
    assert data["raw"]["TOTAL"] == "n/a"
    assert data["reasons"][0].startswith("total:")
    assert run(demo_dir, "quarantine", "show", "9999").exit_code == 4
    refused = run(demo_dir, "quarantine", "purge", input="n\n")
    assert refused.exit_code == 0
    purged = run(demo_dir, "quarantine", "purge", "--yes")
    assert "purged 3 quarantined rows" in purged.stderr


def test_missing_config_says_what_to_do(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--config", str(tmp_path / "nope.yaml"), "sources"])
    assert result.exit_code == 2
    assert "config file not found" in result.stderr


def test_demo_prints_the_three_outputs(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--dir", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "1. contacts in GB" in out
    assert "crm:CRM-" in out
    assert "erp:100" in out
    assert "2. invoice erp:" in out
    assert "lines" in out
    assert "3. quality report" in out
    assert "quarantined rows" in out
    for reason in ("name: required, but missing", "id: missing (Contact ID)", "lines[2].quantity"):
        assert reason in out
    assert (tmp_path / "demo" / "patchbay.yaml").exists()


@pytest.mark.parametrize("args", [["--help"], ["query", "--help"], ["quarantine", "--help"]])
def test_help(args: list[str]) -> None:
    assert runner.invoke(app, args).exit_code == 0
