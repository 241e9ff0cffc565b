"""The configuration: TOML validated into frozen dataclasses before anything uses it.

`load_config(path)` collects every problem, each named by its key path and line, and raises one
ConfigError listing them all. Nothing here touches the network; the only I/O is reading the file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from mediasyncd.config_sinks import SinkConfig, sinks_section
from mediasyncd.config_values import (
    Reader,
    as_bool,
    as_globs,
    as_listen,
    as_nonempty_str,
    as_nonnegative_int,
    as_path,
    as_port,
    as_positive_int,
    as_roots,
    as_str,
    choice,
)
from mediasyncd.config_workflow import WorkflowConfig, workflow_section
from mediasyncd.errors import ConfigError
from mediasyncd.globs import PathFilter, glob_lint
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
WatchMode = Literal["auto", "agent", "poll"]
Transport = Literal["ssh", "local", "docker", "exec"]
SSH_KEYS = ("host", "port", "user", "identity_file", "host_key", "known_hosts")
TRANSPORT_KEYS: Mapping[str, tuple[str, ...]] = {
    "ssh": SSH_KEYS,
    "local": (),
    "docker": ("container", "docker_host"),
    "exec": ("command",),
}


@dataclass(frozen=True)
class DaemonConfig:
    library: Path
    state_dir: Path
    status_listen: str = "127.0.0.1:8765"
    status_token: str | None = None
    library_min_free: int = 1 << 30
    event_retention: float = 30 * 86400.0
    metrics_public: bool = False  # /metrics without the token (for a scraper on a trusted network)

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
    in_flight: int = 64 << 20  # bytes in flight per remote: big files go two at a time, not all crawling
    verify: Literal["sha256"] = "sha256"
    file_mode: int = 0o644
    dir_mode: int = 0o755
    bwlimit: int = 0
    block_size: int = 0  # 0: the server's advertised maximum read length
    batch_below: int = 1 << 20  # files smaller than this come in one tar stream per batch; 0 = never
    batch_files: int = 1000  # files per tar stream at most
    max_requests: int = 16  # SFTP read requests in flight per file (16 x 255 KiB = 4 MiB: several WAN BDPs)


@dataclass(frozen=True)
class PurgeConfig:
    schedule: str = "0 * * * *"
    older_than: float = 24 * 3600.0
    dry_run: bool = False
    preserve: tuple[str, ...] = ()
    min_free: int = 0
    local_retention: float = 0.0  # keep a purged file's library copy this long after landing; 0 = off
    after_stages: tuple[str, ...] = ()  # [workflow] purge_after: stages verified before a file may go


@dataclass(frozen=True)
class RemoteConfig:
    name: str
    host: str = ""  # ssh only
    port: int | None = None
    user: str | None = None
    identity_file: Path | None = None
    host_key: HostKeyPolicy = "strict"
    known_hosts: Path | None = None
    kind: Kind = "generic"
    roots: tuple[str, ...] = ()
    include: tuple[str, ...] = MEDIA_GLOBS
    exclude: tuple[str, ...] = ()
    watch: WatchMode = "auto"
    poll_interval: float = 10.0
    settle: float = 5.0
    reconcile_interval: float = 600.0  # agent mode: a full listing this often anyway
    connect_timeout: float = 20.0
    purge: PurgeConfig = field(default_factory=PurgeConfig)
    transport: Transport = "ssh"
    container: str | None = None  # docker: the container's name or id
    docker_host: str | None = None  # docker: its daemon (else DOCKER_HOST from the environment)
    command: tuple[str, ...] = ()  # exec: argv of a command giving a POSIX shell on stdin/stdout

    @property
    def shell_command(self) -> tuple[str, ...]:
        """The argv that yields a shell on the source (docker and exec transports)."""
        if self.transport == "docker":
            host = ("-H", self.docker_host) if self.docker_host else ()
            return ("docker", *host, "exec", "-i", self.container or "", "sh")
        return self.command

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
    sinks: tuple[SinkConfig, ...] = ()
    workflow: WorkflowConfig = field(default_factory=WorkflowConfig)
    warnings: tuple[str, ...] = field(default=(), compare=False)  # `config check` and the daemon show them

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
    reader = Reader(text)
    config = _build(reader, data, path)
    if reader.problems or config is None:
        raise ConfigError(reader.problems, source)
    _lint_globs(reader, data)
    return replace(config, warnings=tuple(reader.warnings))


def _lint_globs(r: Reader, data: Mapping[str, Any]) -> None:
    """Warn about include/exclude/preserve globs that can never match what they were likely meant for."""
    lists: list[tuple[str, Any]] = [("purge.preserve", data.get("purge", {}).get("preserve"))]
    for i, remote in enumerate(data.get("remotes", [])):
        lists += [(f"remotes[{i}].{key}", remote.get(key)) for key in ("include", "exclude")]
        lists.append((f"remotes[{i}].purge.preserve", remote.get("purge", {}).get("preserve")))
    for key, globs in lists:
        for glob in globs or ():
            hint = glob_lint(glob)
            if hint is not None:
                r.warning(key, hint)


def daemon_section(path: Path) -> DaemonConfig | None:
    """The `[daemon]` table of the config at `path` when it alone is valid, whatever else is wrong in
    the file: what `status` needs to find the daemon still running on its last good config."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    reader = Reader("")
    table = reader.table(data, "daemon")
    daemon = _daemon(reader, table)
    return None if reader.problems else daemon


