"""The configuration: TOML validated into frozen dataclasses before anything uses it.

`load_config(path)` collects every problem, each named by its key path and line, and raises one
ConfigError listing them all. Nothing here touches the network; the only I/O is reading the file.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from mediasyncd.errors import ConfigError
from mediasyncd.globs import PathFilter, validate_glob
from mediasyncd.pipeline.options import PipelineOptions
from mediasyncd.units import parse_duration, parse_mode, parse_size

T = TypeVar("T")

REMOTE_NAME = re.compile(r"[A-Za-z0-9._-]+")
RESERVED_NAMES = frozenset({".", "..", ".mediasyncd"})

MEDIA_GLOBS = ("*.png", "*.jpg", "*.jpeg", "*.webp", "*.gif", "*.avif", "*.mp4", "*.webm", "*.mov")
KIND_ROOTS: Mapping[str, tuple[str, ...]] = {
    "forge": ("/workspace/stable-diffusion-webui/outputs",),
    "comfyui": ("/workspace/ComfyUI/output",),
    "generic": (),
}

Kind = Literal["forge", "comfyui", "generic"]
HostKeyPolicy = Literal["strict", "accept-new"]
WatchMode = Literal["poll", "agent"]


@dataclass(frozen=True)
class DaemonConfig:
    library: Path
    state_dir: Path
    status_listen: str = "127.0.0.1:8765"
    status_token: str | None = None
    library_min_free: int = 1 << 30

    @property
    def status_host(self) -> str:
        return self.status_listen.rsplit(":", 1)[0].strip("[]")

    @property
    def status_port(self) -> int:
        return int(self.status_listen.rsplit(":", 1)[1])

    @property
    def db_path(self) -> Path:
        return self.state_dir / "state.db"


@dataclass(frozen=True)
class TransferConfig:
    concurrency: int = 32  # files in flight per remote (small files over a WAN need many)
    in_flight: int = 64 << 20  # bytes in flight per remote: big files take turns instead of all crawling
    verify: Literal["sha256"] = "sha256"
    file_mode: int = 0o644
    dir_mode: int = 0o755
    bwlimit: int = 0
    block_size: int = 0  # 0: the server's advertised maximum read length
    max_requests: int = 64  # SFTP read requests in flight per file


@dataclass(frozen=True)
class PurgeConfig:
    schedule: str = "0 * * * *"
    older_than: float = 24 * 3600.0
    dry_run: bool = False
    preserve: tuple[str, ...] = ()
    min_free: int = 0
    local_retention: float = 0.0  # keep a purged file's library copy this long after landing; 0 = off


@dataclass(frozen=True)
class RemoteConfig:
    name: str
    host: str
    port: int | None = None
    user: str | None = None
    identity_file: Path | None = None
    host_key: HostKeyPolicy = "strict"
    known_hosts: Path | None = None
    kind: Kind = "generic"
    roots: tuple[str, ...] = ()
    include: tuple[str, ...] = MEDIA_GLOBS
    exclude: tuple[str, ...] = ()
    watch: WatchMode = "poll"
    poll_interval: float = 10.0
    settle: float = 5.0
    connect_timeout: float = 20.0
    purge: PurgeConfig = field(default_factory=PurgeConfig)

    @property
    def path_filter(self) -> PathFilter:
        return PathFilter(self.include, self.exclude)


@dataclass(frozen=True)
class Config:
    daemon: DaemonConfig
    transfer: TransferConfig = field(default_factory=TransferConfig)
    purge: PurgeConfig = field(default_factory=PurgeConfig)
    remotes: tuple[RemoteConfig, ...] = ()
    path: Path | None = None
    pipeline: PipelineOptions = field(default_factory=PipelineOptions)

    def remote(self, name: str) -> RemoteConfig:
        for r in self.remotes:
            if r.name == name:
                return r
        raise KeyError(name)


# ---------------------------------------------------------------------------------------------- search


def default_search_paths() -> list[Path]:
    return [Path("/etc/mediasyncd/config.toml"), Path("~/.config/mediasyncd/config.toml").expanduser()]


def find_config(explicit: str | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The config to use: --config, then $MEDIASYNCD_CONFIG, then the system and user paths."""
    env = os.environ if environ is None else environ
    if explicit:
        return Path(explicit).expanduser()
    if env.get("MEDIASYNCD_CONFIG"):
        return Path(env["MEDIASYNCD_CONFIG"]).expanduser()
    for candidate in default_search_paths():
        if candidate.is_file():
            return candidate
    return None


