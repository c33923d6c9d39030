"""The benchmark scripts still run: each with ``--quick`` (small sizes, one run), as ``make bench``
would run them, as subprocesses. Their figures are not checked (no timing assertions): only that
they finish, read every record they should, and print their tables.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(script: str, *options: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", *options],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_rest_benchmark_prints_its_table() -> None:
    out = run("rest.py", "--stages")
    assert "2,000 invoices over 20 pages of 100" in out
    assert "| pipeline | records/s | time | vs raw httpx | peak RSS |" in out
    for label in ("raw httpx loop + json.loads", "REST connector read(), no mapping",
                  'patchbay hub.query("invoice")'):
        assert f"| {label} |" in out
    assert "| raw httpx loop + json.loads |" in out and "| 1.00x |" in out
    assert "| stage | µs/record | share |" in out and "| total, patchbay |" in out


def test_cross_source_benchmark_prints_its_table() -> None:
    out = run("cross_source.py")
    assert "| read | records | time | records/s | peak RSS |" in out
    # The demo REST CRM serves 400 contacts in the quick run; each source alone and all three
    # together deliver the same records (the script checks that too, and fails otherwise).
    assert "| webcrm alone | 400 |" in out
    assert "| erp alone |" in out and "| crm_export alone |" in out
    assert "| all three, one query |" in out
    assert "| the sum of the three alone |" in out and "| the slowest alone (" in out
