"""Benchmark: one ``hub.query("contact")`` over three sources at once, against each alone.

    python benchmarks/cross_source.py                      # ERP 20,000 + CSV 20,000 + REST 10,000
    python benchmarks/cross_source.py --latency 0 --runs 3
    python benchmarks/cross_source.py --quick              # a smoke run (small sizes)

The sources of ``examples/multi-source.yaml``, larger: the demo's legacy ERP (SQLite,
``--customers`` rows), its CRM's CSV export (``--contacts`` rows) and the demo REST CRM
(``patchbay.demo.webcrm``, ``--rest`` contacts, 200 a page) served by uvicorn in its own process.
The config is the example's, with ``base_url`` pointed at that server and ``page_size: 200``.

Measured in the same run, each in a fresh process (imports before the clock starts), interleaved,
medians: every source read alone (``hub.query("contact", sources=[name])``) and all three in one
query. The design claim is that a query over several sources takes about as long as the slowest
one alone; the table shows the query's time against the sum of the three and against the
slowest. With ``--latency MS`` the REST CRM waits that long before each page (a remote API's
round trip; loopback has none), which is where overlapping reads can pay: over loopback every
source is CPU-bound in one Python process, so the best concurrency can do is hide the REST
server's own time. Figures, not tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "multi-source.yaml"
SOURCES = ("erp", "crm_export", "webcrm")
PAGE_SIZE = 200  # the demo CRM's largest page



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

# --- the REST CRM (its own process) --------------------------------------------------------


def serve(rest: int, port: int, latency_ms: float) -> None:
    import uvicorn

    from patchbay.demo.webcrm import DEMO_KEY, contacts, create_app

    def wait() -> None:  # in the server's thread pool: pages overlap as a remote API's would
        time.sleep(latency_ms / 1000)

    app = create_app(contacts(rest), DEMO_KEY, before_page=wait if latency_ms else None)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class Serving:
    """``with Serving(rest, latency) as url:`` the demo CRM under uvicorn in a child process."""

    def __init__(self, rest: int, latency_ms: float) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.args = [sys.executable, __file__, "--serve", "--rest", str(rest), "--port",
                     str(self.port), "--latency", str(latency_ms)]
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        self.process = subprocess.Popen(self.args)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the REST CRM exited before it served")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return f"http://127.0.0.1:{self.port}"
            except OSError:
                time.sleep(0.1)
        self.process.kill()
        raise RuntimeError("the REST CRM did not start within 30 s")

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(10)


# --- the sources and the measurements ------------------------------------------------------


def prepare(folder: Path, customers: int, contacts: int, url: str) -> Path:
    """The demo's ERP and CSV export in ``folder``, and the example config pointed at ``url``."""
    from patchbay.demo.generate import generate

    generate(folder, customers=customers, contacts=contacts)
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    webcrm = data["sources"]["webcrm"]
    webcrm["settings"]["base_url"] = url
    webcrm["entities"]["contact"]["from"]["params"]["page_size"] = PAGE_SIZE
    webcrm["settings"]["page_cap"] = 1_000_000
    path = folder / "multi-source.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def child(config: Path, which: str) -> None:
    # Imports happen before the clock starts: the figures are about reading records.
    import patchbay.connectors.files
    import patchbay.connectors.rest
    import patchbay.connectors.sql  # noqa: F401
    from patchbay import Hub
    from patchbay.demo.webcrm import DEMO_KEY

    os.environ["WEBCRM_API_KEY"] = DEMO_KEY
    sources = list(SOURCES) if which == "all" else [which]

    async def run() -> dict[str, int]:
        counts = dict.fromkeys(sources, 0)
        async with Hub.from_config(config) as hub:
            async for record in hub.query("contact", sources=sources):
                counts[record.source] += 1
        return counts

    start = time.perf_counter()
    counts = asyncio.run(run())
    seconds = time.perf_counter() - start
    peak_mb = peak_rss_mb()
    print(json.dumps({"counts": counts, "seconds": seconds, "peak_mb": peak_mb}))


def measure(config: Path, which: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, "--config", str(config)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if out.returncode != 0:
        raise SystemExit(f"{which} failed:\n{out.stderr}")
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20_000, help="ERP rows")
    parser.add_argument("--contacts", type=int, default=20_000, help="CSV rows")
    parser.add_argument("--rest", type=int, default=10_000, help="REST CRM contacts")
    parser.add_argument("--latency", type=float, default=20.0,
                        help="ms the REST CRM waits before each page (0: bare loopback)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sizes, 1 run")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.rest, args.port, args.latency)
        return
    if args.child:
        child(Path(args.config), args.child)
        return
    if args.quick:
        args.customers, args.contacts, args.rest, args.runs = 300, 300, 400, 1

    names = (*SOURCES, "all")
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    with Serving(args.rest, args.latency) as url, tempfile.TemporaryDirectory() as tmp:
        config = prepare(Path(tmp), args.customers, args.contacts, url)
        for _ in range(args.runs):  # interleaved, so drift hits every measurement alike
            for name in names:
                results[name].append(measure(config, name))
                last = results[name][-1]
                print(f"  {name}: {last['seconds']:.2f} s {last['counts']}", file=sys.stderr)

    seconds = {n: statistics.median(r["seconds"] for r in results[n]) for n in names}
    counts = {n: sum(results[n][0]["counts"].values()) for n in names}
    together = results["all"][0]["counts"]
    for name in SOURCES:  # the query over three delivers exactly what each delivers alone
        if together[name] != counts[name]:
            raise SystemExit(f"{name}: {together[name]} records together, {counts[name]} alone")
    total = sum(seconds[n] for n in SOURCES)
    slowest = max(SOURCES, key=lambda n: seconds[n])
    command = (f"python benchmarks/cross_source.py --customers {args.customers} --contacts "
               f"{args.contacts} --rest {args.rest} --latency {args.latency:g} --runs {args.runs}")
    print(f"hub.query(\"contact\") over the demo ERP (SQLite), its CSV export and the demo REST "
          f"CRM ({PAGE_SIZE} a page, {args.latency:g} ms before each page); medians of "
          f"{args.runs} runs\n")
    print(f"command: {command}\n")
    print("| read | records | time | records/s | peak RSS |")
    print("|---|---|---|---|---|")
    for name in names:
        label = "all three, one query" if name == "all" else f"{name} alone"
        peak = max(r["peak_mb"] for r in results[name])
        print(f"| {label} | {counts[name]:,} | {seconds[name]:.2f} s | "
              f"{counts[name] / seconds[name]:,.0f} | {peak:.0f} MB |")
    print(f"\n| all three vs | time | ratio |\n|---|---|---|\n"
          f"| the sum of the three alone | {total:.2f} s | {seconds['all'] / total:.2f}x |\n"
          f"| the slowest alone ({slowest}) | {seconds[slowest]:.2f} s | "
          f"{seconds['all'] / seconds[slowest]:.2f}x |")


if __name__ == "__main__":
    main()