# --------------------------------------------------------------------------------------------- loading


def load_config(path: Path) -> Config:
    """Read and validate the config at `path`; raise ConfigError listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read the config file: {exc.strerror}"], str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError(["the config file is not valid UTF-8"], str(path)) from None
    return parse_config(text, source=str(path), path=path)


def parse_config(text: str, *, source: str = "config", path: Path | None = None) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"TOML syntax error: {exc}"], source) from None
    reader = _Reader(text)
    config = _build(reader, data, path)
    if reader.problems or config is None:
        raise ConfigError(reader.problems, source)
    return config


class _Reader:
    """Reads typed values out of nested TOML tables, recording every problem with its key and line."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        line = _locate(self.lines, key)
        where = f"{key} (line {line})" if line else key
        self.problems.append(f"{where}: {message}")

    def check_keys(self, table: Mapping[str, Any], prefix: str, allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                hint = difflib.get_close_matches(key, sorted(allowed), n=1)
                suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
                self.problem(_join(prefix, key), f"unknown key{suggestion}")

    def table(self, parent: Mapping[str, Any], key: str, prefix: str = "") -> Mapping[str, Any]:
        value = parent.get(key, {})
        if not isinstance(value, dict):
            self.problem(_join(prefix, key), "must be a table")
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
            self.problem(_join(prefix, key), str(exc))
            return default

    def require(
        self, table: Mapping[str, Any], key: str, prefix: str, convert: Callable[[Any], T]
    ) -> T | None:
        if key not in table:
            self.problem(_join(prefix, key), "is required")
            return None
        try:
            return convert(table[key])
        except (ValueError, TypeError) as exc:
            self.problem(_join(prefix, key), str(exc))
            return None


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\- \"']+?)\s*\]\]?\s*(#.*)?$")


def _locate(lines: list[str], key_path: str) -> int | None:
    """Best-effort line number of `key_path` (e.g. "remotes[1].port") in the TOML text."""
    m = re.fullmatch(r"(?:(\w+)(?:\[(\d+)\])?\.)?(.+)", key_path)
    if not m:
        return None
    section, index, rest = m.group(1), m.group(2), m.group(3)
    if section is None:
        section, rest = rest, ""
    leaf = rest.split(".", 1)[0] if rest else ""
    want_index = int(index) if index is not None else None
    seen_arrays = -1
    in_section = False
    section_line = None
    for number, line in enumerate(lines, start=1):
        h = _HEADER.match(line)
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


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"must be a string, got {type(value).__name__}")
    return value


def _nonempty_str(value: Any) -> str:
    s = _str(value)
    if not s.strip():
        raise ValueError("must not be empty")
    return s


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"must be true or false, got {value!r}")
    return value


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be a positive integer, got {value!r}")
    return value


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"must be a port number 1-65535, got {value!r}")
    return value


def _path(value: Any) -> Path:
    return Path(_nonempty_str(value)).expanduser()


def _choice(*allowed: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}")
        return str(value)

    return convert


def _globs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("must be a list of glob strings")
    for glob in value:
        validate_glob(glob)
    return tuple(value)


def _roots(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise TypeError("must be a non-empty list of absolute remote paths")
    for root in value:
        if not root.startswith("/"):
            raise ValueError(f"root {root!r} must be an absolute path")
        if any(part == ".." for part in root.split("/")):
            raise ValueError(f"root {root!r} must not contain '..'")
    return tuple(r.rstrip("/") or "/" for r in value)


def _listen(value: Any) -> str:
    s = _str(value)
    m = re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):(\d+)", s)
    if not m or not 0 < int(m.group(2)) < 65536:
        raise ValueError(f"must be HOST:PORT such as '127.0.0.1:8765', got {s!r}")
    return s


