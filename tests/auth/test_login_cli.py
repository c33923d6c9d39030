"""`patchbay auth login SOURCE`: the one-time authorization code + PKCE sign-in from the CLI."""
# ruff: noqa: F811 - pytest fixtures imported from auth_fixtures are parameters here

from __future__ import annotations

import json
import webbrowser
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import yaml
from auth_fixtures import auth_server, server, state  # noqa: F401 - fixtures
from oauth_test_server import AuthServer, State
from typer.testing import CliRunner

from patchbay.auth.store import CredentialStore
from patchbay.cli import app

SECRET_KEY = "login-cli-secret-key-0123456789abcdef"


def write_config(tmp_path: Path, server: AuthServer, state: State, **extra: object) -> Path:
    data = {
        "version": 1,
        "state": "sqlite:///state.db",
        "secret_key": "env:PB_LOGIN_KEY",
        "sources": {"crm": {
            "connector": "files", "owner": "crm-team@acme.example",
            "auth": {"scheme": "oauth2_authorization_code",
                     "authorize_url": f"{server.url}/authorize",
                     "token_url": state.token_url, "client_id": "app", "scope": "read"},
            "entities": {},
        }},
        **extra,
    }
    path = tmp_path / "patchbay.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def follow(url: str, *args: object, **kwargs: object) -> bool:
    """Stands in for the user's browser: open the sign-in page, follow to the loopback server."""
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        return browser.get(url).status_code == 200


def test_login_stores_the_tokens_encrypted(
    server: AuthServer, state: State, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PB_LOGIN_KEY", SECRET_KEY)
    monkeypatch.setattr(webbrowser, "open", follow)  # the person's browser, not patchbay
    config = write_config(tmp_path, server, state)
    result = CliRunner().invoke(app, ["--config", str(config), "auth", "login", "crm"])
    assert result.exit_code == 0, result.output
    assert "sign in to crm at:" in result.stderr
    assert "crm: signed in" in result.stderr
    assert state.grants == {"authorization_code": 1}
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        stored = json.loads(CredentialStore(engine, [SECRET_KEY]).get("token.crm"))
    finally:
        engine.dispose()
    assert stored["access_token"]
    assert stored["refresh_token"]
    assert stored["refresh_token"].encode() not in (tmp_path / "state.db").read_bytes()


def test_login_needs_the_right_scheme_and_a_secret_key(
    server: AuthServer, state: State, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PB_LOGIN_KEY", raising=False)
    config = write_config(tmp_path, server, state)
    data = yaml.safe_load(config.read_text())
    del data["secret_key"]
    config.write_text(yaml.safe_dump(data))
    runner = CliRunner()
    result = runner.invoke(app, ["--config", str(config), "auth", "login", "crm"])
    assert result.exit_code == 2
    assert "needs secret_key" in result.stderr
    data["sources"]["crm"]["auth"] = {"scheme": "bearer", "token": "x"}
    config.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["--config", str(config), "auth", "login", "crm"])
    assert result.exit_code == 2
    assert "does not use scheme oauth2_authorization_code" in result.stderr
    result = runner.invoke(app, ["--config", str(config), "auth", "login", "erp"])
    assert result.exit_code == 2
    assert "unknown source 'erp'" in result.stderr
