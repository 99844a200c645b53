"""Limits written as text: `"100/minute"`, `"5/second"`, `"10/second;500/hour"`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi_chassis.errors import ConfigurationError

__all__ = ["Limit", "parse_limits"]

_UNITS: dict[str, tuple[str, int]] = {}
for _unit, _seconds, _aliases in (
    ("second", 1, ("s", "sec", "secs", "second", "seconds")),
    ("minute", 60, ("m", "min", "mins", "minute", "minutes")),
    ("hour", 3600, ("h", "hr", "hrs", "hour", "hours")),
    ("day", 86400, ("d", "day", "days")),
):
    for _alias in _aliases:
        _UNITS[_alias] = (_unit, _seconds)

_ITEM = re.compile(r"^\s*(\d{1,9})\s*(?:/|\s+per\s+)\s*([a-z]+)\s*$", re.IGNORECASE)
_HOW = (
    "write COUNT/UNIT with UNIT second, minute, hour or day, "
    'e.g. "100/minute" or "10/second;500/hour"'
)


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `count` requests in any window of `period` seconds."""

    count: int
    period: int
    unit: str

    def __str__(self) -> str:
        return f"{self.count}/{self.unit}"


def parse_limits(text: str, *, setting: str = "the limit") -> tuple[Limit, ...]:
    """Parse `"N/unit"` items separated by `;` into limits, shortest window first.

    Raises:
        ConfigurationError: naming `setting`, the bad text and the expected form.
    """
    items = [item for item in text.split(";") if item.strip()]
    if not items:
        raise ConfigurationError(f"{setting} is empty; {_HOW}")
    limits: dict[int, Limit] = {}
    for item in items:
        match = _ITEM.match(item)
        unit = _UNITS.get(match.group(2).lower()) if match else None
        if match is None or unit is None:
            raise ConfigurationError(f"{setting} has {item.strip()!r} in {text!r}; {_HOW}")
        count = int(match.group(1))
        if count < 1:
            raise ConfigurationError(
                f"{setting} has {item.strip()!r}: the count must be at least 1 "
                "(to block a route, do not serve it)"
            )
        name, seconds = unit
        if seconds in limits:
            raise ConfigurationError(
                f"{setting} has two limits per {name} in {text!r}; keep the one you mean"
            )
        limits[seconds] = Limit(count=count, period=seconds, unit=name)
    return tuple(limits[p] for p in sorted(limits))
