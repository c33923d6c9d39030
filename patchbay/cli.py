"""The ``patchbay`` command.

Records go to stdout, the quality summary and progress to stderr. Exit codes:

====  ==================================================================================
0     success
1     an unexpected error (a bug in patchbay: the traceback is shown)
2     the command, the config or the query is wrong (the message says what to change)
3     a source failed or is unavailable (``check`` found one that is down)
4     not found (a record, an entity, a quarantine entry)
5     strict mode: a row failed validation
6     the consumer may not do this
7     ``check``: schema drift, a mapped column disappeared or changed type
====  ==================================================================================
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import sys
from collections.abc import Callable, Coroutine
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console, ConsoleDimensions
from rich.table import Table

from patchbay.cli_ai import mcp_command
from patchbay.cli_audit import audit_app
from patchbay.cli_creds import creds_app
from patchbay.cli_gateway import gateway_app
from patchbay.config import Config, load_config
from patchbay.core.consumers import AccessDenied
from patchbay.core.drift import Drift
from patchbay.core.entities import Record
from patchbay.core.errors import (
    ConfigError,
    EntityNotFound,
    PatchbayError,
    QuarantinedRecord,
    QueryError,
    RecordNotFound,
    SourceError,
    SourceUnavailable,
)
from patchbay.core.filters import split_key
from patchbay.core.quality import QualityReport, SourceFailure
from patchbay.hub import Hub
from patchbay.render import cell, default_columns, to_json, value_at

__all__ = ["app", "main"]

EXIT_OK, EXIT_BUG, EXIT_USER, EXIT_SOURCE, EXIT_NOT_FOUND, EXIT_STRICT, EXIT_DENIED, EXIT_DRIFT = (
    range(8)
)

app = typer.Typer(
    name="patchbay",
    help="Query legacy ERP, CRM, SQL and file sources as canonical records.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
quarantine_app = typer.Typer(
    help="Rows kept aside because they failed validation.", no_args_is_help=True
)
auth_app = typer.Typer(help="Sign in to sources that need a person once (OAuth).",
                       no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(auth_app, name="auth")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(creds_app, name="creds")
app.add_typer(audit_app, name="audit")
app.add_typer(gateway_app)  # patchbay serve, patchbay keys

class _Console(Console):
    """Piped output is read by programs and people's pagers, not an 80-column terminal: tables
    get room instead of wrapping every cell (COLUMNS still wins when set)."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if not self.is_terminal and "COLUMNS" not in os.environ:
            return ConsoleDimensions(max(size.width, 200), size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


out = _Console(soft_wrap=True)
err = _Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


class Format(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"


class _State:
    config_path: Path = Path("patchbay.yaml")


state = _State()


@app.callback()
def _main(
    config: Annotated[
        Path,
        typer.Option("--config", "-c", envvar="PATCHBAY_CONFIG", help="The config file."),
    ] = Path("patchbay.yaml"),
) -> None:
    state.config_path = config


def _exit_code(exc: PatchbayError) -> int:
    if isinstance(exc, RecordNotFound | EntityNotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, SourceError):
        return EXIT_SOURCE
    if isinstance(exc, QuarantinedRecord):
        return EXIT_STRICT
    if isinstance(exc, AccessDenied):
        return EXIT_DENIED
    return EXIT_USER


def _friendly(fn: Callable[..., T]) -> Callable[..., T]:
    """User errors print one clear line (no traceback) and exit with their code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except PatchbayError as exc:
            label = "config error" if isinstance(exc, ConfigError) else "error"
            err.print(f"[bold red]{label}:[/] {exc}", markup=True, highlight=False)
            raise typer.Exit(_exit_code(exc)) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def _config() -> Config:
    return load_config(state.config_path)


def _run(make: Callable[[Hub], Coroutine[Any, Any, T]], **hub_options: Any) -> T:
    config = _config()

    async def main() -> T:
        async with Hub(config, **hub_options) as hub:
            return await make(hub)

    return asyncio.run(main())


def _parse_where(items: list[str]) -> dict[str, Any]:
    where: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise QueryError(f"--where takes FIELD=VALUE or FIELD__OP=VALUE, got {item!r}")
        split_key(key.strip())  # the op suffix is checked when the filter is bound
        where[key.strip()] = value
    return where


# --- catalog ---------------------------------------------------------------------------------


@app.command()
@_friendly
def sources() -> None:
    """List the configured sources, their connectors, owners and entities."""
    config = _config()
    table = Table("source", "connector", "owner", "entities")
    for source in config.sources.values():
        table.add_row(
            source.name, source.spec.connector, source.owner or "", ", ".join(source.mappings)
        )
    out.print(table)


@app.command()
@_friendly
def entities(
    name: Annotated[str | None, typer.Argument(help="Print this entity's JSON Schema.")] = None,
) -> None:
    """List entities and the sources serving them, or print one entity's JSON Schema."""
    config = _config()
    if name is not None:
        out.print_json(json.dumps(config.entities.schema(name)))
        return
    table = Table("entity", "sources", "fields")
    for entity in config.entities.names():
        serving = [s.name for s in config.sources_for(entity)]
        fields = [
            f
            for f in config.entities.get(entity).model_fields
            if f not in ("id", "source", "remote_id", "extra", "raw")
        ]
        table.add_row(entity, ", ".join(serving) or "-", ", ".join(fields))
    out.print(table)


# --- reading ---------------------------------------------------------------------------------


@app.command()
@_friendly
def query(
    entity: Annotated[str, typer.Argument(help="company, contact, deal, product, order, ...")],
    where: Annotated[
        list[str] | None,
        typer.Option("--where", "-w", help="FIELD=VALUE or FIELD__OP=VALUE; repeat to AND."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only records updated at or after (ISO).")
    ] = None,
    order_by: Annotated[str | None, typer.Option(help="Sort on a field; -field descends.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many records.")] = None,
    fields: Annotated[str | None, typer.Option(help="Comma-separated fields to show.")] = None,
    output: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
    partial: Annotated[bool, typer.Option(help="Deliver what the healthy sources have.")] = False,
    strict: Annotated[bool, typer.Option(help="Fail on the first invalid row.")] = False,
    source: Annotated[list[str] | None, typer.Option(help="Only these sources.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Use this tenant's credentials.")] = None,
) -> None:
    """Query an entity across every source that serves it."""
    filters = _parse_where(where or [])
    columns = [f.strip() for f in fields.split(",")] if fields else None
    progress = err.is_terminal

    async def run(hub: Hub) -> tuple[list[Record], QualityReport, list[SourceFailure]]:
        stream = hub.query(
            entity,
            filters,
            since=since,
            order_by=order_by,
            limit=limit,
            partial=partial,
            strict=strict,
            sources=source,
            tenant=tenant,
            via="cli",
        )
        records: list[Record] = []
        status = err.status(f"reading {entity}...") if progress else None
        if status is not None:
            status.start()
        try:
            async for record in stream:
                if output is Format.table:
                    records.append(record)
                else:
                    _emit(record, output, columns)
                    records.append(record) if output is Format.json else None
                if status is not None and stream.quality.read % 500 == 0:
                    status.update(f"reading {entity}... {stream.quality.read} rows")
        finally:
            if status is not None:
                status.stop()
        return records, stream.quality, stream.errors

    records, quality, errors = _run(run)
    config = _config()
    if output is Format.table:
        model = config.entities.get(entity)
        _print_table(records, columns or default_columns(model, records))
    elif output is Format.json:
        out.print_json(json.dumps([to_json(r, columns) for r in records], ensure_ascii=False))
    _summary(entity, quality, errors)


def _emit(record: Record, output: Format, columns: list[str] | None) -> None:
    if output is Format.jsonl:
        sys.stdout.write(json.dumps(to_json(record, columns), ensure_ascii=False) + "\n")


def _print_table(records: list[Record], columns: list[str], title: str | None = None) -> None:
    table = Table(*columns, title=title)
    for record in records:
        table.add_row(*(cell(value_at(record, c)) for c in columns))
    out.print(table)


def _summary(entity: str, quality: QualityReport, errors: list[SourceFailure]) -> None:
    nulled = sum(quality.nulled.values())
    err.print(
        f"{entity}: read {quality.read} rows, delivered {quality.delivered}, "
        f"quarantined {quality.quarantined}, nulled fields {nulled}",
        highlight=False,
    )
    if quality.quarantined:
        err.print("  see: patchbay quarantine list", highlight=False)
    for failure in errors:
        err.print(
            f"  source {failure.source} failed: {failure.error} (owner: {failure.owner})",
            highlight=False,
        )


@app.command()
@_friendly
def get(
    entity: str,
    record_id: Annotated[str, typer.Argument(metavar="ID", help="A canonical id, source:key.")],
    output: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
    tenant: Annotated[str | None, typer.Option(help="Use this tenant's credentials.")] = None,
) -> None:
    """Fetch one record by its canonical id."""
    record = _run(lambda hub: hub.get(entity, record_id, tenant=tenant, via="cli"))
    if output is not Format.table:
        out.print_json(json.dumps(to_json(record), ensure_ascii=False))
        return
    _print_record(record)


def _print_record(record: Record) -> None:
    table = Table("field", "value", title=f"{record.entity} {record.id}", show_header=False)
    lines = getattr(record, "lines", None)
    for name in type(record).model_fields:
        value = getattr(record, name)
        if name in ("raw", "lines") or value in (None, {}, []):
            continue
        table.add_row(name, cell(value))
    out.print(table)
    if lines:
        columns = ["sku", "description", "quantity", "unit_price", "total"]
        line_table = Table("#", *columns, title="lines")
        for number, line in enumerate(lines, start=1):
            line_table.add_row(str(number), *(cell(getattr(line, c)) for c in columns))
        out.print(line_table)


@app.command()
@_friendly
def explain(
    entity: str,
    where: Annotated[list[str] | None, typer.Option("--where", "-w")] = None,
    since: Annotated[str | None, typer.Option()] = None,
    order_by: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Show which conditions each source evaluates and which are checked in memory."""
    filters = _parse_where(where or [])
    plan = _run(lambda hub: hub.explain(entity, filters, since=since, order_by=order_by))
    out.print_json(json.dumps(plan, default=str, ensure_ascii=False))


@app.command()
@_friendly
def check(
    accept_schema: Annotated[
        bool, typer.Option("--accept-schema", help="Record today's schema as the baseline.")
    ] = False,
) -> None:
    """Reach every source and compare its schema with what the mappings read.

    Exit 3 when a source is failing, 7 when a mapped column disappeared or changed type.
    """

    async def run(hub: Hub) -> tuple[dict[str, SourceFailure | None], list[Drift]]:
        health = await hub.check()
        findings: list[Drift] = []
        for name in [name for name, failure in health.items() if failure is None]:
            try:
                findings.extend(await hub.drift([name], accept=accept_schema))
            except SourceError as exc:  # reachable, but what a mapping reads is not there
                health[name] = SourceFailure(
                    name, exc.owner, exc.detail, isinstance(exc, SourceUnavailable)
                )
        return health, findings

    results, findings = _run(run)
    config = _config()
    table = Table("source", "status", "owner", "detail")
    for name, failure in results.items():
        owner = config.sources[name].owner or ""
        drifted = [f for f in findings if f.source == name]
        if failure is not None:
            table.add_row(name, "[red]failing[/]", owner, failure.error)
        elif drifted:
            table.add_row(name, "[yellow]schema drift[/]", owner, f"{len(drifted)} findings")
        else:
            table.add_row(name, "[green]ok[/]", owner, "")
    out.print(table)
    if findings:
        drift = Table("source", "owner", "mapping path", "problem", "detail",
                      title="schema drift")
        for f in findings:
            drift.add_row(f.source, f.owner or "", f.mapping_path, f.problem, f.detail)
        out.print(drift)
        if accept_schema:
            err.print("recorded the current schema as the baseline", highlight=False)
    if any(results.values()):
        raise typer.Exit(EXIT_SOURCE)
    if findings and not accept_schema:
        raise typer.Exit(EXIT_DRIFT)


@app.command()
@_friendly
def discover(source: str) -> None:
    """List a source's tables (or files) and their columns."""
    schema = _run(lambda hub: hub.discover(source))
    table = Table("table", "column", "type", "key")
    for info in schema.tables:
        for column in info.columns:
            table.add_row(
                info.name,
                column.name,
                column.type,
                "yes" if column.name in info.primary_key else "",
            )
    out.print(table)


# --- auth ------------------------------------------------------------------------------------


@auth_app.command("login")
@_friendly
def auth_login(
    source: str,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the sign-in address; open nothing.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the sign-in.")] = 300.0,
) -> None:
    """Authorize a source once (authorization code + PKCE on a loopback redirect)."""
    import webbrowser

    from patchbay.auth import AuthorizationCodeSpec, login
    from patchbay.resources import build_http_client

    config = _config()
    conf = config.sources.get(source)
    if conf is None:
        raise QueryError(f"unknown source {source!r}; sources: {', '.join(config.sources)}")
    if not isinstance(conf.auth, AuthorizationCodeSpec):
        raise QueryError(
            f"source {source!r} does not use scheme oauth2_authorization_code; nothing to log in"
        )
    spec: AuthorizationCodeSpec = conf.auth
    if not config.secret_key:
        raise ConfigError(
            "auth login keeps the tokens encrypted in the state database, which needs "
            "secret_key: add 'secret_key: env:PATCHBAY_SECRET_KEY' to the config",
            file=config.file, path="secret_key",
        )

    def open_browser(url: str) -> None:
        err.print(f"sign in to {source} at:\n  {url}", highlight=False, soft_wrap=True)
        if not no_browser:
            webbrowser.open(url)

    async def run(hub: Hub) -> None:
        opened: list[Any] = []
        plain = _without_auth(conf)
        client = build_http_client(
            plain, base_dir=config.base_dir, token_store=hub.token_store, events=hub.events,
            opened=opened,
        )
        try:
            await login(spec, source=source, owner=conf.owner, store=hub.token_store,
                        token_client=client, open_browser=open_browser, timeout=timeout)
        finally:
            for opened_client in opened:
                await opened_client.aclose()

    _run(run)
    err.print(f"{source}: signed in; tokens are kept in the state database", highlight=False)


def _without_auth(conf: Any) -> Any:
    """The source without its auth: the client that performs the login itself."""
    import dataclasses

    return dataclasses.replace(conf, auth=None)


# --- config ----------------------------------------------------------------------------------


@config_app.command("validate")
@_friendly
def config_validate(
    path: Annotated[Path | None, typer.Argument(help="Defaults to --config.")] = None,
) -> None:
    """Check a config file without touching any source (secrets are not resolved)."""
    config = load_config(path or state.config_path, resolve_secrets=False)
    mappings = sum(len(s.mappings) for s in config.sources.values())
    err.print(
        f"{config.file}: ok ({len(config.sources)} sources, {mappings} mappings)", highlight=False
    )


# --- quarantine ------------------------------------------------------------------------------


def _hub_state() -> Hub:
    return Hub(_config())


@quarantine_app.command("list")
@_friendly
def quarantine_list(
    source: Annotated[str | None, typer.Option()] = None,
    entity: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1)] = 100,
) -> None:
    """List quarantined rows with their reasons."""
    hub = _hub_state()
    entries = hub.quarantine.list(source=source, entity=entity, limit=limit)
    table = Table("id", "source", "entity", "remote id", "reasons", "seen")
    for entry in entries:
        table.add_row(
            str(entry.id),
            entry.source,
            entry.entity,
            entry.remote_id or "",
            "; ".join(entry.reasons),
            str(entry.times_seen),
        )
    out.print(table)
    err.print(
        f"{hub.quarantine.count(source=source, entity=entity)} quarantined rows", highlight=False
    )


@quarantine_app.command("show")
@_friendly
def quarantine_show(entry_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Show one quarantined row: reasons and the raw row as the source gave it."""
    entry = _hub_state().quarantine.get(entry_id)
    if entry is None:
        err.print(f"error: no quarantine entry {entry_id}")
        raise typer.Exit(EXIT_NOT_FOUND)
    out.print_json(
        json.dumps(
            {
                "id": entry.id,
                "source": entry.source,
                "entity": entry.entity,
                "remote_id": entry.remote_id,
                "reasons": list(entry.reasons),
                "raw": entry.raw,
                "first_seen": entry.first_seen.isoformat(),
                "last_seen": entry.last_seen.isoformat(),
                "times_seen": entry.times_seen,
            },
            ensure_ascii=False,
        )
    )


@quarantine_app.command("purge")
@_friendly
def quarantine_purge(
    source: Annotated[str | None, typer.Option()] = None,
    entity: Annotated[str | None, typer.Option()] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete quarantined rows (all, or those of one source / entity)."""
    hub = _hub_state()
    count = hub.quarantine.count(source=source, entity=entity)
    if not yes and not typer.confirm(f"delete {count} quarantined rows?"):
        raise typer.Exit(EXIT_OK)
    removed = hub.quarantine.purge(source=source, entity=entity)
    err.print(f"purged {removed} quarantined rows", highlight=False)


# --- demo ------------------------------------------------------------------------------------


@app.command()
@_friendly
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to generate the sources.")] = Path(
        ".patchbay/demo"
    ),
) -> None:
    """Generate a legacy ERP database and a CRM export, then query them as one."""
    from patchbay.demo.generate import generate

    files = generate(directory)
    config_file = directory / "patchbay.yaml"
    with resources.as_file(resources.files("patchbay.demo") / "patchbay.yaml") as packaged:
        shutil.copyfile(packaged, config_file)
    state.config_path = config_file
    err.print(f"generated {files.erp} and {files.crm_csv}; config: {config_file}", highlight=False)

    async def run(hub: Hub) -> None:
        # 1. One query over both sources.
        stream = hub.query("contact", address__country="GB")
        contacts = [record async for record in stream]
        out.rule("1. contacts in GB: the ERP's customers and the CRM's export, as one stream")
        _print_table(contacts, ["id", "full_name", "email", "phone", "company_name"])
        _summary("contact", stream.quality, stream.errors)

        # 2. One invoice with its lines.
        page = await hub.fetch("invoice", status="open", limit=50)
        invoice = max(page.records, key=lambda r: len(getattr(r, "lines", [])))
        out.rule(f"2. invoice {invoice.id} with its lines")
        _print_record(invoice)

        # 3. The quality report over everything, with the quarantined rows and their reasons.
        report = Table(
            "source",
            "entity",
            "read",
            "delivered",
            "quarantined",
            "nulled fields",
            title="3. quality report",
        )
        for entity in hub.entities():
            s = hub.query(entity)
            async for _ in s:
                pass
            for name, q in s.quality.sources.items():
                report.add_row(
                    name,
                    entity,
                    str(q.read),
                    str(q.delivered),
                    str(q.quarantined),
                    ", ".join(f"{k} ({v})" for k, v in sorted(q.nulled.items())),
                )
        out.rule("3. quality report")
        out.print(report)
        bad = Table("source", "entity", "remote id", "reasons", title="quarantined rows")
        for entry in hub.quarantine.list(limit=1000):
            bad.add_row(
                entry.source, entry.entity, entry.remote_id or "(none)", "; ".join(entry.reasons)
            )
        out.print(bad)

    _run(run)


app.command("mcp")(mcp_command)  # after the commands above: listed in this order


def main() -> None:
    try:
        app()
    except SystemExit:
        raise
    except Exception:  # a bug: show the traceback, exit 1
        err.print_exception()
        sys.exit(EXIT_BUG)


if __name__ == "__main__":
    main()
