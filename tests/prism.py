"""The Stoplight Prism mock server for contract tests: serve a published OpenAPI spec on 127.0.0.1.

Prism answers every request from the spec and validates it first (auth scheme, required headers,
parameter types and formats). It does not obey request values (``page`` or ``$top`` change
nothing), so these tests check that a connector's requests are *valid*; semantics are tested
against handler apps.

How a verdict is recorded: Prism sits behind a small recording proxy on 127.0.0.1, and the URL a
test gets is the proxy's. For every request the proxy keeps the method, the exact target, Prism's
status and Prism's own violation report (the ``sl-violations`` header and, for the
``application/problem+json`` errors Prism generates, the body's ``validation`` list). The record is
written before the response goes back, so it is complete the moment the client has its answer,
and it is exact per request even when a connector sends requests concurrently. (Parsing Prism's
log instead loses the query string and cannot attribute interleaved lines to requests.) Prism's
log is still kept in a file and quoted when something goes wrong.

Installing: Prism comes from npm (``@stoplight/prism-cli`` at ``PRISM_VERSION``) into
``.patchbay/node`` of the checkout (gitignored; ``PATCHBAY_PRISM_DIR`` overrides), once, under a
file lock so parallel test processes don't install twice; an install that is already there is
reused. Without node/npm, or when the install fails, the test calls ``unavailable`` (skips on a
laptop, fails when ``PATCHBAY_REQUIRE_SERVICES=1``).

Use::

    with prism_server(spec) as url: ...          # a private Prism, stopped when the block ends
    with PrismMock(spec) as mock: ...             # the same, with the verdicts
    mock = shared_prism(spec)                     # one Prism per spec per test session
    mock = shared_prism(spec, "-d", "--seed", "42")   # options of ``prism mock``
    mock.reset(); ...; mock.assert_no_violations()

Each Prism runs in its own process group and is stopped by that group's id: nothing else is
touched.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from servers import Server, free_port
from support import ROOT, unavailable

__all__ = ["PRISM_VERSION", "Exchange", "PrismMock", "prism_binary", "prism_server", "shared_prism"]

PRISM_VERSION = "5.14.2"
# Xero's spec takes ~18 s to load on an idle machine; CI shares two cores with other work.
START_TIMEOUT = 180.0
INSTALL_TIMEOUT = 600.0
_READY_LINE = "Prism is listening on"
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length",
               "content-encoding", "host"}


@dataclass(frozen=True)
class Exchange:
    """One request as Prism judged it."""

    method: str
    target: str  # path and query exactly as sent
    headers: dict[str, str]  # lower-cased names; Authorization's value redacted
    status: int
    violations: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.status < 400 and not self.violations

    def __str__(self) -> str:
        verdict = "; ".join(self.violations) or "no violation"
        return f"{self.method} {self.target} -> {self.status} ({verdict})"


def _violations(response: httpx.Response) -> tuple[str, ...]:
    found: list[Any] = []
    header = response.headers.get("sl-violations")
    if header:
        with contextlib.suppress(ValueError):
            found.extend(json.loads(header))
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        with contextlib.suppress(ValueError):
            body = response.json()
            found.extend(body.get("validation") or [body.get("title", "problem")])
    out: list[str] = []
    for item in found:
        if isinstance(item, dict):
            where = ".".join(str(part) for part in item.get("location", []))
            text = f"{where}: {item.get('message', item)}" if where else str(item.get("message"))
        else:
            text = str(item)
        if text not in out:
            out.append(text)
    return tuple(out)


class _RecordingProxy:
    """An ASGI app that forwards to Prism and records each exchange before answering."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self._client = httpx.AsyncClient(timeout=120)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self._client is not None:
                        await self._client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert scope["type"] == "http" and self._client is not None
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        target = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]
                   if k.decode("latin-1").lower() not in _HOP_BY_HOP]
        response = await self._client.request(
            scope["method"], httpx.URL(self.upstream + target), headers=headers, content=body)
        seen = {k.lower(): ("<redacted>" if k.lower() == "authorization" else v)
                for k, v in headers}  # a record may be printed: never keep the credential
        exchange = Exchange(scope["method"], target, seen, response.status_code,
                            _violations(response))
        with self._lock:
            self.exchanges.append(exchange)
        out_headers = [(k.encode("latin-1"), v.encode("latin-1"))
                       for k, v in response.headers.multi_items()
                       if k.lower() not in _HOP_BY_HOP]
        out_headers.append((b"content-length", str(len(response.content)).encode()))
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": out_headers})
        await send({"type": "http.response.body", "body": response.content})


def _prism_dir() -> Path:
    return Path(os.environ.get("PATCHBAY_PRISM_DIR", ROOT / ".patchbay" / "node"))


def _installed_version(prefix: Path) -> str | None:
    package = prefix / "node_modules" / "@stoplight" / "prism-cli" / "package.json"
    binary = prefix / "node_modules" / ".bin" / "prism"
    if not (package.is_file() and binary.exists()):
        return None
    with contextlib.suppress(ValueError, OSError):
        return str(json.loads(package.read_text())["version"])
    return None


