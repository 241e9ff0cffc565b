"""Reading typed values out of parsed TOML, with every problem recorded by key path and line.

Helpers for `config.py`: a Reader that collects problems instead of stopping at the first, a best-effort
line locator, and value converters (each raises ValueError or TypeError with a message that reads well
after "<key> (line N): ").
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from mediasyncd.globs import validate_glob

T = TypeVar("T")


class Reader:
    """Reads typed values out of nested TOML tables, recording every problem with its key and line."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.problems: list[str] = []
        self.warnings: list[str] = []  # valid, but almost surely not what was meant

    def problem(self, key: str, message: str) -> None:
        self.problems.append(self._at(key, message))

    def warning(self, key: str, message: str) -> None:
        self.warnings.append(self._at(key, message))

    def _at(self, key: str, message: str) -> str:
        line = locate(self.lines, key)
        where = f"{key} (line {line})" if line else key
        return f"{where}: {message}"

    def check_keys(self, table: Mapping[str, Any], prefix: str, allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                hint = difflib.get_close_matches(key, sorted(allowed), n=1)
                suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
                self.problem(join_key(prefix, key), f"unknown key{suggestion}")

    def table(self, parent: Mapping[str, Any], key: str, prefix: str = "") -> Mapping[str, Any]:
        value = parent.get(key, {})
        if not isinstance(value, dict):
            self.problem(join_key(prefix, key), "must be a table")
            return {}
        return value

    def get(
        self,
        table: Mapping[str, Any],
        key: str,
        prefix: str,
        convert: Callable[[Any], T],
        default: T,
    ) -> T:
        if key not in table:
            return default
        try:
            return convert(table[key])
        except (ValueError, TypeError) as exc:
            self.problem(join_key(prefix, key), str(exc))
            return default

    def require(
        self, table: Mapping[str, Any], key: str, prefix: str, convert: Callable[[Any], T]
    ) -> T | None:
        if key not in table:
            self.problem(join_key(prefix, key), "is required")
            return None
        try:
            return convert(table[key])
        except (ValueError, TypeError) as exc:
            self.problem(join_key(prefix, key), str(exc))
            return None


def join_key(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\- \"']+?)\s*\]\]?\s*(#.*)?$")


def locate(lines: list[str], key_path: str) -> int | None:
    """Best-effort line number of `key_path` (e.g. "remotes[1].port") in the TOML text."""
    m = re.fullmatch(r"(?:(\w+)(?:\[(\d+)\])?\.)?(.+)", key_path)
    if not m:
        return None
    section, index, rest = m.group(1), m.group(2), m.group(3)
    if section is None:
        section, rest = rest, ""
    if index is None and "." in rest:  # a nested table: [workflow.compress] keep_original = ...
        parts = rest.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            table = ".".join([section, *parts[:cut]])
            if any((h := HEADER.match(line)) and h.group(2).strip() == table for line in lines):
                section, rest = table, ".".join(parts[cut:])
                break
    leaf = rest.split(".", 1)[0] if rest else ""
    want_index = int(index) if index is not None else None
    seen_arrays = -1
    in_section = False
    section_line = None
    for number, line in enumerate(lines, start=1):
        h = HEADER.match(line)
        if h:
            name = h.group(2).strip()
            if name == section:
                if h.group(1) == "[[":
                    seen_arrays += 1
                    in_section = want_index is None or seen_arrays == want_index
                else:
                    in_section = want_index is None
                if in_section:
                    section_line = number
                    if not leaf:
                        return number
            else:
                in_section = False
            continue
        if in_section and leaf and re.match(rf"^\s*[\"']?{re.escape(leaf)}[\"']?\s*=", line):
            return number
    return section_line


# ---------------------------------------------------------------------------------------- converters


def as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"must be a string, got {type(value).__name__}")
    _no_nul(value)
    return value


def _no_nul(value: str) -> None:
    """No path, name or argument can hold a NUL (the OS would refuse it later, with a traceback)."""
    if "\0" in value:
        raise ValueError(f"must not contain a NUL character, got {value!r}")


def as_nonempty_str(value: Any) -> str:
    s = as_str(value)
    if not s.strip():
        raise ValueError("must not be empty")
    return s


def as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"must be true or false, got {value!r}")
    return value


MAX_COUNT = 1_000_000  # the largest count any key means (files in flight, workers, ...): more is a typo


def as_positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be a positive integer, got {value!r}")
    if value > MAX_COUNT:
        raise ValueError(f"must be at most {MAX_COUNT:,}, got {value!r}")
    return value


def as_port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"must be a port number 1-65535, got {value!r}")
    return value


def as_path(value: Any) -> Path:
    return Path(as_nonempty_str(value)).expanduser()


def choice(*allowed: str) -> Callable[[Any], Any]:
    """One of `allowed`, in any letter case ("Forge" is "forge")."""

    def convert(value: Any) -> str:
        folded = value.lower() if isinstance(value, str) else value
        if folded not in allowed:
            raise ValueError(f"must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}")
        return str(folded)

    return convert


def as_globs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("must be a list of glob strings")
    for glob in value:
        _no_nul(glob)
        validate_glob(glob)
    return tuple(value)


def as_roots(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise TypeError("must be a non-empty list of absolute remote paths")
    for root in value:
        _no_nul(root)
        if not root.startswith("/"):
            raise ValueError(f"root {root!r} must be an absolute path")
        if any(part == ".." for part in root.split("/")):
            raise ValueError(f"root {root!r} must not contain '..'")
    return tuple(r.rstrip("/") or "/" for r in value)


def as_listen(value: Any) -> str:
    s = as_str(value)
    m = re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):(\d+)", s)
    if not m or not 0 < int(m.group(2)) < 65536:
        raise ValueError(f"must be HOST:PORT such as '127.0.0.1:8765', got {s!r}")
    return s


def as_nonnegative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"must be a whole number >= 0, got {value!r}")
    if value > 2**63 - 1:
        raise ValueError(f"must be at most 2^63 - 1, got {value!r}")
    return value
