"""Parsing of the config's human units: durations, sizes, octal modes. Pure functions."""

from __future__ import annotations

import math
import re

MAX_DURATION = 100 * 365 * 86400.0  # a century: anything longer is a typo (and overflows timers)
MAX_SIZE = 2**63 - 1  # SQLite's largest integer
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_DURATION_FACTOR = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$")
_SIZE_FACTOR = {
    None: 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}


def parse_duration(value: object) -> float:
    """Seconds from "90s", "1.5h", "1d", "2w", or a plain number of seconds (finite, at most a century)."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value!r}")
        seconds = float(value) if not isinstance(value, int) or value <= MAX_DURATION else math.inf
    elif isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            seconds = float(m.group(1)) * _DURATION_FACTOR[m.group(2)]
    if seconds is None:
        raise ValueError(f"expected a duration like '10s', '5m', '24h', '1d', '2w', got {value!r}")
    if not math.isfinite(seconds) or seconds > MAX_DURATION:
        raise ValueError(f"duration must be at most 100 years (36500d), got {value!r}")
    return seconds


def parse_size(value: object) -> int:
    """Bytes from "200MiB", "20GB", "0" or a plain integer (at most 2^63 - 1)."""
    size: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"size must not be negative, got {value!r}")
        size = value
    elif isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            number = float(m.group(1)) * _SIZE_FACTOR[m.group(2)]
            size = int(number) if math.isfinite(number) and number <= MAX_SIZE else MAX_SIZE + 1
    if size is None:
        raise ValueError(f"expected a size like '200MiB', '20GB' or bytes, got {value!r}")
    if size > MAX_SIZE:
        raise ValueError(f"size must be at most 8 EiB (2^63 - 1 bytes), got {value!r}")
    return size


def parse_mode(value: object) -> int:
    """Permission bits from an octal string such as "0644"."""
    if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3,4}", value.strip()):
        mode = int(value, 8)
        if mode <= 0o7777:
            return mode
    raise ValueError(f"expected an octal mode string like '0644', got {value!r}")


def format_size(n: float) -> str:
    """Human-readable binary size, e.g. 1.5 MiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
