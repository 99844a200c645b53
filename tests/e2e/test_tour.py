"""The README's 60-second tour runs as written against the demo and shows what it promises."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import run_demo


def _tour_script() -> str:
    readme = (Path(ROOT) / "README.md").read_text(encoding="utf-8")
    section = readme.split("[start:tour]", 1)[1].split("[end:tour]", 1)[0]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


def test_the_readme_tour_runs_against_the_demo(demo_env: dict[str, str], tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed; the tour is a curl session")
    script = _tour_script()
    assert script.startswith("B=http://127.0.0.1:8000\n")
    with run_demo(demo_env, str(tmp_path), workers=1) as server:
        done = subprocess.run(
            [
                "bash",
                "-euo",
                "pipefail",
                "-c",
                script.replace("http://127.0.0.1:8000", server.base_url, 1),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert '"username":"ada"' in out
    assert out.count('"owner":"ada"') >= 3 + 3  # three created, then two pages of the three
    assert '"code":"note_title_taken"' in out
    assert "200 200 200 200 200 429" in out
    assert "retry-after: " in out.lower()
    assert '{"status":"ok"}' in out
    assert "http_requests_total{" in out