def _cron(value: Any) -> str:
    """A crontab expression the purge scheduler accepts (checked with the scheduler's own conversion)."""
    from mediasyncd.purge.crontab import crontab_trigger  # lazy: APScheduler only when a schedule is set

    s = as_str(value)
    crontab_trigger(s)
    return s


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


# ------------------------------------------------------------------------------------------ sections


def _build(r: Reader, data: Mapping[str, Any], path: Path | None) -> Config | None:
    r.check_keys(data, "", {"daemon", "transfer", "purge", "remotes", "pipeline", "sinks", "workflow"})
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
    sinks = sinks_section(r, data.get("sinks"))
    workflow = workflow_section(r, data)
    if workflow.purge_after:
        gate = workflow.purge_after
        remotes = [replace(x, purge=replace(x.purge, after_stages=gate)) for x in remotes]
    if daemon is None:
        return None
    for i, remote in enumerate(remotes):
        if remote.transport == "local":
            _check_nesting(r, f"remotes[{i}].roots", remote.roots, daemon.library)
    return Config(daemon, transfer, purge, tuple(remotes), path, pipeline, sinks, workflow)


def _daemon(r: Reader, t: Mapping[str, Any]) -> DaemonConfig | None:
    p = "daemon"
    r.check_keys(
        t,
        p,
        {
            "library",
            "state_dir",
            "status_listen",
            "status_token",
            "library_min_free",
            "event_retention",
            "metrics_public",
        },
    )
    library = r.require(t, "library", p, as_path)
    state_dir = r.get(t, "state_dir", p, as_path, Path("/var/lib/mediasyncd"))
    listen = r.get(t, "status_listen", p, as_listen, "127.0.0.1:8765")
    token = r.get(t, "status_token", p, as_nonempty_str, None)
    min_free = r.get(t, "library_min_free", p, parse_size, 1 << 30)
    retention = r.get(t, "event_retention", p, parse_duration, 30 * 86400.0)
    metrics_public = r.get(t, "metrics_public", p, as_bool, False)
    if library is not None and not library.is_absolute():
        r.problem(f"{p}.library", f"must be an absolute path, got {str(library)!r}")
    if not is_loopback(listen.rsplit(":", 1)[0].strip("[]")) and not token:
        r.problem(f"{p}.status_listen", "a non-loopback address requires daemon.status_token")
    if library is None:
        return None
    return DaemonConfig(library, state_dir, listen, token, min_free, retention, metrics_public)


def _transfer(r: Reader, t: Mapping[str, Any]) -> TransferConfig:
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
            "batch_below",
            "batch_files",
        },
    )
    return TransferConfig(
        concurrency=r.get(t, "concurrency", p, as_positive_int, d.concurrency),
        in_flight=r.get(t, "in_flight", p, parse_size, d.in_flight),
        verify=r.get(t, "verify", p, choice("sha256"), d.verify),
        file_mode=r.get(t, "file_mode", p, parse_mode, d.file_mode),
        dir_mode=r.get(t, "dir_mode", p, parse_mode, d.dir_mode),
        bwlimit=r.get(t, "bwlimit", p, parse_size, d.bwlimit),
        block_size=r.get(t, "block_size", p, parse_size, d.block_size),
        max_requests=r.get(t, "max_requests", p, as_positive_int, d.max_requests),
        batch_below=r.get(t, "batch_below", p, parse_size, d.batch_below),
        batch_files=r.get(t, "batch_files", p, as_positive_int, d.batch_files),
    )


def _purge(r: Reader, t: Mapping[str, Any], p: str, d: PurgeConfig) -> PurgeConfig:
    r.check_keys(t, p, {"schedule", "older_than", "dry_run", "preserve", "min_free", "local_retention"})
    return PurgeConfig(
        schedule=r.get(t, "schedule", p, _cron, d.schedule),
        older_than=r.get(t, "older_than", p, parse_duration, d.older_than),
        dry_run=r.get(t, "dry_run", p, as_bool, d.dry_run),
        preserve=r.get(t, "preserve", p, as_globs, d.preserve),
        min_free=r.get(t, "min_free", p, parse_size, d.min_free),
        local_retention=r.get(t, "local_retention", p, parse_duration, d.local_retention),
    )