def _cron(value: Any) -> str:
    """A crontab expression the purge scheduler accepts (checked with the scheduler's own conversion)."""
    from mediasyncd.purge.crontab import crontab_trigger  # lazy: APScheduler only when a schedule is set

    s = _str(value)
    crontab_trigger(s)
    return s


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


# ------------------------------------------------------------------------------------------ sections


def _build(r: _Reader, data: Mapping[str, Any], path: Path | None) -> Config | None:
    r.check_keys(data, "", {"daemon", "transfer", "purge", "remotes", "pipeline"})
    daemon = _daemon(r, r.table(data, "daemon"))
    transfer = _transfer(r, r.table(data, "transfer"))
    purge = _purge(r, r.table(data, "purge"), "purge", PurgeConfig())
    raw_remotes = data.get("remotes", [])
    remotes: list[RemoteConfig] = []
    if not isinstance(raw_remotes, list):
        r.problem("remotes", "must be an array of tables: [[remotes]]")
        raw_remotes = []
    names: set[str] = set()
    for i, raw in enumerate(raw_remotes):
        prefix = f"remotes[{i}]"
        if not isinstance(raw, dict):
            r.problem(prefix, "must be a table")
            continue
        remote = _remote(r, raw, prefix, purge)
        if remote is None:
            continue
        if remote.name in names:
            r.problem(f"{prefix}.name", f"duplicate remote name {remote.name!r}")
        names.add(remote.name)
        remotes.append(remote)
    pipeline = _pipeline(r, r.table(data, "pipeline"))
    if daemon is None:
        return None
    return Config(daemon, transfer, purge, tuple(remotes), path, pipeline)


def _daemon(r: _Reader, t: Mapping[str, Any]) -> DaemonConfig | None:
    p = "daemon"
    r.check_keys(t, p, {"library", "state_dir", "status_listen", "status_token", "library_min_free"})
    library = r.require(t, "library", p, _path)
    state_dir = r.get(t, "state_dir", p, _path, Path("/var/lib/mediasyncd"))
    listen = r.get(t, "status_listen", p, _listen, "127.0.0.1:8765")
    token = r.get(t, "status_token", p, _nonempty_str, None)
    min_free = r.get(t, "library_min_free", p, parse_size, 1 << 30)
    if library is not None and not library.is_absolute():
        r.problem(f"{p}.library", f"must be an absolute path, got {str(library)!r}")
    if not is_loopback(listen.rsplit(":", 1)[0].strip("[]")) and not token:
        r.problem(f"{p}.status_listen", "a non-loopback address requires daemon.status_token")
    if library is None:
        return None
    return DaemonConfig(library, state_dir, listen, token, min_free)


def _transfer(r: _Reader, t: Mapping[str, Any]) -> TransferConfig:
    p = "transfer"
    d = TransferConfig()
    r.check_keys(
        t,
        p,
        {
            "concurrency",
            "in_flight",
            "verify",
            "file_mode",
            "dir_mode",
            "bwlimit",
            "block_size",
            "max_requests",
        },
    )
    return TransferConfig(
        concurrency=r.get(t, "concurrency", p, _positive_int, d.concurrency),
        in_flight=r.get(t, "in_flight", p, parse_size, d.in_flight),
        verify=r.get(t, "verify", p, _choice("sha256"), d.verify),
        file_mode=r.get(t, "file_mode", p, parse_mode, d.file_mode),
        dir_mode=r.get(t, "dir_mode", p, parse_mode, d.dir_mode),
        bwlimit=r.get(t, "bwlimit", p, parse_size, d.bwlimit),
        block_size=r.get(t, "block_size", p, parse_size, d.block_size),
        max_requests=r.get(t, "max_requests", p, _positive_int, d.max_requests),
    )


def _purge(r: _Reader, t: Mapping[str, Any], p: str, d: PurgeConfig) -> PurgeConfig:
    r.check_keys(t, p, {"schedule", "older_than", "dry_run", "preserve", "min_free", "local_retention"})
    return PurgeConfig(
        schedule=r.get(t, "schedule", p, _cron, d.schedule),
        older_than=r.get(t, "older_than", p, parse_duration, d.older_than),
        dry_run=r.get(t, "dry_run", p, _bool, d.dry_run),
        preserve=r.get(t, "preserve", p, _globs, d.preserve),
        min_free=r.get(t, "min_free", p, parse_size, d.min_free),
        local_retention=r.get(t, "local_retention", p, parse_duration, d.local_retention),
    )


