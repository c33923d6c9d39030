"""Shared fixtures: real servers on 127.0.0.1, the shared data folder, the demo sources.

Tests that need PostgreSQL, MariaDB or ../shared skip with a reason when those are missing, and
fail instead when PATCHBAY_REQUIRE_SERVICES=1 (as .ci/run sets it), so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from support import BUILTIN_CONNECTORS, REQUIRED, ROOT, unavailable  # noqa: F401 (re-exported)

from patchbay.demo.generate import DemoFiles, generate


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = Path(os.environ.get("PATCHBAY_SHARED_DIR", ROOT.parent / "shared")).resolve()
    if not (path / "data").is_dir():
        unavailable(f"shared data folder not found at {path} (set PATCHBAY_SHARED_DIR)")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for this test session, dropped at the end."""
    if not _port_open(5432):
        unavailable("PostgreSQL is not running on 127.0.0.1:5432")
    pytest.importorskip("psycopg")
    base = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    schema = f"pb_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    """A fresh MariaDB database for this test session, dropped at the end."""
    if not _port_open(3306):
        unavailable("MariaDB is not running on 127.0.0.1:3306")
    pytest.importorskip("pymysql")
    name = f"pb_{uuid.uuid4().hex[:10]}"
    server = sa.create_engine("mysql+pymysql://root@127.0.0.1:3306/test")
    with server.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4"
    finally:
        with server.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE `{name}`"))
        server.dispose()


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> DemoFiles:
    """The demo's generated ERP database and CRM export (read-only for tests)."""
    return generate(tmp_path_factory.mktemp("demo-sources"))


@pytest.fixture
def demo_dir(tmp_path: Path, demo_files: DemoFiles) -> Path:
    """A private folder with the demo sources and config: a test may write state here."""
    import shutil

    shutil.copy(demo_files.erp, tmp_path / "erp.sqlite")
    shutil.copy(demo_files.crm_csv, tmp_path / "crm_contacts.csv")
    shutil.copy(ROOT / "examples" / "patchbay.yaml", tmp_path / "patchbay.yaml")
    return tmp_path
