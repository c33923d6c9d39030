"""Benchmark: invoices paged from a local JSON API, through the REST connector beside raw httpx.

    python benchmarks/rest.py                                  # 100,000 records, 1,000 pages
    python benchmarks/rest.py --records 100000 --page-size 100 --runs 3 --stages --profile
    python benchmarks/rest.py --quick                          # a smoke run (small sizes)

A server in its own process (so its CPU does not share the client's GIL) answers
``GET /api/invoices?offset=N&limit=M`` with ``{"data": [...], "meta": {"total": T}}``: every page
body is encoded once, before the clock starts, and served by a bare asyncio protocol (HTTP/1.1,
keep-alive), so the figures are the client's. Pipelines, in the same run, over the same pages:

* ``httpx``: the baseline, an ``httpx.AsyncClient`` loop fetching every page and
  ``json.loads``-ing it;
* ``httpx+pydantic``: the same loop, each record turned into a canonical ``Invoice`` by
  hand-written code (a dict literal) and validated by pydantic: the floor for validated records;
* ``hub-client``: the same loop on the client the Hub gives the connector (its auth, and the
  resilience transport: retries, rate limit, circuit breaker, events);
* ``connector``: the REST connector's ``read()`` batches (paging, record selection, positions),
  no mapping;
* ``patchbay``: ``hub.query("invoice")`` end to end: the connector, the mapping (ids, dates, a
  datetime, money, a reference), pydantic validation of every record, the quality report.

Each pipeline runs in a fresh process (imports before the clock starts), so its peak RSS is its
own; runs are interleaved and the medians printed, with the time of each as a multiple of raw
httpx's. ``--stages`` adds where the time goes, in µs per record: every stage timed in one
process, the least disturbed of five timings each (``json.loads``, the mapping and validation
alone on the same pages held in memory). ``--profile`` adds cProfile's top functions for the
``patchbay`` pipeline. Figures, not tests.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_KEY = "bench-rest-key-0123456789"
STATUSES = ("draft", "open", "paid", "void")
START = datetime(2024, 1, 1, tzinfo=UTC)
PIPELINES = ("httpx", "httpx+pydantic", "hub-client", "connector", "patchbay")
LABELS = {
    "httpx": "raw httpx loop + json.loads",
    "httpx+pydantic": "same + hand-written mapping, Invoice.model_validate",
    "hub-client": "same loop, the Hub's client (auth + resilience)",
    "connector": "REST connector read(), no mapping",
    "patchbay": 'patchbay hub.query("invoice")',
}



def peak_rss_mb() -> float:
    """This process's peak RSS. On Linux from ``VmHWM``: ``ru_maxrss`` would include the
    parent's peak, since a child started with vfork + exec inherits it."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

# --- the server (its own process) ----------------------------------------------------------


