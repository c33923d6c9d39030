"""A real Tryton server (JSON-RPC, SQLite) for the connector tests, built once and reused.

Cold (a clean clone): a virtual environment in ``.patchbay/tryton/venv`` (gitignored) with
trytond 8.0 and its party, company, currency, product, account, account_invoice and sale modules,
``trytond-admin`` to create the database, then the demo data of the shared Tryton recipe
(``<shared>/notes/tryton/populate.py``, run with that venv's Python: the data NOTES.md
documents, with stable ids, is what the tests count against). Each step leaves a marker, so a
second run only copies the pristine database and starts the server.

Every test session gets its own copy of the database (tests log in, fail logins on purpose and
kill sessions, none of which may leak into the next run) and its own server on a free port of
127.0.0.1, stopped by its PID at the end. No Tryton, no network for pip, no shared folder:
``unavailable(...)`` (a skip here, a failure in CI).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from support import ROOT, unavailable

SERIES = "8.0"
MODULES = ("party", "company", "currency", "product", "account", "account_invoice", "sale")
HOME = ROOT / ".patchbay" / "tryton"
DATABASE = "tryton"
ADMIN_PASSWORD = "admin-demo-pw"
USER = "connector"
PASSWORD = "connector-demo-pw"
_PIP_TIMEOUT = 600
_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class TrytonServer:
    url: str  # the server root, e.g. http://127.0.0.1:40123
    database: str
    db_file: Path  # this session's copy of the database (tests may kill sessions in it)
    log: Path


def _config(db_dir: Path) -> str:
    # No [web] listen and no [session]: the environment (TRYTOND_WEB__LISTEN, ...) sets those,
    # and a line in this file would win over it.
    return f"[database]\nuri = sqlite://\npath = {db_dir}\nlist = True\n\n[web]\nroot =\n"


def _run(command: list[str], log: Path, what: str, env: dict[str, str] | None = None,
         timeout: float = _PIP_TIMEOUT) -> None:
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        try:
            subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=True,
                           timeout=timeout, env=env)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            tail = "".join(log.read_text(errors="replace").splitlines(True)[-15:])
            unavailable(f"cannot build the Tryton test server: {what} failed ({exc}); "
                        f"see {log}:\n{tail}")


def _build(home: Path, recipe: Path) -> Path:
    """The pristine populated database, built (under a lock) if it is not there yet."""
    home.mkdir(parents=True, exist_ok=True)
    log = home / "build.log"
    venv = home / "venv"
    db_dir = home / "db"
    pristine = db_dir / f"{DATABASE}.sqlite"
    with (home / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two sessions building at once would clash
        marker = venv / f".series-{SERIES}"
        if not marker.exists():
            shutil.rmtree(venv, ignore_errors=True)
            (home / ".populated").unlink(missing_ok=True)
            _run([sys.executable, "-m", "venv", str(venv)], log, "creating the venv")
            packages = [f"trytond=={SERIES}.*", f"proteus=={SERIES}.*"]
            packages += [f"trytond_{module}=={SERIES}.*" for module in MODULES]
            _run([str(venv / "bin" / "pip"), "install", "--quiet",
                  "--disable-pip-version-check", *packages], log, "pip install trytond")
            marker.touch()
        if not (home / ".populated").exists() or not pristine.exists():
            db_dir.mkdir(exist_ok=True)
            conf = home / "trytond.conf"
            conf.write_text(_config(db_dir))
            passfile = home / "admin.pass"
            passfile.write_text(ADMIN_PASSWORD + "\n")
            pristine.unlink(missing_ok=True)
            pristine.touch()  # the SQLite backend will not create the file
            env = {**os.environ, "TRYTONPASSFILE": str(passfile)}
            try:
                _run([str(venv / "bin" / "trytond-admin"), "-c", str(conf), "-d", DATABASE,
                      "-u", *MODULES, "--activate-dependencies", "--email",
                      "admin@example.com"], log, "trytond-admin", env=env)
                _run([str(venv / "bin" / "python"), str(recipe), "--config", str(conf),
                      "--database", DATABASE], log, "populate.py")
            except BaseException:
                pristine.unlink(missing_ok=True)  # half-built: start over next time
                raise
            (home / ".populated").touch()
    return pristine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    body = {"id": 0, "method": "common.server.version", "params": []}
    try:
        return "result" in httpx.post(f"{url}/rpc/", json=body, timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return False


@contextlib.contextmanager
def run_server(home: Path, pristine: Path, run_dir: Path,
               **settings: str) -> Iterator[TrytonServer]:
    """A server on a copy of the pristine database. ``settings``: TRYTOND_* variables, e.g.
    ``TRYTOND_SESSION__MAX_AGE="3"``."""
    db_dir = run_dir / "db"
    db_dir.mkdir(parents=True)
    db_file = db_dir / pristine.name
    shutil.copy(pristine, db_file)
    conf = run_dir / "trytond.conf"
    conf.write_text(_config(db_dir))
    log = run_dir / "trytond.log"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRYTOND_")}
    env.update(settings, TRYTOND_WEB__LISTEN=f"127.0.0.1:{port}")
    with log.open("a") as out:
        process = subprocess.Popen(
            [str(home / "venv" / "bin" / "trytond"), "-c", str(conf), "-d", DATABASE],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = "".join(log.read_text(errors="replace").splitlines(True)[-15:])
                unavailable(f"the Tryton test server did not start (see {log}):\n{tail}")
            time.sleep(0.2)
        yield TrytonServer(url, DATABASE, db_file, log)
    finally:
        process.terminate()  # this PID only
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def tryton_home(shared_dir: Path) -> tuple[Path, Path]:
    """``(home, pristine database)``, built on first use."""
    recipe = shared_dir / "notes" / "tryton" / "populate.py"
    if not recipe.is_file():
        unavailable(f"the Tryton recipe is missing: {recipe} (set PATCHBAY_SHARED_DIR)")
    return HOME, _build(HOME, recipe)


@pytest.fixture(scope="session")
def tryton_server(tryton_home: tuple[Path, Path],
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrytonServer]:
    home, pristine = tryton_home
    with run_server(home, pristine, tmp_path_factory.mktemp("tryton")) as server:
        yield server
