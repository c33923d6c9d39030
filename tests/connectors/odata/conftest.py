"""The test services on 127.0.0.1: Business Central (v4), SAP S/4HANA (v2), and a stranger."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI, Request
from servers import Server

from odata import data
from odata.service import Service

BC_PREFIX = "/v2.0/tenant/production/api/v1.0"
SAP_PREFIX = "/sap/opu/odata/sap"
TOKEN = "odata-t0ken-n3ver-app3ars"
AUTH = {"scheme": "bearer", "token": "env:ODATA_TOKEN"}


@dataclass
class Running:
    server: Server
    service: Service
    root: str  # the service root URL


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODATA_TOKEN", TOKEN)


def _guarded(app: FastAPI) -> FastAPI:
    @app.middleware("http")
    async def bearer(request: Request, call_next: Any) -> Any:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            from fastapi.responses import JSONResponse

            return JSONResponse({"error": {"code": "401", "message": "no token"}},
                                status_code=401)
        return await call_next(request)

    return app


@pytest.fixture(scope="package")
def stranger() -> Iterator[tuple[Server, list[str]]]:
    """Another origin: records the Authorization header of anything that reaches it."""
    hits: list[str] = []
    app = FastAPI()

    @app.get("/{path:path}")
    async def anything(request: Request, path: str) -> dict[str, Any]:
        hits.append(request.headers.get("authorization") or "(none)")
        return {"value": [], "d": {"results": []}}

    with Server(app) as running:
        yield running, hits


@pytest.fixture(scope="package")
def bc() -> Iterator[Running]:
    service = Service("4", data.business_central(), cap=4, namespace="Microsoft.NAV")
    with Server(_guarded(service.app(BC_PREFIX))) as server:
        yield Running(server, service, f"{server.url}{BC_PREFIX}")


@pytest.fixture(scope="package")
def sap() -> Iterator[Running]:
    service = Service("2", data.sap(), cap=4, namespace="API")
    with Server(_guarded(service.app(SAP_PREFIX))) as server:
        yield Running(server, service, f"{server.url}{SAP_PREFIX}")
