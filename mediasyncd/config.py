"""The configuration: TOML validated into frozen dataclasses before anything uses it.

`load_config(path)` collects every problem, each named by its key path and line, and raises one
ConfigError listing them all. Nothing here touches the network; the only I/O is reading the file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from mediasyncd.config_remote import KIND_ROOTS as KIND_ROOTS
from mediasyncd.config_remote import MEDIA_GLOBS as MEDIA_GLOBS
from mediasyncd.config_remote import PurgeConfig as PurgeConfig
from mediasyncd.config_remote import RemoteConfig as RemoteConfig
from mediasyncd.config_remote import check_nesting, purge_section, remote_section
from mediasyncd.config_sinks import SinkConfig, sinks_section
from mediasyncd.config_values import (
    Reader,
    as_bool,
    as_listen,
    as_nonempty_str,
    as_nonnegative_int,
    as_path,
    as_positive_int,
    as_str,
    choice,
)
from mediasyncd.config_workflow import WorkflowConfig, workflow_section
from mediasyncd.errors import ConfigError
from mediasyncd.globs import glob_lint
from mediasyncd.pipeline.options import PipelineOptions
from mediasyncd.units import parse_duration, parse_mode, parse_size

T = TypeVar("T")


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
    stream_above: int = 128 << 20  # SSH: files of at least this size may come over an exec channel (`cat`)
    # instead of SFTP, where the remote has a shell and a hasher; 0 = never
    # "auto" (default): the exec channel on a fast link only (round trip <= 5 ms); "exec": on any link;
    # "sftp": never (SFTP costs the remote ~0.4 CPU-s/GB less; the exec channel stays well under rsync's)
    large_files: Literal["auto", "exec", "sftp"] = "auto"


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


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


# ------------------------------------------------------------------------------------------ sections


def _build(r: Reader, data: Mapping[str, Any], path: Path | None) -> Config | None:
    r.check_keys(data, "", {"daemon", "transfer", "purge", "remotes", "pipeline", "sinks", "workflow"})
    daemon = _daemon(r, r.table(data, "daemon"))
    transfer = _transfer(r, r.table(data, "transfer"))
    purge = purge_section(r, r.table(data, "purge"), "purge", PurgeConfig())
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
        remote = remote_section(r, raw, prefix, purge)
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
            check_nesting(r, f"remotes[{i}].roots", remote.roots, daemon.library)
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
            "stream_above",
            "large_files",
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
        stream_above=r.get(t, "stream_above", p, parse_size, d.stream_above),
        large_files=r.get(t, "large_files", p, choice("auto", "exec", "sftp"), d.large_files),
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
