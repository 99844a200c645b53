"""The `fastapi-chassis` command: `demo` serves the showcase app, `check` validates settings."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from fastapi import FastAPI
from pydantic import ValidationError
from pydantic_settings import SettingsError

from fastapi_chassis.app import install
from fastapi_chassis.errors import ConfigurationError
from fastapi_chassis.settings import ChassisSettings, LoggingSettings

__all__ = ["main"]


def _load_settings_class(spec: str) -> type[ChassisSettings]:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"--settings {spec!r} is not of the form 'package.module:Class'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"--settings: cannot import {module_name!r}: {exc}") from exc
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, ChassisSettings)):
        raise ConfigurationError(f"--settings: {spec!r} is not a ChassisSettings subclass")
    return cls


def _quiet(settings: ChassisSettings) -> LoggingSettings:
    # The trial install must not reconfigure this process' logging.
    return settings.logging.model_copy(update={"configure": False})


def _check(spec: str | None) -> int:
    try:
        cls = _load_settings_class(spec) if spec else ChassisSettings
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        settings = cls()
    except ValidationError as exc:
        print("settings are invalid:", file=sys.stderr)
        for error in exc.errors(include_input=False, include_url=False):
            location = ".".join(str(part) for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            print(f"{location}: {message}" if location else message, file=sys.stderr)
        return 1
    except SettingsError as exc:
        # e.g. a list setting given as plain text instead of JSON
        print(f"settings are invalid: {exc}", file=sys.stderr)
        return 1
    try:
        # Wiring checks what the models alone cannot (key material, proxy CIDRs, header
        # values), exactly as the service's own startup would.
        install(FastAPI(), settings.model_copy(update={"logging": _quiet(settings)}))
    except ConfigurationError as exc:
        print(f"settings are invalid: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(settings.masked(), indent=2, sort_keys=False))
    return 0


def _demo(host: str, port: int) -> int:
    try:
        import uvicorn
    except ImportError:
        print('error: the demo needs uvicorn: pip install "fastapi-chassis[demo]"', file=sys.stderr)
        return 2
    uvicorn.run("fastapi_chassis.demo:app", host=host, port=port, server_header=False)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="fastapi-chassis", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="serve the showcase app (no Redis, no collector)")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    check = commands.add_parser(
        "check", help="print the effective settings (secrets masked); exit 1 if invalid"
    )
    check.add_argument("--settings", help="settings class as 'package.module:Class'")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args.host, args.port)
    return _check(args.settings)
