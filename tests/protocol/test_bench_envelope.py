"""bench/envelope.py runs and measures every operation it prints (no timing is asserted here:
performance goals live in the benchmark's own output, beside its peer)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "envelope.py"
OPS = ("seal", "raw_seal", "raw_seal_bare", "open", "raw_open", "validate", "raw_validate")


def test_the_envelope_benchmark_runs_and_reports_every_operation_at_every_size() -> None:
    run = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    rows = json.loads(run.stdout)
    assert [r["size"] for r in rows] == ["5 KB", "100 KB", "5 MB"]
    for row in rows:
        assert all(row[op] > 0 for op in OPS), row
        assert row["envelope_bytes"] < row["report_bytes"]
