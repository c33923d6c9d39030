"""The encrypted credential store, on SQLite and PostgreSQL, with ``store:`` references in the
config and the ``patchbay creds`` commands."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from patchbay.auth.store import CredentialNotFound, CredentialStore, StoreError
from patchbay.cli import app
from patchbay.config import load_config
from patchbay.core.errors import ConfigError

OLD, NEW = "old-secret-key-0123456789abcdef", "new-secret-key-fedcba9876543210"
SECRET = f"pb-secret-{uuid.uuid4().hex}"  # unique, so a scan cannot match by chance
WRONG_KEY = (
    "credential 'crm' cannot be decrypted with the configured secret_key: was it rotated? "
    "give the old key in previous_secret_keys"
)


def _empty(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        if sa.inspect(conn).has_table("patchbay_credentials"):
            conn.execute(sa.text("DELETE FROM patchbay_credentials"))


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    _empty(engine)
    yield url
    _empty(engine)
    engine.dispose()


@pytest.fixture
def engine(url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def other(url: str) -> Iterator[sa.Engine]:
    """A second engine on the same database: another worker."""
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()


def test_round_trip_and_replace(engine: sa.Engine) -> None:
    store = CredentialStore(engine, [NEW])
    store.set("crm", SECRET)
    assert store.get("crm") == SECRET
    store.set("crm", "ünïcode ✓")
    assert store.get("crm") == "ünïcode ✓"
    assert store.delete("crm") is True
    assert store.delete("crm") is False
    with pytest.raises(CredentialNotFound, match="no credential 'crm'"):
        store.get("crm")


def test_tenants_have_their_own_credentials_and_no_fallback(engine: sa.Engine) -> None:
    store = CredentialStore(engine, [NEW])
    store.set("crm", "default-secret")
    store.set("crm", "acme-secret", tenant="acme")
    assert store.get("crm") == "default-secret"
    assert store.get("crm", "acme") == "acme-secret"
    with pytest.raises(CredentialNotFound, match="'crm' for tenant 'globex'") as info:
        store.get("crm", "globex")
    assert "default-secret" not in str(info.value)
    store.delete("crm")
    assert store.get("crm", "acme") == "acme-secret"
    with pytest.raises(CredentialNotFound):
        store.get("crm")


def test_list_never_shows_a_secret(engine: sa.Engine) -> None:
    store = CredentialStore(engine, [NEW])
    store.set("erp", SECRET)
    store.set("crm", SECRET, tenant="acme")
    store.set("crm", SECRET)
    entries = store.list()
    assert [(name, tenant) for name, tenant, _ in entries] == [
        ("crm", ""),
        ("crm", "acme"),
        ("erp", ""),
    ]
    assert all(updated.tzinfo is not None for _, _, updated in entries)
    assert SECRET not in repr(entries)
    assert NEW not in repr(store) and "keys=1" in repr(store)


def test_bad_names_are_refused(engine: sa.Engine) -> None:
    store = CredentialStore(engine, [NEW])
    with pytest.raises(StoreError, match="credential name"):
        store.set("a b", SECRET)
    with pytest.raises(StoreError, match="tenant"):
        store.set("crm", SECRET, tenant="@x")
    with pytest.raises(StoreError, match="empty"):
        store.set("crm", "")
    with pytest.raises(StoreError, match="needs secret_key"):
        CredentialStore(engine, [])


def test_a_wrong_key_is_a_clear_error(engine: sa.Engine, other: sa.Engine) -> None:
    CredentialStore(engine, [OLD]).set("crm", SECRET)
    with pytest.raises(StoreError) as info:
        CredentialStore(other, [NEW]).get("crm")
    assert str(info.value) == WRONG_KEY
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert SECRET not in str(info.value) and NEW not in str(info.value)


def test_rotation_without_downtime(engine: sa.Engine, other: sa.Engine, url: str) -> None:
    writer = CredentialStore(engine, [OLD])
    names = [f"source-{i}" for i in range(40)]
    for name in names:
        writer.set(name, f"{SECRET}-{name}")
    writer.set("crm", SECRET, tenant="acme")

    # Every worker is deployed with [NEW, OLD]; one of them rotates while another reads.
    reader = CredentialStore(other, [NEW, OLD])
    failures: list[BaseException] = []
    reads = 0
    done = threading.Event()

    def read() -> None:
        nonlocal reads
        while not done.is_set():
            try:
                for name in names:
                    assert reader.get(name) == f"{SECRET}-{name}"
                    reads += 1
            except BaseException as exc:  # reported below
                failures.append(exc)
                return

    thread = threading.Thread(target=read)
    thread.start()
    try:
        assert CredentialStore(engine, [NEW, OLD]).rotate([NEW, OLD]) == len(names) + 1
    finally:
        done.set()
        thread.join()
    assert failures == []
    assert reads > 0
    assert reader.get("crm", "acme") == SECRET  # after, with [NEW, OLD]

    fresh = sa.create_engine(url)
    try:
        only_new = CredentialStore(fresh, [NEW])
        assert [only_new.get(n) for n in names] == [f"{SECRET}-{n}" for n in names]
        assert only_new.get("crm", "acme") == SECRET
        with pytest.raises(StoreError) as info:
            CredentialStore(fresh, [OLD]).get("crm", "acme")
        assert "'crm' for tenant 'acme' cannot be decrypted" in str(info.value)
        assert "previous_secret_keys" in str(info.value)
    finally:
        fresh.dispose()


def test_rotation_is_all_or_nothing(engine: sa.Engine) -> None:
    CredentialStore(engine, [OLD]).set("a", "one")
    CredentialStore(engine, ["a-key-nobody-has-any-more-012345"]).set("b", "two")
    store = CredentialStore(engine, [OLD])
    with pytest.raises(StoreError, match="'b' cannot be decrypted"):
        store.rotate([NEW, OLD])
    assert store.get("a") == "one"  # still under OLD: nothing was rotated
    with pytest.raises(StoreError):
        CredentialStore(engine, [NEW]).get("a")


def test_the_plaintext_never_reaches_the_database(engine: sa.Engine, url: str) -> None:
    store = CredentialStore(engine, [NEW])
    store.set("crm", SECRET)
    store.set("crm", SECRET, tenant="acme")
    store.rotate([OLD, NEW])
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM patchbay_credentials")).all()
    assert len(rows) == 2
    assert SECRET not in repr(rows)
    if url.startswith("sqlite"):
        engine.dispose()
        data = b"".join(p.read_bytes() for p in Path(url[len("sqlite:///") :]).parent.iterdir())
        assert b"patchbay_credentials" in data
        assert SECRET.encode() not in data
        assert NEW.encode() not in data and OLD.encode() not in data
    else:
        with engine.connect() as conn:
            dump = conn.execute(sa.text("SELECT t::text FROM patchbay_credentials t")).scalars()
            text = "\n".join(dump)
        assert "crm" in text
        assert SECRET not in text and NEW not in text and OLD not in text


# --- store: references in the config ----------------------------------------------------------


def _config(
    tmp_path: Path, password: str, *, secret_key: bool = True, previous: bool = False
) -> Path:
    lines = ["version: 1", 'state: "sqlite:///state/state.db"']
    if secret_key:
        lines.append('secret_key: "env:PB_TEST_KEY"')
    if previous:
        lines.append('previous_secret_keys: ["env:PB_TEST_OLD_KEY"]')
    lines += [
        "sources:",
        "  erp:",
        "    connector: sql",
        "    settings:",
        '      url: "sqlite:///erp.sqlite"',
        f'      password: "{password}"',
    ]
    path = tmp_path / "patchbay.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _state_store(tmp_path: Path, keys: list[str]) -> tuple[sa.Engine, CredentialStore]:
    (tmp_path / "state").mkdir(exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state' / 'state.db'}")
    return engine, CredentialStore(engine, keys)


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PB_TEST_KEY", NEW)
    monkeypatch.setenv("PB_TEST_OLD_KEY", OLD)


@pytest.mark.usefixtures("keys")
def test_store_references_are_resolved_by_load_config(tmp_path: Path) -> None:
    engine, store = _state_store(tmp_path, [NEW])
    store.set("erp-db", SECRET)
    store.set("erp-db", "acme-password", tenant="acme")
    engine.dispose()

    config = load_config(_config(tmp_path, "store:erp-db"))
    assert config.sources["erp"].settings.password.get_secret_value() == SECRET  # type: ignore[attr-defined]
    config = load_config(_config(tmp_path, "store:erp-db@acme"))
    assert config.sources["erp"].settings.password.get_secret_value() == "acme-password"  # type: ignore[attr-defined]
    assert SECRET not in repr(config)


@pytest.mark.usefixtures("keys")
def test_a_missing_credential_names_the_reference_and_the_command(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_config(tmp_path, "store:erp-db"))
    assert info.value.path == "sources.erp.settings.password"
    assert "'store:erp-db'" in info.value.message
    assert "patchbay creds set erp-db" in info.value.message
    with pytest.raises(ConfigError, match="patchbay creds set erp-db --tenant acme"):
        load_config(_config(tmp_path, "store:erp-db@acme"))


def test_a_store_reference_without_secret_key_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_config(tmp_path, "store:erp-db", secret_key=False))
    assert info.value.path == "sources.erp.settings.password"
    assert "needs secret_key" in info.value.message
    assert "secret_key: env:PATCHBAY_SECRET_KEY" in info.value.message


@pytest.mark.usefixtures("keys")
def test_a_rotated_key_needs_previous_secret_keys(tmp_path: Path) -> None:
    engine, store = _state_store(tmp_path, [OLD])
    store.set("erp-db", SECRET)
    engine.dispose()
    with pytest.raises(ConfigError, match="give the old key in previous_secret_keys") as info:
        load_config(_config(tmp_path, "store:erp-db"))
    assert SECRET not in str(info.value) and NEW not in str(info.value)
    config = load_config(_config(tmp_path, "store:erp-db", previous=True))
    assert config.sources["erp"].settings.password.get_secret_value() == SECRET  # type: ignore[attr-defined]


def test_validate_does_not_touch_the_store(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, "store:erp-db", secret_key=False), resolve_secrets=False)
    assert "erp" in config.sources
    assert not (tmp_path / "state").exists()
    result = CliRunner().invoke(
        app, ["--config", str(tmp_path / "patchbay.yaml"), "config", "validate"]
    )
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "state").exists()


def test_secret_key_cannot_come_from_the_store(tmp_path: Path) -> None:
    path = _config(tmp_path, "plain")
    path.write_text(path.read_text().replace("env:PB_TEST_KEY", "store:key"), encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot come from the credential store") as info:
        load_config(path)
    assert info.value.path == "secret_key"


# --- patchbay creds ----------------------------------------------------------------------------

runner = CliRunner()


def creds(tmp_path: Path, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(
        app, ["--config", str(tmp_path / "patchbay.yaml"), "creds", *args], input=input
    )


def test_set_takes_no_secret_from_argv() -> None:
    group = typer.main.get_command(app)
    command = group.commands["creds"].commands["set"]  # type: ignore[attr-defined]
    assert {p.name for p in command.params} == {"name", "tenant"}
    result = runner.invoke(app, ["creds", "set", "crm", SECRET])
    assert result.exit_code == 2  # an extra argument is a usage error


@pytest.mark.usefixtures("keys")
def test_creds_commands(tmp_path: Path) -> None:
    _config(tmp_path, "store:erp-db")
    result = creds(tmp_path, "set", "erp-db", input=SECRET + "\n")
    assert result.exit_code == 0, result.output
    assert "stored credential 'erp-db'" in result.stderr
    result = creds(tmp_path, "set", "erp-db", "--tenant", "acme", input="acme-password")
    assert result.exit_code == 0, result.output

    config = load_config(tmp_path / "patchbay.yaml")  # the newline was stripped
    assert config.sources["erp"].settings.password.get_secret_value() == SECRET  # type: ignore[attr-defined]

    result = creds(tmp_path, "list")
    assert result.exit_code == 0, result.output
    assert "erp-db" in result.stdout and "acme" in result.stdout
    assert "(default)" in result.stdout
    assert "2 credentials" in result.stderr

    result = creds(tmp_path, "delete", "erp-db", "--tenant", "acme", "--yes")
    assert result.exit_code == 0, result.output
    result = creds(tmp_path, "delete", "erp-db", "--tenant", "acme", "--yes")
    assert result.exit_code == 4
    assert "no credential 'erp-db' for tenant 'acme'" in result.stderr
    result = creds(tmp_path, "delete", "erp-db", input="n\n")
    assert result.exit_code == 0
    assert "1 credentials" in creds(tmp_path, "list").stderr

    result = creds(tmp_path, "set", "erp-db", input="")
    assert result.exit_code == 2
    assert "empty" in result.stderr

    for result in [creds(tmp_path, "list")]:
        assert SECRET not in result.output and "acme-password" not in result.output


@pytest.mark.usefixtures("keys")
def test_rotate_key_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _config(tmp_path, "store:erp-db", previous=True)
    monkeypatch.setenv("PB_TEST_KEY", OLD)
    assert creds(tmp_path, "set", "erp-db", input=SECRET).exit_code == 0
    assert creds(tmp_path, "set", "crm", "-t", "acme", input=SECRET).exit_code == 0

    monkeypatch.setenv("PB_TEST_KEY", NEW)  # the new key, the old one in previous_secret_keys
    result = creds(tmp_path, "rotate-key")
    assert result.exit_code == 0, result.output
    assert "rotated 2 credentials" in result.stderr
    assert SECRET not in result.output and NEW not in result.output

    engine, store = _state_store(tmp_path, [NEW])
    try:
        assert store.get("erp-db") == SECRET
        assert store.get("crm", "acme") == SECRET
    finally:
        engine.dispose()


def test_creds_without_secret_key_is_one_line(tmp_path: Path) -> None:
    _config(tmp_path, "plain", secret_key=False)
    result = creds(tmp_path, "set", "erp-db", input=SECRET)
    assert result.exit_code == 2
    assert "secret_key" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert SECRET not in result.output
