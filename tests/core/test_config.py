from pathlib import Path
from typing import Any

import pytest
import yaml
from support import BUILTIN_CONNECTORS

from patchbay.config import load_config, load_config_data, mask_url
from patchbay.core.errors import ConfigError

INSTALLED = f"installed connectors: {', '.join(BUILTIN_CONNECTORS)}"


def base(**entity: Any) -> dict[str, Any]:
    contact = {
        "from": {"table": "CUSTOMERS"},
        "id": "CUST_NO",
        "fields": {"email": {"path": "EMAIL", "transform": "email"}},
    }
    contact.update(entity)
    return {
        "version": 1,
        "sources": {
            "erp": {
                "connector": "sql",
                "owner": "erp-team@acme.example",
                "settings": {"url": "sqlite:///erp.sqlite"},
                "entities": {"contact": contact},
            }
        },
    }


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "patchbay.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_valid_config_compiles_its_mappings(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, base()))
    mapping = config.sources["erp"].mappings["contact"]
    assert mapping.id_paths == ("CUST_NO",)
    assert config.spec.consumers["local"].trusted
    # A relative SQLite path is relative to the config file.
    assert config.state_url == f"sqlite:///{tmp_path / '.patchbay' / 'state.db'}"


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nsources:\n  erp: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "line 4" in str(info.value) or "line 3" in str(info.value)


def test_missing_file_says_how_to_give_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found.*--config"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (lambda d: d.update(version=2), "version", "Input should be 1"),
        (lambda d: d.update(sourcez={}), "sourcez", "unknown key"),
        (
            lambda d: d["sources"]["erp"].update(connector="oracle"),
            "sources.erp.connector",
            INSTALLED,
        ),
        (
            lambda d: d["sources"]["erp"]["settings"].update(ur="x"),
            "sources.erp.settings.ur",
            "unknown key",
        ),
        (
            lambda d: d["sources"]["erp"]["entities"].update(customer={"from": {}, "id": "X"}),
            "sources.erp.entities.customer",
            "unknown entity 'customer'; entities: company",
        ),
        (
            lambda d: d["sources"]["erp"]["entities"]["contact"]["fields"].update(mail="EMAIL"),
            "sources.erp.entities.contact.fields.mail",
            "unknown target 'mail'; targets:",
        ),
        (
            lambda d: d["sources"]["erp"]["entities"]["contact"]["fields"].update(
                phone={"path": "P", "transform": "fone"}
            ),
            "sources.erp.entities.contact.fields.phone.transform",
            "unknown transform 'fone'; transforms:",
        ),
        (
            lambda d: d["sources"]["erp"]["entities"]["contact"]["fields"].update(
                **{"address.planet": "X"}
            ),
            "sources.erp.entities.contact.fields.address.planet",
            "unknown target",
        ),
        (
            lambda d: d["sources"].update({"bad:name": d["sources"]["erp"]}),
            "sources",
            "must start with a letter",
        ),
        (
            lambda d: (
                d["sources"]["erp"]["defaults"].update(timezone="Mars/Base")
                if "defaults" in d["sources"]["erp"]
                else d["sources"]["erp"].update(defaults={"timezone": "Mars/Base"})
            ),
            "sources.erp.defaults.timezone",
            "unknown time zone 'Mars/Base'",
        ),
    ],
)
def test_config_errors_name_the_path(change: Any, path: str, message: str, tmp_path: Path) -> None:
    data = base()
    change(data)
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, data))
    text = str(info.value)
    assert str(tmp_path / "patchbay.yaml") in text
    assert path in text, text
    assert message in text, text


def test_required_canonical_fields_must_be_mapped(tmp_path: Path) -> None:
    data = base()
    data["sources"]["erp"]["entities"]["company"] = {
        "from": {"table": "CUSTOMERS"},
        "id": "CUST_NO",
        "fields": {"email": "EMAIL"},
    }
    with pytest.raises(ConfigError, match="company requires name"):
        load_config(write(tmp_path, data))


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    data = base()
    data["sources"]["erp"]["entities"]["contact"]["fields"].update(a="X", b="Y")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, data))
    assert "2 problems" in str(info.value)
    assert "fields.a" in str(info.value) and "fields.b" in str(info.value)


def test_env_and_file_secrets_are_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERP_PASSWORD", "s3cret-env")
    (tmp_path / "key.txt").write_text("s3cret-file\n")
    data = base()
    data["sources"]["erp"]["settings"]["password"] = "env:ERP_PASSWORD"
    data["secret_key"] = "file:key.txt"
    config = load_config(write(tmp_path, data))
    settings = config.sources["erp"].settings
    assert settings.password.get_secret_value() == "s3cret-env"  # type: ignore[attr-defined]
    assert "s3cret" not in repr(settings) and "s3cret" not in repr(config)
    assert config.secret_key == "s3cret-file"


def test_missing_secret_names_the_variable_not_a_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ERP_PASSWORD", raising=False)
    data = base()
    data["sources"]["erp"]["settings"]["password"] = "env:ERP_PASSWORD"
    with pytest.raises(
        ConfigError,
        match="sources.erp.settings.password: environment variable ERP_PASSWORD is not set",
    ):
        load_config(write(tmp_path, data))
    # validate does not need the secret to be there
    load_config(write(tmp_path, data), resolve_secrets=False)


def test_store_references_are_not_available_yet(tmp_path: Path) -> None:
    data = base()
    data["sources"]["erp"]["settings"]["password"] = "store:erp"
    with pytest.raises(ConfigError, match="credential store"):
        load_config(write(tmp_path, data))


def test_dict_configs_load_too() -> None:
    config = load_config_data(base())
    assert list(config.sources) == ["erp"]


def test_urls_are_masked() -> None:
    assert mask_url("postgresql://erp:pa:ss@db/erp") == "postgresql://erp:***@db/erp"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"


def test_an_unreadable_key_file_is_a_clear_error(tmp_path: Path) -> None:
    data = base()
    data["secret_key"] = "file:keys/patchbay.key"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, data))
    message = str(info.value)
    assert "secret_key" in message
    assert "cannot read secret file" in message
    assert "patchbay.key" in message