def invoice(i: int) -> dict[str, Any]:
    issued = date(2024, 1, 1) + timedelta(days=i % 700)
    return {
        "id": i,
        "number": f"INV-{i:06d}",
        "status": STATUSES[i % 4],
        "customer": f"C{i % 997:04d}",
        "total": f"{(i * 37) % 100_000}.{i % 100:02d}",
        "currency": ("EUR", "GBP", "USD")[i % 3],
        "issued_on": issued.isoformat(),
        "due_on": (issued + timedelta(days=30)).isoformat(),
        "updated_at": (START + timedelta(minutes=7 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def pages(records: int, page_size: int) -> dict[int, bytes]:
    """Every response, encoded once, by offset; past the end an empty page."""
    out: dict[int, bytes] = {}
    for offset in range(0, records + 1, page_size):
        rows = [invoice(i) for i in range(offset + 1, min(records, offset + page_size) + 1)]
        body = json.dumps({"data": rows, "meta": {"total": records}},
                          separators=(",", ":")).encode()
        out[offset] = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                       b"content-length: %d\r\n\r\n" % len(body)) + body
    return out


NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"


class PageServer(asyncio.Protocol):
    """Keep-alive HTTP/1.1 for GET requests without bodies: precomputed pages by offset."""

    def __init__(self, responses: dict[int, bytes], page_size: int) -> None:
        self.responses = responses
        self.page_size = page_size
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            target = head.split(b" ", 2)[1].decode()
            self.transport.write(self.answer(target))

    def answer(self, target: str) -> bytes:
        parts = urlsplit(target)
        if parts.path != "/api/invoices":
            return NOT_FOUND
        query = parse_qs(parts.query)
        offset = int(query.get("offset", ["0"])[0])
        if query.get("limit", [str(self.page_size)])[0] != str(self.page_size):
            return NOT_FOUND  # every pipeline asks for the same page size
        return self.responses.get(offset, NOT_FOUND)


def serve(records: int, page_size: int) -> None:
    responses = pages(records, page_size)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: PageServer(responses, page_size),
                                          "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)  # the parent waits for this line
        await server.serve_forever()

    asyncio.run(run())


class Serving:
    """``with Serving(records, page_size) as url:`` the page server in a child process."""

    def __init__(self, records: int, page_size: int) -> None:
        self.args = [sys.executable, __file__, "--serve", "--records", str(records),
                     "--page-size", str(page_size)]
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> str:
        self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.isdigit():
            self.process.kill()
            raise RuntimeError("the page server did not start")
        return f"http://127.0.0.1:{line}"

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(10)


# --- the pipelines (a child process each) --------------------------------------------------


def config(url: str, folder: Path, page_size: int) -> dict[str, Any]:
    return {
        "version": 1,
        "state": f"sqlite:///{folder / 'state.db'}",
        "secret_key": "bench-rest-secret-key-0123456789",
        "sources": {"billing": {
            "connector": "rest",
            "owner": "billing-team@acme.example",
            "auth": {"scheme": "api_key", "name": "X-API-Key", "value": "env:BENCH_API_KEY"},
            "settings": {"base_url": f"{url}/api", "page_cap": 1_000_000},
            "entities": {"invoice": {
                "from": {
                    "endpoint": "/invoices",
                    "records": "data",
                    "pagination": {"type": "offset", "limit": page_size,
                                   "offset_param": "offset", "limit_param": "limit"},
                    "stop": {"total_path": "meta.total"},
                },
                "id": "id",
                "updated_at": {"path": "updated_at", "transform": "datetime"},
                "fields": {
                    "number": "number",
                    "status": "status",
                    "customer_id": {"path": "customer", "transform": "ref"},
                    "total": {"path": ["total", "currency"], "transform": "money"},
                    "issued_on": {"path": "issued_on", "transform": "date"},
                    "due_on": {"path": "due_on", "transform": "date"},
                },
            }},
        }},
    }


async def httpx_loop(client: Any, url: str, page_size: int, validate: bool = False) -> int:
    """Offset paging by hand: the loop a user would write, stopping at ``meta.total``."""
    if validate:
        from patchbay.core.entities import Invoice
    count, offset = 0, 0
    while True:
        response = await client.get(url, params={"offset": offset, "limit": page_size})
        response.raise_for_status()
        body = json.loads(response.content)
        rows = body["data"]
        if validate:  # what a hand-written client of the canonical model would do
            for r in rows:
                Invoice.model_validate({
                    "id": f"billing:{r['id']}", "source": "billing", "remote_id": str(r["id"]),
                    "number": r["number"], "status": r["status"],
                    "customer_id": f"billing:{r['customer']}",
                    "total": {"amount": r["total"], "currency": r["currency"]},
                    "issued_on": r["issued_on"], "due_on": r["due_on"],
                    "updated_at": r["updated_at"],
                })
        count += len(rows)
        offset += len(rows)
        if not rows or offset >= body["meta"]["total"]:
            return count


async def pipeline(name: str, url: str, folder: Path, page_size: int) -> int:
    """Run one pipeline to the end; return the number of records it produced."""
    import httpx

    if name.startswith("httpx"):
        async with httpx.AsyncClient(headers={"X-API-Key": API_KEY}) as client:
            return await httpx_loop(client, f"{url}/api/invoices", page_size,
                                    validate=name == "httpx+pydantic")

    from patchbay import Hub
    from patchbay.config import load_config_data
    from patchbay.connectors.rest import RestConnector
    from patchbay.core.connector import ReadRequest

    os.environ["BENCH_API_KEY"] = API_KEY
    data = config(url, folder, page_size)
    async with Hub(load_config_data(data, base_dir=folder)) as hub:
        if name == "patchbay":
            count = 0
            async for _ in hub.query("invoice"):
                count += 1
            return count
        connector = await hub.connector("billing")
        assert isinstance(connector, RestConnector)
        if name == "hub-client":
            client = connector.res.http_client  # what the Hub injected: auth + resilience
            return await httpx_loop(client, f"{url}/api/invoices", page_size)
        origin = data["sources"]["billing"]["entities"]["invoice"]["from"]
        request = ReadRequest("invoice", origin, ("id",), ("id",))
        count = 0
        async for batch in connector.read(request):
            count += len(batch.rows)
        return count


async def stage_timings(url: str, folder: Path, records: int, page_size: int, repeats: int
                        ) -> dict[str, float]:
    """µs per record of each stage, in one process, the minimum of ``repeats`` timings each
    (the least disturbed by other work on the machine): end to end against the server, and
    ``json.loads``, the mapping and validation alone on the same pages held in memory."""
    import gc

    import httpx

    from patchbay import Hub
    from patchbay.config import load_config_data
    from patchbay.core.connector import ReadRequest

    os.environ["BENCH_API_KEY"] = API_KEY
    data = config(url, folder, page_size)
    loaded = load_config_data(data, base_dir=folder)
    mapping = loaded.sources["billing"].mappings["invoice"]
    origin = data["sources"]["billing"]["entities"]["invoice"]["from"]
    endpoint = f"{url}/api/invoices"
    best: dict[str, float] = {}

    def keep(stage: str, seconds: float) -> None:
        micros = seconds / records * 1e6
        best[stage] = min(best.get(stage, micros), micros)

    async with Hub(loaded) as hub, httpx.AsyncClient(headers={"X-API-Key": API_KEY}) as raw:
        connector = await hub.connector("billing")

        async def read() -> int:
            count = 0
            async for batch in connector.read(ReadRequest("invoice", origin, ("id",), ("id",))):
                count += len(batch.rows)
            return count

        async def query() -> int:
            count = 0
            async for _ in hub.query("invoice"):
                count += 1
            return count

        async def loop() -> int:
            return await httpx_loop(raw, endpoint, page_size)

        for _ in range(repeats):
            for stage, run in (("httpx", loop), ("connector", read), ("patchbay", query)):
                start = time.perf_counter()
                count = await run()
                keep(stage, time.perf_counter() - start)
                assert count == records, (stage, count)

        # The same pages in memory, for the stages alone. Frozen: the inputs held here are not
        # the pipeline's, and the cyclic GC would walk them on every collection.
        bodies = []
        for offset in range(0, records, page_size):
            response = await raw.get(endpoint, params={"offset": offset, "limit": page_size})
            bodies.append(response.content)
        pages = [json.loads(body)["data"] for body in bodies]
        mapped = [record.model_dump(exclude_unset=True) for rows in pages
                  for record in mapping.map_batch(rows).records]
        validate = mapping.model.model_validate
        gc.freeze()
        for _ in range(repeats):
            start = time.perf_counter()
            for body in bodies:
                json.loads(body)
            keep("json", time.perf_counter() - start)
            start = time.perf_counter()
            for rows in pages:
                mapping.map_batch(rows)
            keep("map_batch", time.perf_counter() - start)
            gc.disable()  # as map_batch does around its batch
            start = time.perf_counter()
            for item in mapped:
                validate(item)
            keep("validate", time.perf_counter() - start)
            gc.enable()
        gc.unfreeze()
    return best


def print_stages(micros: dict[str, float], repeats: int) -> None:
    total = micros["patchbay"]
    rows = (
        ("HTTP request and response, httpx (the baseline, less json.loads)",
         micros["httpx"] - micros["json"]),
        ("`json.loads` of the pages", micros["json"]),
        ("the Hub's client and the connector (paging, records, positions)",
         micros["connector"] - micros["httpx"]),
        ("the field code: transforms, ids, assignment (map_batch less validation)",
         micros["map_batch"] - micros["validate"]),
        ("pydantic validation of the records", micros["validate"]),
        ("the Hub: chunks, prefetch, per-record async iteration, audit count",
         total - micros["connector"] - micros["map_batch"]),
    )
    print(f"\nstages in one process, minimum of {repeats} timings each: raw httpx "
          f"{micros['httpx']:.1f} µs/record, connector {micros['connector']:.1f}, patchbay "
          f"{total:.1f} ({total / micros['httpx']:.2f}x)\n")
    print("| stage | µs/record | share |")
    print("|---|---|---|")
    for label, value in rows:
        print(f"| {label} | {value:.1f} | {value / total:.0%} |")
    print(f"| total, patchbay | {total:.1f} | 100% |")


def child(name: str, url: str, records: int, page_size: int, profile: bool) -> None:
    # Imports happen before the clock starts: the figures are about paging records.
    import httpx  # noqa: F401

    if name != "httpx":
        import patchbay.connectors.rest
        import patchbay.core.entities  # noqa: F401
    if name == "stages":
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(asyncio.run(stage_timings(url, Path(tmp), records, page_size, 5))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        profiler = cProfile.Profile() if profile else None
        start = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        count = asyncio.run(pipeline(name, url, Path(tmp), page_size))
        if profiler is not None:
            profiler.disable()
        seconds = time.perf_counter() - start
    if count != records:
        raise SystemExit(f"{name}: read {count:,} records, expected {records:,}")
    peak_mb = peak_rss_mb()
    result: dict[str, Any] = {"rows": count, "seconds": seconds, "peak_mb": peak_mb}
    if profiler is not None:
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("tottime").print_stats(25)
        result["profile"] = text.getvalue()
    print(json.dumps(result))


def measure(name: str, url: str, args: argparse.Namespace, *, profile: bool = False
            ) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", name, "--url", url, "--records",
               str(args.records), "--page-size", str(args.page_size)]
    out = subprocess.run(command + (["--profile"] if profile else []), capture_output=True,
                         text=True, check=False, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if out.returncode != 0:
        raise SystemExit(f"{name} failed:\n{out.stderr}")
    return json.loads(out.stdout)  # type: ignore[no-any-return]


# --- the table -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2,000 records, 1 run")
    parser.add_argument("--profile", action="store_true",
                        help="also print cProfile's top functions for the patchbay pipeline")
    parser.add_argument("--stages", action="store_true",
                        help="also time each stage in one process (µs per record)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.records, args.page_size)
        return
    if args.child:
        child(args.child, args.url, args.records, args.page_size, args.profile)
        return
    if args.quick:
        args.records, args.runs = 2_000, 1

    results: dict[str, list[dict[str, Any]]] = {p: [] for p in PIPELINES}
    profile: str | None = None
    with Serving(args.records, args.page_size) as url:
        for _ in range(args.runs):  # interleaved, so drift hits every pipeline alike
            for name in PIPELINES:
                results[name].append(measure(name, url, args))
                last = results[name][-1]
                print(f"  {name}: {last['rows'] / last['seconds']:,.0f} records/s",
                      file=sys.stderr)
        if args.profile:
            profile = measure("patchbay", url, args, profile=True)["profile"]
        stages = measure("stages", url, args) if args.stages else None

    seconds = {p: statistics.median(r["seconds"] for r in results[p]) for p in PIPELINES}
    base = seconds["httpx"]
    pages_read = -(-args.records // args.page_size)
    command = (f"python benchmarks/rest.py --records {args.records} --page-size "
               f"{args.page_size} --runs {args.runs}")
    print(f"{args.records:,} invoices over {pages_read:,} pages of {args.page_size} from "
          f"127.0.0.1 (offset paging, server in its own process); medians of {args.runs} runs\n")
    print(f"command: {command}\n")
    print("| pipeline | records/s | time | vs raw httpx | peak RSS |")
    print("|---|---|---|---|---|")
    for name in PIPELINES:
        peak = max(r["peak_mb"] for r in results[name])
        print(f"| {LABELS[name]} | {args.records / seconds[name]:,.0f} | {seconds[name]:.2f} s "
              f"| {seconds[name] / base:.2f}x | {peak:.0f} MB |")

    if stages is not None:
        print_stages(stages, 5)
    if profile is not None:
        print("\ncProfile, patchbay pipeline (one run, by own time):\n")
        print(profile)


if __name__ == "__main__":
    main()