def _pipeline(r: Reader, t: Mapping[str, Any]) -> PipelineOptions:
    p = "pipeline"
    defaults = PipelineOptions()
    known = {f.name for f in fields(PipelineOptions)}
    r.check_keys(t, p, known)
    values: dict[str, Any] = {}
    for name in known & set(t):
        default = getattr(defaults, name)
        convert: Callable[[Any], Any]
        if isinstance(default, bool):
            convert = as_bool
        elif isinstance(default, int):
            convert = as_nonnegative_int
        elif isinstance(default, float):
            convert = parse_duration
        else:
            convert = as_str
        values[name] = r.get(t, name, p, convert, default)
    options = PipelineOptions(**values)
    for problem in options.problems():
        key, _, message = problem.partition(": ")
        r.problem(key, message)
    return options


_REMOTE_KEYS = {
    "name", "host", "port", "user", "identity_file", "host_key", "known_hosts", "kind", "roots",
    "include", "exclude", "watch", "poll_interval", "settle", "connect_timeout", "purge",
    "transport", "container", "docker_host", "command",
    "reconcile_interval",
}  # fmt: skip


def _remote_name(value: Any) -> str:
    name = as_nonempty_str(value)
    if not REMOTE_NAME.fullmatch(name) or name in RESERVED_NAMES:
        raise ValueError(f"must match [A-Za-z0-9._-]+ and not be '.', '..' or '.mediasyncd', got {name!r}")
    return name


def _command(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise TypeError('must be a non-empty list of strings (the command\'s argv), e.g. ["sh"]')
    if not value[0].strip():
        raise ValueError("the program (its first word) must not be empty")
    return tuple(as_str(v) for v in value)


def _transport_keys(r: Reader, t: Mapping[str, Any], p: str, transport: str) -> None:
    """Keys that belong to another transport are errors (an SSH `host` on a docker remote, ...)."""
    for other, keys in TRANSPORT_KEYS.items():
        if other == transport:
            continue
        for key in keys:
            if key in t and key not in TRANSPORT_KEYS[transport]:
                r.problem(f"{p}.{key}", f"is only for transport {other!r}, not {transport!r}")


def _check_nesting(r: Reader, key: str, roots: tuple[str, ...], library: Path) -> None:
    """A local root inside the library, or the library inside a root, would pull its own landings."""
    lib_forms = {os.path.normpath(library), os.path.realpath(library)}
    for root in roots:
        for root_form in {os.path.normpath(root), os.path.realpath(root)}:
            for lib in lib_forms:
                if _inside(lib, root_form):
                    r.problem(
                        key, f"the library {str(library)!r} (daemon.library) is inside the root {root!r}"
                    )
                    return
                if _inside(root_form, lib):
                    r.problem(
                        key, f"the root {root!r} is inside the library {str(library)!r} (daemon.library)"
                    )
                    return


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _remote(r: Reader, t: Mapping[str, Any], p: str, purge: PurgeConfig) -> RemoteConfig | None:
    r.check_keys(t, p, _REMOTE_KEYS)
    name = r.require(t, "name", p, _remote_name)
    transport: Transport = r.get(t, "transport", p, choice("ssh", "local", "docker", "exec"), "ssh")
    _transport_keys(r, t, p, transport)
    host: str | None = ""
    container: str | None = None
    command: tuple[str, ...] | None = ()
    if transport == "ssh":
        host = r.require(t, "host", p, as_nonempty_str)
    elif transport == "docker":
        container = r.require(t, "container", p, as_nonempty_str)
    elif transport == "exec":
        command = r.require(t, "command", p, _command)
    kind: Kind = r.get(t, "kind", p, choice("forge", "comfyui", "generic"), "generic")
    roots = r.get(t, "roots", p, as_roots, KIND_ROOTS[kind])
    if not roots and "roots" not in t:
        r.problem(f"{p}.roots", "is required when kind is 'generic'")
    watch: WatchMode = r.get(t, "watch", p, choice("auto", "agent", "poll"), "auto")
    remote_purge = purge
    if "purge" in t:
        remote_purge = _purge(r, r.table(t, "purge", p), f"{p}.purge", purge)
    if name is None or host is None or command is None or (transport == "docker" and container is None):
        return None
    return RemoteConfig(
        name=name,
        host=host,
        transport=transport,
        container=container,
        docker_host=r.get(t, "docker_host", p, as_nonempty_str, None),
        command=command,
        port=r.get(t, "port", p, as_port, None),
        user=r.get(t, "user", p, as_nonempty_str, None),
        identity_file=r.get(t, "identity_file", p, as_path, None),
        host_key=r.get(t, "host_key", p, choice("strict", "accept-new"), "strict"),
        known_hosts=r.get(t, "known_hosts", p, as_path, None),
        kind=kind,
        roots=roots,
        include=r.get(t, "include", p, as_globs, MEDIA_GLOBS),
        exclude=r.get(t, "exclude", p, as_globs, ()),
        watch=watch,
        poll_interval=r.get(t, "poll_interval", p, parse_duration, 10.0),
        settle=r.get(t, "settle", p, parse_duration, 5.0),
        reconcile_interval=r.get(t, "reconcile_interval", p, parse_duration, 600.0),
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
                "watch": "auto",
                "poll_interval": "10s",
                "settle": "5s",
            }
        ],
    }
