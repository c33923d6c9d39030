"""``patchbay mcp``: serve the Hub to an MCP host (a desktop assistant, an IDE) over stdio.

stdout carries the protocol and nothing else; messages go to stderr. The server runs as one
consumer, named with ``--consumer`` (or ``PATCHBAY_CONSUMER``): its policy decides which tools
and fields the assistant sees, and every call is audited under that name. Exit codes are those
of ``patchbay`` (``patchbay.cli``): 2 when the config or the command is wrong, 6 when the
consumer is unknown.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from patchbay.config import load_config
from patchbay.core.consumers import AccessDenied
from patchbay.core.errors import ConfigError, PatchbayError

__all__ = ["mcp_command"]

EXIT_USER, EXIT_DENIED = 2, 6
err = Console(stderr=True, soft_wrap=True)


def mcp_command(
    consumer: Annotated[
        str,
        typer.Option(
            "--consumer",
            envvar="PATCHBAY_CONSUMER",
            help="The consumer the assistant runs as (its policy applies).",
        ),
    ],
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="The config file (default: patchbay's --config)."),
    ] = None,
    budget: Annotated[
        int,
        typer.Option(
            "--max-chars",
            min=500,
            help="Largest answer of one tool call, in characters (~4 per token).",
        ),
    ] = 16_000,
) -> None:
    """Serve tools and catalog resources over MCP (stdio) as one consumer."""
    from patchbay.ai.mcp import serve_stdio
    from patchbay.ai.render import Budget
    from patchbay.cli import state  # the --config option of the main command
    from patchbay.hub import Hub

    try:
        loaded = load_config(config or state.config_path)

        async def main() -> None:
            async with Hub(loaded) as hub:
                await serve_stdio(hub, consumer, budget=Budget(budget))

        asyncio.run(main())
    except AccessDenied as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(EXIT_DENIED) from None
    except PatchbayError as exc:
        label = "config error" if isinstance(exc, ConfigError) else "error"
        err.print(f"[bold red]{label}:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(EXIT_USER) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