def prism_binary() -> Path:
    """Prism's executable, installed on first use; ``unavailable`` when that cannot be done."""
    prefix = _prism_dir()
    binary = prefix / "node_modules" / ".bin" / "prism"
    if _installed_version(prefix) == PRISM_VERSION:
        return binary
    if shutil.which("node") is None or shutil.which("npm") is None:
        unavailable("Node.js and npm are needed to run the Prism mock server (not on PATH)")
    prefix.mkdir(parents=True, exist_ok=True)
    with open(prefix.parent / "prism-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be installing right now
        if _installed_version(prefix) != PRISM_VERSION:
            try:
                result = subprocess.run(
                    ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(prefix),
                     f"@stoplight/prism-cli@{PRISM_VERSION}"],
                    capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)
            except subprocess.TimeoutExpired:
                unavailable(f"npm install of Prism {PRISM_VERSION} timed out")
            if result.returncode != 0 or _installed_version(prefix) != PRISM_VERSION:
                tail = (result.stderr or result.stdout).strip()[-1500:]
                unavailable(f"npm could not install Prism {PRISM_VERSION} into {prefix}: {tail}")
    return binary


def _log_tail(log: Path, chars: int = 3000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@dataclass
class PrismMock:
    """A running Prism behind a recording proxy. Use as a context manager or ``start``/``stop``."""

    spec: Path
    options: tuple[str, ...] = ()  # more ``prism mock`` options, e.g. ("-d", "--seed", "42")
    url: str = ""
    log: Path = field(init=False)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _proxy: _RecordingProxy | None = field(default=None, init=False, repr=False)
    _server: Server | None = field(default=None, init=False, repr=False)
    _workdir: str = field(default="", init=False, repr=False)

    @property
    def exchanges(self) -> list[Exchange]:
        assert self._proxy is not None, "Prism is not running"
        with self._proxy._lock:
            return list(self._proxy.exchanges)

    def reset(self) -> None:
        """Forget what was recorded so far (a shared Prism serves many tests)."""
        assert self._proxy is not None, "Prism is not running"
        with self._proxy._lock:
            self._proxy.exchanges.clear()

    def violations(self) -> list[Exchange]:
        return [exchange for exchange in self.exchanges if not exchange.ok]

    def assert_no_violations(self, *, at_least: int = 1) -> list[Exchange]:
        """Every recorded request passed Prism's checks, and there were ``at_least`` of them."""
        seen = self.exchanges
        bad = [exchange for exchange in seen if not exchange.ok]
        assert not bad, "Prism rejected requests:\n" + "\n".join(map(str, bad))
        assert len(seen) >= at_least, f"expected at least {at_least} requests, Prism saw {seen}"
        return seen

    def start(self) -> PrismMock:
        binary = prism_binary()
        if not self.spec.is_file():
            unavailable(f"OpenAPI spec not found: {self.spec}")
        self._workdir = tempfile.mkdtemp(prefix="prism-")
        self.log = Path(self._workdir) / "prism.log"
        for _attempt in range(3):  # the free port may be taken before Prism binds it
            port = free_port()
            if self._launch(binary, port):
                break
        else:
            raise RuntimeError(f"Prism did not start for {self.spec}:\n{_log_tail(self.log)}")
        self._proxy = _RecordingProxy(f"http://127.0.0.1:{port}")
        self._server = Server(self._proxy).__enter__()
        self.url = self._server.url
        return self

    def _launch(self, binary: Path, port: int) -> bool:
        with open(self.log, "wb") as out:
            self._process = subprocess.Popen(
                [str(binary), "mock", *self.options, "-h", "127.0.0.1", "-p", str(port),
                 str(self.spec)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)  # its own process group, stopped by id in stop()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if _READY_LINE in _log_tail(self.log, 100_000):
                return True
            if self._process.poll() is not None:
                return False
            time.sleep(0.2)
        self._kill()
        raise RuntimeError(f"Prism did not listen within {START_TIMEOUT:.0f} s for {self.spec}:"
                           f"\n{_log_tail(self.log)}")

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def stop(self) -> None:
        if self._server is not None:
            self._server.__exit__(None, None, None)
            self._server = None
        self._kill()
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = ""

    def __enter__(self) -> PrismMock:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def prism_server(spec_path: Path, *options: str) -> Iterator[str]:
    """Serve ``spec_path`` with a private Prism; yields the base URL (paths from the root).

    For the verdicts, use ``PrismMock(spec)`` as the context manager instead (same behaviour,
    yields the mock with ``url``, ``exchanges`` and ``assert_no_violations``)."""
    with PrismMock(Path(spec_path).resolve(), options) as mock:
        yield mock.url


_shared: dict[tuple[Path, tuple[str, ...]], PrismMock] = {}
_shared_lock = threading.Lock()


def shared_prism(spec_path: Path, *options: str) -> PrismMock:
    """The session's Prism for ``spec_path`` (and ``options``): started on first use, stopped
    when pytest exits.

    Call ``reset()`` before a test's requests: earlier tests' exchanges are still recorded."""
    key = (Path(spec_path).resolve(), options)
    with _shared_lock:
        mock = _shared.get(key)
        if mock is None:
            mock = PrismMock(*key).start()
            _shared[key] = mock
        return mock


@atexit.register
def _stop_shared() -> None:
    for mock in _shared.values():
        mock.stop()
    _shared.clear()
