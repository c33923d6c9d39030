"""``patchbay audit``: the audit log of every request consumers made, newest first.

Rows come from ``patchbay_audit`` in the config's ``state`` database (``patchbay.core.audit``).
Exit code 2 when the config or an option is wrong, as in ``patchbay.cli``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from patchbay.config import load_config
from patchbay.core.audit import OUTCOMES, AuditEntry, read_audit
from patchbay.core.errors import ConfigError, PatchbayError

__all__ = ["audit_app"]

EXIT_USER = 2
_AGO = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

audit_app = typer.Typer(help="The audit log: who read what, when, through which front door.")
err = Console(stderr=True, soft_wrap=True)


class Output(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``30m``, ``12h``, ``7d`` ago, or an ISO 8601 date or time (UTC unless it says)."""
    match = _AGO.match(text.strip())
    if match:
        amount, unit = match.groups()
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: give a duration such as 30m, 12h or 7d, or an ISO date such as 2026-01-31"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@audit_app.callback(invoke_without_command=True)
def audit(
    consumer: Annotated[str | None, typer.Option(help="Only this consumer.")] = None,
    entity: Annotated[str | None, typer.Option(help="Only this entity.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only requests since: 30m, 12h, 7d or an ISO date.")
    ] = None,
    outcome: Annotated[
        str | None, typer.Option(help=f"Only this outcome: {', '.join(OUTCOMES)}.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows.")] = 50,
    output: Annotated[Output, typer.Option("--output", "-o", help="table, json or jsonl.")] = (
        Output.table
    ),
) -> None:
    """List audit rows, newest first."""
    from patchbay.cli import out, state  # the --config option; the console of the CLI

    if outcome is not None and outcome not in OUTCOMES:
        raise typer.BadParameter(
            f"{outcome!r} is not one of {', '.join(OUTCOMES)}", param_hint="--outcome"
        )
    moment = parse_since(since) if since is not None else None
    try:
        config = load_config(state.config_path, resolve_secrets=False)
        engine = sa.create_engine(config.state_url)
        try:
            entries = read_audit(
                engine,
                consumer=consumer,
                entity=entity,
                since=moment,
                outcome=outcome,
                limit=limit,
            )
        finally:
            engine.dispose()
    except PatchbayError as exc:
        label = "config error" if isinstance(exc, ConfigError) else "error"
        err.print(f"[bold red]{label}:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(EXIT_USER) from None
    if output is Output.json:
        out.print_json(json.dumps([e.to_json() for e in entries]))
    elif output is Output.jsonl:
        for entry in entries:
            out.print(json.dumps(entry.to_json()), markup=False, highlight=False)
    else:
        _table(entries)


def _table(entries: list[AuditEntry]) -> None:
    from patchbay.cli import out

    table = Table(
        "at (UTC)",
        "consumer",
        "via",
        "operation",
        "entity",
        "records",
        "outcome",
        "ms",
        "request id",
        "filters",
    )
    for e in entries:
        table.add_row(
            e.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            e.consumer,
            e.via,
            e.operation,
            e.entity,
            str(e.record_count),
            e.outcome if e.error is None else f"{e.outcome} ({e.error})",
            f"{e.duration_ms:.1f}",
            e.request_id or "",
            "" if e.filters is None else json.dumps(e.filters),
        )
    out.print(table)
    if not entries:
        err.print("no audit rows match")
