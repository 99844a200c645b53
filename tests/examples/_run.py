"""Run example code in a fresh interpreter: examples configure process-wide logging."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT, subprocess_env


def run_python(code: str, **env: str) -> str:
    """Run `code` from the repository root; return its stdout, failing with its stderr."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=subprocess_env(**env),
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def last_line(output: str) -> str:
    """The last printed line (access-log lines go to stdout too and come first)."""
    return output.strip().splitlines()[-1]
