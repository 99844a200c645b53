from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import subprocess_env

ROOT = Path(__file__).resolve().parents[2]


def test_depth_benchmark_runs_and_checks_both_styles_return_the_same_page() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.pagination_depth", "--rows", "12000", "--repeat", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=subprocess_env(),
    )
    assert result.returncode == 0, result.stderr
    table = [line for line in result.stdout.splitlines() if line.startswith("| 1")]
    assert [line.split(" | ")[0] for line in table] == ["| 10", "| 1,000"]
