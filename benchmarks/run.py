"""Benchmarks: legacy SQLite rows streamed into canonical contacts, beside the raw driver and dlt.

    make bench                                  # 1,000,000 rows, 3 interleaved runs, medians
    python benchmarks/run.py --rows 200000 --runs 1

Pipelines, each over the same generated 12-column legacy CUSTOMERS table:

* ``sqlalchemy-core``: the baseline, SQLAlchemy Core streaming with ``yield_per`` and
  ``partitions()``, rows as dicts;
* ``dlt-sqlalchemy`` / ``dlt-pyarrow``: dlt's ``sql_table`` extraction of the table (its default
  backend, and Arrow), iterated without a destination: dlt validates and normalises nothing;
* ``patchbay``: canonical contacts, with e-mail, date, datetime, decimal and country
  normalisation and pydantic validation, through the Hub;
* ``patchbay+phone``: the same plus phone numbers to E.164 (phonenumbers is slow, so apart).

Each pipeline runs in a fresh process so its peak RSS is its own. Figures, not tests: the table
printed here goes into benchmarks/README.md with the command that made it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLUMNS = ("CUST_NO", "CUST_NAME", "CONTACT_FIRST", "CONTACT_LAST", "EMAIL", "PHONE", "COUNTRY",
           "CITY", "CREATED", "CREDIT_LIM", "STATUS", "UPDATED_AT")
COUNTRIES = ("GB", "United Kingdom", "Deutschland", "DE", "France", "Nederland", "USA", "España")
PHONES = ("020 7946 0123", "+44 20 7946 0456", "0049 30 123456", "+1 (212) 555-0147")

CONFIG = {
    "version": 1,
    "state": "sqlite:///state.db",
    "sources": {"erp": {
        "connector": "sql",
        "settings": {"url": "sqlite:///bench.sqlite"},
        "batch_size": 10000,
        "defaults": {"phone_region": "GB", "timezone": "Europe/London", "decimal": "comma"},
        "entities": {"contact": {
            "from": {"table": "CUSTOMERS"},
            "id": "CUST_NO",
            "updated_at": {"path": "UPDATED_AT", "transform": "datetime:%Y-%m-%d %H:%M:%S"},
            "fields": {
                "first_name": "CONTACT_FIRST",
                "last_name": "CONTACT_LAST",
                "email": {"path": "EMAIL", "transform": "email"},
                "company_name": "CUST_NAME",
                "address.country": {"path": "COUNTRY", "transform": "country"},
                "address.city": "CITY",
                "created_at": {"path": "CREATED", "transform": "date:%d/%m/%Y"},
                "extra.credit_limit": {"path": "CREDIT_LIM", "transform": "decimal"},
                "status": "STATUS",
            },
        }},
    }},
}


def generate(path: Path, rows: int) -> None:
    rng = random.Random(1)
    db = sqlite3.connect(path)
    db.execute(f"CREATE TABLE CUSTOMERS ({', '.join(c + ' TEXT' for c in COLUMNS)}, "
               "PRIMARY KEY (CUST_NO))".replace("CUST_NO TEXT", "CUST_NO INTEGER"))

    def row(i: int) -> tuple[object, ...]:
        first, last = rng.choice(("Ann", "Jurgen", "Zoe", "Liam")), rng.choice(("Lee", "Muller"))
        return (
            i, f"Company {i} Ltd", first, last, f" {first}.{last}{i}@Example.COM ".lower(),
            rng.choice(PHONES), rng.choice(COUNTRIES), "London",
            f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(2000, 2020)}",
            f"{rng.randint(0, 99)}.{rng.randint(100, 999)},{rng.randint(0, 99):02d}",
            rng.choice("AIP"), f"2020-0{rng.randint(1, 9)}-1{rng.randint(0, 9)} 10:11:12",
        )

    for start in range(0, rows, 50_000):
        db.executemany(f"INSERT INTO CUSTOMERS VALUES ({', '.join('?' * len(COLUMNS))})",
                       (row(i) for i in range(start + 1, min(rows, start + 50_000) + 1)))
    db.commit()
    db.close()


def pipeline(name: str, folder: Path) -> int:
    """Run one pipeline to the end; return the number of records it produced."""
    if name.startswith("dlt-"):
        from dlt.sources.sql_database import sql_table

        count = 0
        resource = sql_table(
            credentials=f"sqlite:///{folder / 'bench.sqlite'}",
            table="CUSTOMERS",
            backend=name.removeprefix("dlt-"),
            chunk_size=10_000,
        )
        for item in resource:  # dicts one by one (sqlalchemy), or Arrow tables (pyarrow)
            count += item.num_rows if hasattr(item, "num_rows") else 1
        return count

    if name == "sqlalchemy-core":
        import sqlalchemy as sa

        engine = sa.create_engine(f"sqlite:///{folder / 'bench.sqlite'}")
        table = sa.table("CUSTOMERS", *(sa.column(c) for c in COLUMNS))
        count = 0
        with engine.connect() as conn:
            result = conn.execution_options(yield_per=10_000).execute(sa.select(table))
            keys = list(result.keys())
            for part in result.partitions():
                count += len([dict(zip(keys, r, strict=True)) for r in part])
        return count

    from patchbay import Hub
    from patchbay.config import load_config_data

    data = json.loads(json.dumps(CONFIG))
    if name == "patchbay+phone":
        data["sources"]["erp"]["entities"]["contact"]["fields"]["phone"] = {
            "path": "PHONE", "transform": "phone"}
    config = load_config_data(data, base_dir=folder)

    async def run() -> int:
        async with Hub(config) as hub:
            count = 0
            async for _ in hub.query("contact"):
                count += 1
            return count

    import asyncio

    return asyncio.run(run())


PIPELINES = ("sqlalchemy-core", "dlt-sqlalchemy", "dlt-pyarrow", "patchbay", "patchbay+phone")


def measure(name: str, folder: Path) -> dict[str, float]:
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", "PYTHONWARNINGS": "ignore"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", name, "--dir", str(folder)],
        capture_output=True, text=True, check=True, env=env,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child")
    parser.add_argument("--dir")
    args = parser.parse_args()
    if args.child:
        # Imports happen before the clock starts: the figures are about streaming rows.
        if args.child.startswith("dlt-"):
            import dlt.sources.sql_database  # noqa: F401
        elif args.child.startswith("patchbay"):
            import patchbay
            import patchbay.connectors.sql  # noqa: F401
        start = time.perf_counter()
        count = pipeline(args.child, Path(args.dir))
        seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"rows": count, "seconds": seconds, "peak_mb": peak_mb}))
        return

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        generate(folder / "bench.sqlite", args.rows)
        print(f"generated {args.rows:,} rows", file=sys.stderr)
        results: dict[str, list[dict[str, float]]] = {p: [] for p in PIPELINES}
        for _ in range(args.runs):  # interleaved, so drift hits every pipeline alike
            for name in PIPELINES:
                results[name].append(measure(name, folder))
                last = results[name][-1]
                print(f"  {name}: {last['rows'] / last['seconds']:,.0f} rows/s", file=sys.stderr)
    base = statistics.median(r["seconds"] for r in results["sqlalchemy-core"])
    print(f"{args.rows:,} legacy rows, SQLite, batches of 10,000; medians of {args.runs} runs\n")
    print(f"command: python benchmarks/run.py --rows {args.rows} --runs {args.runs}\n")
    print("| pipeline | rows/s | time vs SQLAlchemy Core | peak RSS |")
    print("|---|---|---|---|")
    for name in PIPELINES:
        seconds = statistics.median(r["seconds"] for r in results[name])
        rows = results[name][0]["rows"]
        peak = max(r["peak_mb"] for r in results[name])
        print(f"| {name} | {rows / seconds:,.0f} | {seconds / base:.2f}x | {peak:.0f} MB |")


if __name__ == "__main__":
    main()
