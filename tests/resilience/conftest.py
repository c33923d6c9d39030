"""Fixtures of the resilience tests: the fault server (one per session, reset per test), a clock."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from resilience_faults import FakeClock, FaultServer


@pytest.fixture(scope="session")
def _fault_server() -> Iterator[FaultServer]:
    fault = FaultServer()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        fault.app, log_level="critical", access_log=False, lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("fault server did not start")
        time.sleep(0.01)
    fault.url = f"http://127.0.0.1:{port}"
    try:
        yield fault
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def server(_fault_server: FaultServer) -> Iterator[FaultServer]:
    _fault_server.reset()
    yield _fault_server
    _fault_server.reset()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
