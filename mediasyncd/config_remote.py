"""The `[[remotes]]` and `[purge]` sections: what a remote is (its transport, roots, filters, watching)
and when its files may be purged — validated with every problem named by its key path."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mediasyncd.config_values import (
    Reader,
    as_bool,
    as_globs,
    as_nonempty_str,
    as_path,
    as_port,
    as_positive_int,
    as_roots,
    as_str,
    choice,
)
from mediasyncd.globs import PathFilter
from mediasyncd.units import parse_duration, parse_size

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
FilesVia = Literal["auto", "exec"]
SSH_KEYS = (
    "host", "port", "user", "identity_file", "host_key", "known_hosts", "keepalive_interval", "keepalive_count_max",
)  # fmt: skip
TRANSPORT_KEYS: Mapping[str, tuple[str, ...]] = {
    "ssh": SSH_KEYS,
    "local": (),
    "docker": ("container", "docker_host", "files_via"),
    "exec": ("command",),
}


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
    # A silent SSH connection is declared lost after keepalive_interval x keepalive_count_max unanswered
    # keepalives (OpenSSH's ServerAliveInterval/CountMax); its transfers resume from their partials.
    keepalive_interval: float = 15.0
    keepalive_count_max: int = 4
    purge: PurgeConfig = field(default_factory=PurgeConfig)
    transport: Transport = "ssh"
    container: str | None = None  # docker: the container's name or id
    docker_host: str | None = None  # docker: its daemon (else DOCKER_HOST from the environment)
    files_via: FilesVia = "auto"  # docker: "auto" reads a local container's files from this machine
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


def _cron(value: Any) -> str:
    """A crontab expression the purge scheduler accepts (checked with the scheduler's own conversion)."""
    from mediasyncd.purge.crontab import crontab_trigger  # lazy: APScheduler only when a schedule is set

    s = as_str(value)
    crontab_trigger(s)
    return s


def purge_section(r: Reader, t: Mapping[str, Any], p: str, d: PurgeConfig) -> PurgeConfig:
    r.check_keys(t, p, {"schedule", "older_than", "dry_run", "preserve", "min_free", "local_retention"})
    return PurgeConfig(
        schedule=r.get(t, "schedule", p, _cron, d.schedule),
        older_than=r.get(t, "older_than", p, parse_duration, d.older_than),
        dry_run=r.get(t, "dry_run", p, as_bool, d.dry_run),
        preserve=r.get(t, "preserve", p, as_globs, d.preserve),
        min_free=r.get(t, "min_free", p, parse_size, d.min_free),
        local_retention=r.get(t, "local_retention", p, parse_duration, d.local_retention),
    )


_REMOTE_KEYS = {
    "name", "host", "port", "user", "identity_file", "host_key", "known_hosts", "kind", "roots",
    "include", "exclude", "watch", "poll_interval", "settle", "connect_timeout", "purge",
    "transport", "container", "docker_host", "files_via", "command", "keepalive_interval",
    "keepalive_count_max", "reconcile_interval",
}  # fmt: skip


def _positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be longer than 0s, got {value!r}")
    return seconds


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


def check_nesting(r: Reader, key: str, roots: tuple[str, ...], library: Path) -> None:
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


def remote_section(r: Reader, t: Mapping[str, Any], p: str, purge: PurgeConfig) -> RemoteConfig | None:
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
        remote_purge = purge_section(r, r.table(t, "purge", p), f"{p}.purge", purge)
    if name is None or host is None or command is None or (transport == "docker" and container is None):
        return None
    return RemoteConfig(
        name=name,
        host=host,
        transport=transport,
        container=container,
        docker_host=r.get(t, "docker_host", p, as_nonempty_str, None),
        files_via=r.get(t, "files_via", p, choice("auto", "exec"), "auto"),
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
        keepalive_interval=r.get(t, "keepalive_interval", p, _positive_duration, 15.0),
        keepalive_count_max=r.get(t, "keepalive_count_max", p, as_positive_int, 4),
        purge=remote_purge,
    )
