"""Benchmark: the REST gateway against a minimal hand-written FastAPI endpoint, same rows.

    python benchmarks/gateway.py                    # 5 s per run, 16 concurrent clients, 3 runs
    python benchmarks/gateway.py --seconds 10 --concurrency 32 --runs 5

Both serve a 100-record page of the demo ERP's CUSTOMERS table (SQLite) over loopback, each in
its own process under the same uvicorn settings (one worker, no access log):

* ``hand-written``: ``SELECT`` the first 100 rows with sqlite3 and return them as a JSON list;
* ``gateway``: ``GET /v1/entities/contact/records?limit=100`` with an API key: authentication,
  the Hub (mapping, normalisation, validation, the policy of a trusted consumer, the audit log),
  a signed cursor, metrics and the request log.
* ``gateway (policy)``: the same as a consumer whose policy masks the e-mail and denies phones;
* ``Hub alone``: ``hub.fetch`` of the same page in one process, no HTTP, same concurrency: the
  share of the cost that is the Hub's (mapping, validation, audit), not the gateway's.

The load generator is one httpx async client with N concurrent workers (``wrk`` is not assumed),
the same for both; runs are interleaved and the medians printed, with the gateway's throughput
as a share of the hand-written endpoint's. Figures, not tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ("CUST_NO", "CONTACT_FIRST", "CONTACT_LAST", "EMAIL", "PHONE", "COUNTRY", "CUST_NAME",
           "CREATED", "UPDATED_AT")
PAGE = 100


def prepare(directory: Path) -> dict[str, str]:
    """The demo ERP (300 customers) and a config serving its contacts; API keys for the runs."""
    from patchbay.demo.generate import generate

    generate(directory, customers=300)
    config = yaml.safe_load((ROOT / "examples" / "patchbay.yaml").read_text())
    erp = config["sources"]["erp"]
    erp["entities"] = {"contact": erp["entities"]["contact"]}
    config["sources"] = {"erp": erp}
    config["secret_key"] = "benchmark-secret-key-0123456789abcdef"
    config["consumers"] = {
        "local": {"trusted": True},
        "bot": {"entities": {"contact": {"fields": {"deny": ["phone", "mobile"]},
                                         "mask": {"email": "partial"}}}},
    }
    (directory / "patchbay.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    import sqlalchemy as sa

    from patchbay.config import load_config, resolve_sqlite_path
    from patchbay.gateway import ApiKeys

    loaded = load_config(directory / "patchbay.yaml")
    engine = sa.create_engine(resolve_sqlite_path(loaded.spec.state, loaded.base_dir))
    (directory / "state").mkdir(exist_ok=True)
    keys = ApiKeys(engine, [config["secret_key"]])
    tokens = {name: keys.create(name, "benchmark")[1] for name in ("local", "bot")}
    engine.dispose()
    return tokens


def hand_written_app(directory: Path) -> Any:
    import sqlite3

    from fastapi import FastAPI
    from fastapi.responses import Response

    app = FastAPI()
    db = sqlite3.connect(directory / "erp.sqlite", check_same_thread=False)
    query = f"SELECT {', '.join(COLUMNS)} FROM CUSTOMERS ORDER BY CUST_NO LIMIT {PAGE}"

    @app.get("/contacts")
    def contacts() -> Response:
        rows = db.execute(query).fetchall()
        body = json.dumps({"records": [dict(zip(COLUMNS, row, strict=True)) for row in rows]})
        return Response(body, media_type="application/json")

    return app


def serve(kind: str, directory: Path, port: int) -> None:
    import uvicorn

    if kind == "hand-written":
        app = hand_written_app(directory)
    else:
        from patchbay.config import load_config
        from patchbay.gateway import create_app
        from patchbay.hub import Hub

        # As a ``patchbay serve`` worker builds it (gateway.app.app_from_env).
        app = create_app(
            Hub(load_config(directory / "patchbay.yaml")), close_hub=True, freeze_gc=True
        )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def hub_only(directory: Path, seconds: float, concurrency: int) -> None:
    """``hub.fetch`` of the same page in process, no HTTP: what the Hub itself costs."""
    from patchbay.config import load_config
    from patchbay.hub import Hub

    async def main() -> list[float]:
        latencies: list[float] = []
        async with Hub(load_config(directory / "patchbay.yaml")) as hub:
            for _ in range(20):
                await hub.fetch("contact", limit=PAGE)
            deadline = time.perf_counter() + seconds

            async def worker() -> None:
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    await hub.fetch("contact", limit=PAGE, via="rest")
                    latencies.append(time.perf_counter() - started)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies

    print(json.dumps(_figures(asyncio.run(main()), seconds)))


def _figures(latencies: list[float], seconds: float) -> dict[str, float]:
    latencies.sort()
    return {
        "rps": len(latencies) / seconds,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def load(url: str, headers: dict[str, str], seconds: float, concurrency: int
               ) -> list[float]:
    """Latencies of every request completed in ``seconds`` by ``concurrency`` workers."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:
        for _ in range(20):  # warm up: connections, caches, the first page
            (await client.get(url)).raise_for_status()
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.get(url)
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def run_one(kind: str, directory: Path, url_path: str, headers: dict[str, str], seconds: float,
            concurrency: int) -> dict[str, float]:
    if kind == "Hub alone":
        output = subprocess.run(
            [sys.executable, __file__, "--hub-only", "--dir", str(directory),
             "--seconds", str(seconds), "--concurrency", str(concurrency)],
            capture_output=True, text=True, check=True,
        ).stdout
        figures: dict[str, float] = json.loads(output.strip().splitlines()[-1])
        return figures
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind.split(" ")[0], "--dir", str(directory),
         "--port", str(port)],
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/docs", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"{kind} server did not start") from None
                time.sleep(0.1)
        latencies = asyncio.run(load(base + url_path, headers, seconds, concurrency))
    finally:
        server.terminate()
        server.wait(30)
    return _figures(latencies, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve", choices=["hand-written", "gateway"], help=argparse.SUPPRESS)
    parser.add_argument("--hub-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.dir, args.port)
        return
    if args.hub_only:
        hub_only(args.dir, args.seconds, args.concurrency)
        return

    directory = Path(tempfile.mkdtemp(prefix="patchbay-gateway-bench-"))
    try:
        tokens = prepare(directory)
        page = f"/v1/entities/contact/records?limit={PAGE}"
        cases = {
            "hand-written": ("/contacts", {}),
            "gateway": (page, {"Authorization": f"Bearer {tokens['local']}"}),
            "gateway (policy)": (page, {"Authorization": f"Bearer {tokens['bot']}"}),
            "Hub alone": ("", {}),
        }
        results: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
        for run in range(args.runs):
            for name, (path, headers) in cases.items():
                figures = run_one(name, directory, path, headers, args.seconds, args.concurrency)
                results[name].append(figures)
                print(f"run {run + 1} {name:18} {figures['rps']:8.0f} req/s", file=sys.stderr)
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    base = median("hand-written", "rps")
    print(f"\n{PAGE}-record page, demo SQLite, loopback, {args.concurrency} concurrent clients, "
          f"{args.seconds:g} s x {args.runs} runs (medians), {os.cpu_count()} CPUs\n")
    print("| endpoint | req/s | p50 ms | p99 ms | throughput vs hand-written |")
    print("|---|---|---|---|---|")
    for name in cases:
        rps = median(name, "rps")
        print(f"| {name} | {rps:.0f} | {median(name, 'p50'):.1f} | {median(name, 'p99'):.1f} "
              f"| {rps / base:.0%} |")


if __name__ == "__main__":
    main()
