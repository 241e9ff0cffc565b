"""`[[sinks]]` (SPEC §3.7, §3.11): where the event log is delivered, validated like the rest of the config.

Secrets (a DSN, a webhook key) are read here, at load time, so that an unreadable or malformed secret file
is a config error with its key path and line; they never appear in a repr, a log line or `/status`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mediasyncd.config_values import Reader, as_nonempty_str, as_path, as_positive_int, choice
from mediasyncd.state.events import EventType
from mediasyncd.units import parse_duration

ALL: tuple[str, ...] = ("*",)
SinkType = Literal["postgresql", "webhook", "plugin"]
SINK_TYPES = ("postgresql", "webhook", "plugin")
SINK_NAME = re.compile(r"[A-Za-z0-9._-]+")
SQL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
DEFAULT_BATCH: Mapping[str, int] = {"postgresql": 500, "webhook": 1, "plugin": 100}

_COMMON = {"name", "type", "events", "max_attempts", "batch", "enabled"}
_KEYS: Mapping[str, set[str]] = {
    "postgresql": _COMMON | {"dsn", "dsn_file", "schema"},
    "webhook": _COMMON | {"url", "secret_file", "timeout"},
    "plugin": _COMMON | {"plugin", "entry_point", "options", "timeout"},
}


@dataclass(frozen=True)
class SinkConfig:
    name: str
    type: SinkType
    events: tuple[str, ...] = ("*",)
    batch: int = 1
    max_attempts: int = 5  # a rejected ("poison") event is parked after this many attempts
    enabled: bool = True
    dsn: str | None = field(default=None, repr=False)  # postgresql
    schema: str = "public"
    url: str | None = None  # webhook
    secret: bytes | None = field(default=None, repr=False)
    timeout: float = 15.0  # webhook: per request; plugin: per call
    plugin: str | None = None  # plugin: the entry-point name in the group mediasyncd.sinks
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def consumer(self) -> str:
        """The sink's row in the event log's consumers (its acknowledged position)."""
        return consumer_name(self.name)

    def wants(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events

    def fingerprint(self) -> str:
        """Changes whenever anything in this sink's config does (a 410 disables a sink until then)."""
        return hashlib.sha256(repr((self, self.dsn, self.secret)).encode()).hexdigest()[:16]


def consumer_name(sink: str) -> str:
    return f"sink:{sink}"