def _pipeline(r: _Reader, t: Mapping[str, Any]) -> PipelineOptions:
    p = "pipeline"
    defaults = PipelineOptions()
    known = {f.name for f in fields(PipelineOptions)}
    r.check_keys(t, p, known)
    values: dict[str, Any] = {}
    for name in known & set(t):
        default = getattr(defaults, name)
        convert: Callable[[Any], Any]
        if isinstance(default, bool):
            convert = _bool
        elif isinstance(default, int):
            convert = _nonnegative_int
        elif isinstance(default, float):
            convert = parse_duration
        else:
            convert = _str
        values[name] = r.get(t, name, p, convert, default)
    options = PipelineOptions(**values)
    for problem in options.problems():
        key, _, message = problem.partition(": ")
        r.problem(key, message)
    return options


def _nonnegative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"must be a whole number >= 0, got {value!r}")
    return value


_REMOTE_KEYS = {
    "name", "host", "port", "user", "identity_file", "host_key", "known_hosts", "kind", "roots",
    "include", "exclude", "watch", "poll_interval", "settle", "connect_timeout", "purge",
}  # fmt: skip


def _remote_name(value: Any) -> str:
    name = _nonempty_str(value)
    if not REMOTE_NAME.fullmatch(name) or name in RESERVED_NAMES:
        raise ValueError(f"must match [A-Za-z0-9._-]+ and not be '.', '..' or '.mediasyncd', got {name!r}")
    return name


def _remote(r: _Reader, t: Mapping[str, Any], p: str, purge: PurgeConfig) -> RemoteConfig | None:
    r.check_keys(t, p, _REMOTE_KEYS)
    name = r.require(t, "name", p, _remote_name)
    host = r.require(t, "host", p, _nonempty_str)
    kind: Kind = r.get(t, "kind", p, _choice("forge", "comfyui", "generic"), "generic")
    roots = r.get(t, "roots", p, _roots, KIND_ROOTS[kind])
    if not roots and "roots" not in t:
        r.problem(f"{p}.roots", "is required when kind is 'generic'")
    watch: WatchMode = r.get(t, "watch", p, _choice("poll", "agent"), "poll")
    remote_purge = purge
    if "purge" in t:
        remote_purge = _purge(r, r.table(t, "purge", p), f"{p}.purge", purge)
    if name is None or host is None:
        return None
    return RemoteConfig(
        name=name,
        host=host,
        port=r.get(t, "port", p, _port, None),
        user=r.get(t, "user", p, _nonempty_str, None),
        identity_file=r.get(t, "identity_file", p, _path, None),
        host_key=r.get(t, "host_key", p, _choice("strict", "accept-new"), "strict"),
        known_hosts=r.get(t, "known_hosts", p, _path, None),
        kind=kind,
        roots=roots,
        include=r.get(t, "include", p, _globs, MEDIA_GLOBS),
        exclude=r.get(t, "exclude", p, _globs, ()),
        watch=watch,
        poll_interval=r.get(t, "poll_interval", p, parse_duration, 10.0),
        settle=r.get(t, "settle", p, parse_duration, 5.0),
        connect_timeout=r.get(t, "connect_timeout", p, parse_duration, 20.0),
        purge=remote_purge,
    )


# -------------------------------------------------------------------------------------------- writing


def minimal_config(library: str, state_dir: str) -> dict[str, Any]:
    """The document `mediasyncd config init` writes (with tomli-w)."""
    return {
        "daemon": {"library": library, "state_dir": state_dir, "status_listen": "127.0.0.1:8765"},
        "transfer": {"concurrency": TransferConfig().concurrency, "verify": "sha256"},
        "purge": {"schedule": "0 * * * *", "older_than": "24h", "dry_run": True},
        "remotes": [
            {
                "name": "forge1",
                "host": "my-gpu-box",
                "port": 22,
                "user": "root",
                "host_key": "accept-new",
                "kind": "forge",
                "watch": "poll",
                "poll_interval": "10s",
                "settle": "5s",
            }
        ],
    }
