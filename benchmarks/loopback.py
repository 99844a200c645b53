"""Loopback HTTP run: each app under uvicorn (one worker) on 127.0.0.1, driven by `wrk`."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

from benchmarks.driver import RouteCase, route_cases

WRK_CONNECTIONS = 16


def ensure_wrk() -> str | None:
    """Path of `wrk`, installing Debian's package when missing and possible; None otherwise."""
    found = shutil.which("wrk")
    if found or shutil.which("apt-get") is None or os.geteuid() != 0:
        return found
    print("wrk is missing; trying `apt-get install -y wrk` ...", file=sys.stderr)
    subprocess.run(
        ["apt-get", "install", "-y", "wrk"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        timeout=300,
    )
    return shutil.which("wrk")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lua_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _script(case: RouteCase, directory: str) -> str:
    lines = [f"wrk.method = {_lua_string(case.method)}"]
    if case.body:
        lines.append(f"wrk.body = {_lua_string(case.body.decode())}")
    for name, value in case.headers:
        if name.lower() == b"content-length":
            continue
        lines.append(f"wrk.headers[{_lua_string(name.decode())}] = {_lua_string(value.decode())}")
    path = os.path.join(directory, f"{abs(hash((case.label, case.headers)))}.lua")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering")
        try:
            url = f"http://127.0.0.1:{port}/items/1"
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not answer within {timeout:.0f}s")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time used so far by process `pid` (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(
    wrk: str, pid: int, port: int, case: RouteCase, script: str, seconds: float
) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}{case.path}"
    cmd = [wrk, "-t1", f"-c{WRK_CONNECTIONS}", f"-d{seconds:g}s", "-s", script, url]
    cpu_before = cpu_seconds(pid)
    out = subprocess.run(
        cmd, capture_output=True, text=True, check=False, timeout=seconds + 30
    ).stdout
    cpu_after = cpu_seconds(pid)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    cpu_us = None
    if total and int(total.group(1)) and cpu_before is not None and cpu_after is not None:
        cpu_us = (cpu_after - cpu_before) * 1e6 / int(total.group(1))
    return {
        "rps": float(rps.group(1)) if rps else None,
        "server_cpu_us": cpu_us,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(0) if errors else None,
    }


def run_http(
    wrk: str,
    variants: Sequence[tuple[str, str]],
    env: dict[str, str],
    seconds: float,
    routes: int,
    only: Sequence[str] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """`{variant: {route label: {"rps": ..., ...}}}`; `variants` are (variant, auth) pairs."""
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="chassis-bench-") as tmp:
        for variant, auth in variants:
            port = free_port()
            token_file = os.path.join(tmp, "token")
            cmd = [sys.executable, "-m", "benchmarks.serve", variant, "--port", str(port)]
            cmd += ["--routes", str(routes), "--auth", auth, "--token-out", token_file]
            proc = subprocess.Popen(
                cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                _wait_ready(port, proc)
                with open(token_file) as f:
                    token = f.read().strip()
                cases = [c for c in route_cases(token) if only is None or c.label in only]
                scripts = {c.label: _script(c, tmp) for c in cases}
                _wrk(wrk, proc.pid, port, cases[0], scripts[cases[0].label], 1)  # warm-up
                results[variant] = {
                    c.label: _wrk(wrk, proc.pid, port, c, scripts[c.label], seconds) for c in cases
                }
            except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
                results[variant] = {"error": {"message": str(exc)}}
            finally:
                if proc.poll() is None:  # a server that failed to start has exited already
                    proc.terminate()
                    try:
                        proc.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
    return results