def sinks_section(r: Reader, raw: Any) -> tuple[SinkConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        r.problem("sinks", "must be an array of tables: [[sinks]]")
        return ()
    out: list[SinkConfig] = []
    names: set[str] = set()
    for i, table in enumerate(raw):
        prefix = f"sinks[{i}]"
        if not isinstance(table, dict):
            r.problem(prefix, "must be a table")
            continue
        name = table.get("name")
        if isinstance(name, str) and name in names:
            r.problem(f"{prefix}.name", f"duplicate sink name {name!r}")
        names.add(str(name))
        sink = _sink(r, table, prefix)
        if sink is not None:
            out.append(sink)
    return tuple(out)


def _sink(r: Reader, t: Mapping[str, Any], p: str) -> SinkConfig | None:
    name = r.require(t, "name", p, _sink_name)
    kind: SinkType | None = r.require(t, "type", p, choice(*SINK_TYPES))
    if kind is None:
        return None
    r.check_keys(t, p, _KEYS[kind])
    common: dict[str, Any] = {
        "events": r.get(t, "events", p, _event_types, ALL),
        "batch": r.get(t, "batch", p, as_positive_int, DEFAULT_BATCH[kind]),
        "max_attempts": r.get(t, "max_attempts", p, as_positive_int, 5),
        "enabled": r.get(t, "enabled", p, _bool, True),
    }
    before = len(r.problems)
    if kind == "postgresql":
        more = _postgresql(r, t, p)
    elif kind == "webhook":
        more = _webhook(r, t, p)
    else:
        more = _plugin(r, t, p)
    if name is None or len(r.problems) > before:
        return None
    return SinkConfig(name=name, type=kind, **common, **more)


def _postgresql(r: Reader, t: Mapping[str, Any], p: str) -> dict[str, Any]:
    dsn: str | None = r.get(t, "dsn", p, as_nonempty_str, None)
    if "dsn" in t and "dsn_file" in t:
        r.problem(f"{p}.dsn_file", "give either dsn or dsn_file, not both")
    elif "dsn_file" in t:
        dsn = r.get(t, "dsn_file", p, _dsn_file, None)
    elif "dsn" not in t:
        r.problem(f"{p}.dsn", "is required for a postgresql sink (or dsn_file)")
    if dsn is not None and not dsn.startswith(("postgresql://", "postgres://")):
        r.problem(f"{p}.dsn", "must be a libpq URL: postgresql://user@host/db")
    schema = r.get(t, "schema", p, _sql_name, "public")
    return {"dsn": dsn, "schema": schema}


def _webhook(r: Reader, t: Mapping[str, Any], p: str) -> dict[str, Any]:
    url = r.require(t, "url", p, _http_url)
    secret = r.require(t, "secret_file", p, read_webhook_secret)
    timeout = r.get(t, "timeout", p, parse_duration, 15.0)
    return {"url": url, "secret": secret, "timeout": timeout}


def _plugin(r: Reader, t: Mapping[str, Any], p: str) -> dict[str, Any]:
    if "plugin" in t and "entry_point" in t:
        r.problem(f"{p}.entry_point", "give either plugin or entry_point, not both")
    key = "entry_point" if "entry_point" in t else "plugin"
    plugin = r.require(t, key, p, as_nonempty_str)
    options = r.table(t, "options", p)
    timeout = r.get(t, "timeout", p, parse_duration, 15.0)
    return {"plugin": plugin, "options": dict(options), "timeout": timeout}


# ---------------------------------------------------------------------------------------- converters


def _sink_name(value: Any) -> str:
    name = as_nonempty_str(value)
    if not SINK_NAME.fullmatch(name):
        raise ValueError(f"must match [A-Za-z0-9._-]+, got {name!r}")
    return name


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"must be true or false, got {value!r}")
    return value


def _event_types(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise TypeError('must be a non-empty list of event types, or ["*"]')
    known = {str(t) for t in EventType}
    unknown = sorted(set(value) - known - {"*"})
    if unknown:
        raise ValueError(f"unknown event type(s) {', '.join(unknown)}; known: *, {', '.join(sorted(known))}")
    return tuple(value)


def _sql_name(value: Any) -> str:
    name = as_nonempty_str(value)
    if not SQL_NAME.fullmatch(name):
        raise ValueError(f"must be a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*), got {name!r}")
    return name


def _http_url(value: Any) -> str:
    url = as_nonempty_str(value)
    if not re.match(r"https?://[^/\s]+", url):
        raise ValueError(f"must be an http:// or https:// URL, got {url!r}")
    return url


def _dsn_file(value: Any) -> str:
    path = as_path(value)
    try:
        dsn = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    if not dsn:
        raise ValueError(f"{path} is empty")
    return dsn


def read_webhook_secret(value: Any) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret file (surrounding whitespace ignored)."""
    path: Path = as_path(value)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read the secret file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"the secret file {path} is not text") from None
    return parse_webhook_secret(text, str(path))


def parse_webhook_secret(text: str, where: str = "the secret") -> bytes:
    if not text.startswith("whsec_"):
        raise ValueError(f"{where} must hold 'whsec_<base64>' (Standard Webhooks)")
    try:
        key = base64.b64decode(text.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{where}: the part after 'whsec_' is not valid base64") from None
    if len(key) < 16:
        raise ValueError(f"{where}: the key is too short ({len(key)} bytes; use at least 24 random bytes)")
    return key
