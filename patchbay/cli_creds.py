"""``patchbay creds``: the encrypted credential store that ``store:NAME`` references read.

The store lives in the config's ``state`` database and is encrypted with ``secret_key`` (and
decrypted with ``previous_secret_keys`` too, during a key rotation). Secrets never come from the
command line, where shell history and ``ps`` would keep them: ``set`` reads stdin when it is piped,
and otherwise prompts without echo, twice. No command prints a secret.

Exit codes are those of ``patchbay`` (``patchbay.cli``): 2 when the config or the command is
wrong, 4 when the credential does not exist.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from patchbay.config import Config, StoreOpener, load_config
from patchbay.core.errors import ConfigError, PatchbayError

if TYPE_CHECKING:
    from patchbay.auth.store import CredentialStore

__all__ = ["creds_app"]

EXIT_USER, EXIT_NOT_FOUND = 2, 4
T = TypeVar("T")

creds_app = typer.Typer(
    help="Secrets in the encrypted credential store (store:NAME references).",
    no_args_is_help=True,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

Tenant = Annotated[
    str, typer.Option("--tenant", "-t", help="The tenant; the default tenant when not given.")
]


def _friendly(fn: Callable[..., T]) -> Callable[..., T]:
    """User errors print one clear line (no traceback) and exit 2, as in ``patchbay.cli``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except PatchbayError as exc:
            label = "config error" if isinstance(exc, ConfigError) else "error"
            err.print(f"[bold red]{label}:[/] {exc}", markup=True, highlight=False)
            raise typer.Exit(EXIT_USER) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def _config() -> Config:
    from patchbay.cli import state  # the --config option of the main command

    # Secrets are not resolved: the store must open even before its first credential is set.
    return load_config(state.config_path, resolve_secrets=False)


def _opener(config: Config) -> StoreOpener:
    return StoreOpener(config.spec, base_dir=config.base_dir, file=config.file)


def _store(opener: StoreOpener) -> CredentialStore:
    return opener("secret_key")


def _label(name: str, tenant: str) -> str:
    return f"{name!r} for tenant {tenant!r}" if tenant else repr(name)


def _read_secret() -> str:
    if sys.stdin is not None and not sys.stdin.isatty():
        secret = sys.stdin.read()
        secret = secret[:-1] if secret.endswith("\n") else secret
        return secret[:-1] if secret.endswith("\r") else secret
    return str(typer.prompt("secret", hide_input=True, confirmation_prompt=True, err=True))


@creds_app.command("set")
@_friendly
def creds_set(name: str, tenant: Tenant = "") -> None:
    """Store a secret under NAME, read from stdin when piped, else prompted for (never argv).

    One trailing newline is stripped from piped input.
    """
    config = _config()
    secret = _read_secret()
    if not secret:
        err.print("error: the secret is empty (pipe it on stdin, or type it at the prompt)")
        raise typer.Exit(EXIT_USER)
    with _opener(config) as opener:
        _store(opener).set(name, secret, tenant)
    err.print(f"stored credential {_label(name, tenant)}", highlight=False)


@creds_app.command("list")
@_friendly
def creds_list() -> None:
    """List stored credentials: name, tenant and when each was last set (never a secret)."""
    with _opener(_config()) as opener:
        entries = _store(opener).list()
    table = Table("name", "tenant", "updated")
    for name, tenant, updated in entries:
        table.add_row(name, tenant or "(default)", updated.isoformat(timespec="seconds"))
    out.print(table)
    err.print(f"{len(entries)} credentials", highlight=False)


@creds_app.command("delete")
@_friendly
def creds_delete(
    name: str,
    tenant: Tenant = "",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete the credential NAME (of one tenant)."""
    with _opener(_config()) as opener:
        store = _store(opener)
        if not yes and not typer.confirm(f"delete credential {_label(name, tenant)}?", err=True):
            raise typer.Exit(0)
        if not store.delete(name, tenant):
            err.print(f"error: no credential {_label(name, tenant)}", highlight=False)
            raise typer.Exit(EXIT_NOT_FOUND)
    err.print(f"deleted credential {_label(name, tenant)}", highlight=False)


@creds_app.command("rotate-key")
@_friendly
def creds_rotate_key() -> None:
    """Re-encrypt every credential with the current secret_key.

    Put the old key in previous_secret_keys first (workers configured so read both), run this,
    then remove previous_secret_keys.
    """
    with _opener(_config()) as opener:
        keys = opener.keys("secret_key")
        rotated = _store(opener).rotate(keys)
    err.print(
        f"rotated {rotated} credentials to the current secret_key; once every worker runs with "
        "it, previous_secret_keys can be removed",
        highlight=False,
    )
