"""The doctor's verdicts: facts about this machine and each remote in, check lines out. No I/O here
(`gather` collects the facts), so every decision is a fast unit test.

A line is `ok`, `warn` (works, but worse or not yet) or `FAIL` (syncing or the daemon will not work as
configured); any FAIL makes the command exit 1.
"""

from __future__ import annotations

import json
import posixpath
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mediasyncd.config import DaemonConfig, RemoteConfig
from mediasyncd.sources import Capabilities
from mediasyncd.sources.survey import DIR_COUNT_LIMIT, RootSurvey, Survey
from mediasyncd.units import format_size

Level = Literal["ok", "warn", "fail"]
MARKS: Mapping[Level, str] = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}
EXIT_FAILED = 1  # a check failed (78 stays the config's own errors)
AGENT_PYTHON = (3, 8)  # the remote agent's oldest Python
SHOWN_NAMES = 8  # names of a missing root's parent shown
FORGE_DIR = "stable-diffusion-webui-forge"
A1111_DIR = "stable-diffusion-webui"
NO_AGENT = "the remote agent (watch = agent) will not run; polling works"


@dataclass(frozen=True)
class Check:
    level: Level
    text: str
    detail: tuple[str, ...] = ()  # lines shown under it


@dataclass(frozen=True)
class Section:
    title: str
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class LocalFacts:
    library_exists: bool
    library_writable: bool
    library_mount: Path | None  # the mount point holding the library (the library itself if it is one)
    library_free: int | None
    state_dir_exists: bool
    state_dir_writable: bool  # the state dir, or the nearest existing parent it would be created in


@dataclass(frozen=True)
class Reached:
    """A remote the doctor connected to, and what it found there."""

    caps: Capabilities
    shell: bool  # the source has a command channel
    survey: Survey
    free: Mapping[str, int | None]  # free bytes per root that is a directory


@dataclass(frozen=True)
class Unreached:
    reason: str  # the connect path's own message (host key, authentication, timeout, ...)


# ------------------------------------------------------------------------------------ this machine


def local_checks(daemon: DaemonConfig, facts: LocalFacts, remotes: int) -> Section:
    return Section("this machine", (*_library(daemon, facts), _state_dir(daemon, facts), *_remotes(remotes)))


def _library(daemon: DaemonConfig, facts: LocalFacts) -> list[Check]:
    lib = daemon.library
    if not facts.library_exists:
        return [
            Check(
                "warn",
                f"library {lib} does not exist: nothing lands until it does (it is never created; "
                "a NAS may mount late)",
            )
        ]
    if not facts.library_writable:
        return [Check("fail", f"library {lib} is not writable by this user")]
    where = (
        "a mount point"
        if facts.library_mount == lib
        else f"on the filesystem mounted at {facts.library_mount}"
    )
    free = facts.library_free
    if free is not None and free < daemon.library_min_free:
        text = (
            f"library {lib}: {format_size(free)} free, below daemon.library_min_free "
            f"({format_size(daemon.library_min_free)}): transfers wait for room"
        )
        return [Check("warn", text)]
    shown = "free space unknown" if free is None else f"{format_size(free)} free"
    return [Check("ok", f"library {lib}: {shown}, {where}")]


def _state_dir(daemon: DaemonConfig, facts: LocalFacts) -> Check:
    d = daemon.state_dir
    if not facts.state_dir_writable:
        return Check("fail", f"state dir {d} is not writable by this user (nor can it be created)")
    return Check(
        "ok", f"state dir {d}: writable" if facts.state_dir_exists else f"state dir {d}: created at start"
    )


def _remotes(count: int) -> list[Check]:
    return [] if count else [Check("warn", "no [[remotes]] configured: nothing will be synced")]


# ------------------------------------------------------------------------------------ a remote


def remote_checks(remote: RemoteConfig, facts: Reached | Unreached) -> Section:
    title = f"remote {remote.name} ({_address(remote)})"
    if isinstance(facts, Unreached):
        return Section(title, (Check("fail", facts.reason),))
    checks = [Check("ok", _CONNECTED.get(remote.transport, "connected; host key accepted"))]
    checks += [_root(r, facts.free.get(r.root)) for r in facts.survey.roots]
    if facts.caps.transport != "local":
        checks += _tools(facts.caps, facts.shell)
    if facts.survey.host_known:
        checks += [_python(facts.survey.python), _inotify(facts.survey)]
    if not remote.purge.dry_run:
        checks += _purge(facts.survey.roots)
    return Section(title, tuple(checks))


_CONNECTED = {
    "local": "a folder on this machine",
    "docker": "a shell answered through docker exec",
    "exec": "a shell answered through the command",
}


def _address(remote: RemoteConfig) -> str:
    if remote.transport == "local":
        return "local"
    if remote.transport == "docker":
        host = f" on {remote.docker_host}" if remote.docker_host else ""
        return f"docker container {remote.container}{host}"
    if remote.transport == "exec":
        return "exec: " + " ".join(shlex.quote(word) for word in remote.command)
    user = f"{remote.user}@" if remote.user else ""
    port = f":{remote.port}" if remote.port else ""
    return f"{user}{remote.host}{port}"


def _root(root: RootSurvey, free: int | None) -> Check:
    if root.state == "dir":
        shown = "free space unknown" if free is None else f"{format_size(free)} free"
        return Check("ok", f"root {root.root}: a directory, {shown}")
    what = "does not exist" if root.state == "missing" else "is not a directory"
    return Check("fail", f"root {root.root} {what}", _parent_detail(root))


def _parent_detail(root: RootSurvey) -> tuple[str, ...]:
    if root.parent is None:
        return ()
    names = root.names[:SHOWN_NAMES]
    more = len(root.names) - len(names) + root.more
    listing = "  ".join(names) if names else "(empty)"
    if more:
        listing += f"  … and {more} more"
    lines = [f"nearest existing parent: {root.parent}", f"  {listing}"]
    hint = forge_hint(root.root, root.parent, root.names)
    if hint:
        lines.append(f"hint: {hint}")
    return tuple(lines)


def forge_hint(root: str, parent: str, names: Iterable[str]) -> str | None:
    """When the missing part of `root` is `stable-diffusion-webui` and its parent holds
    `stable-diffusion-webui-forge` (or the other way round): the root it probably means."""
    below = root[len(parent) :].strip("/").split("/") if root.startswith(parent) else []
    if not below:
        return None
    other = {A1111_DIR: FORGE_DIR, FORGE_DIR: A1111_DIR}.get(below[0])
    if other is None or other not in {n.rstrip("/") for n in names}:
        return None
    suggested = json.dumps([posixpath.join(parent, other, *below[1:])])
    if other == FORGE_DIR:
        return f"Forge's checkout is named {FORGE_DIR}; set roots = {suggested}"
    return f"this checkout is named {A1111_DIR}, not {FORGE_DIR}; set roots = {suggested}"


def _tools(caps: Capabilities, shell: bool) -> list[Check]:
    if caps.host_path:
        return [
            Check(
                "ok",
                "files read from this machine through the container's own root (as docker cp reads "
                "them): listing, copying and hashing need no tools in the container",
            )
        ]
    noted = [Check("ok", caps.note)] if caps.note else []  # why the container's files come through its shell
    return noted + _shell_tools(caps, shell)


def _shell_tools(caps: Capabilities, shell: bool) -> list[Check]:
    if not shell:
        return [
            Check(
                "warn",
                "no remote shell (SFTP only): listings walk the tree over SFTP, files are not hashed on the "
                f"remote, small files come one by one, and {NO_AGENT}",
            )
        ]
    return [
        Check("ok", "find -printf: one command lists every root")
        if caps.find_printf
        else Check(
            "warn",
            "no GNU find with -printf: listings walk the tree over SFTP (slower on big trees)"
            if caps.transport == "ssh"
            else "no GNU find with -printf: listings use find -exec stat (whole-second mtimes)",
        ),
        Check(
            "ok",
            "tar (GNU): small files come in one stream"
            if caps.transport == "ssh"
            else "tar: small files come in one stream",
        )
        if caps.tar
        else Check("warn", "no GNU tar: small files come one by one (slower over a long link)"),
        Check("ok", f"SHA-256 on the remote: {caps.hasher}")
        if caps.hasher
        else Check(
            "warn",
            "no SHA-256 tool (sha256sum or openssl): files are checked by size and mtime, not by the "
            "remote's hash",
        ),
    ]


def _python(version: str | None) -> Check:
    if version is None:
        return Check("warn", f"no python3: {NO_AGENT} (it needs Python 3.8+)")
    try:
        parsed = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        parsed = ()
    if parsed < AGENT_PYTHON:
        return Check("warn", f"python3 {version}: {NO_AGENT} (it needs Python 3.8+)")
    return Check("ok", f"python3 {version}")


def _inotify(survey: Survey) -> Check:
    watches = survey.inotify_watches
    if watches is None:
        return Check("warn", f"no inotify limit in /proc/sys/fs/inotify: {NO_AGENT}")
    counts = [r.dirs for r in survey.roots if r.state == "dir"]
    if not counts or any(c is None for c in counts):
        return Check("ok", f"inotify: max_user_watches {watches}")
    dirs = sum(c for c in counts if c is not None)
    shown = f"at least {dirs}" if any(c == DIR_COUNT_LIMIT for c in counts) else str(dirs)
    noun = "directory" if dirs == 1 else "directories"
    if watches < dirs:
        return Check(
            "warn",
            f"inotify: max_user_watches {watches} is below the {shown} {noun} under the roots: the agent "
            "cannot watch them all (raise fs.inotify.max_user_watches on the host)",
        )
    return Check("ok", f"inotify: max_user_watches {watches} for {shown} {noun} under the roots")


def _purge(roots: Sequence[RootSurvey]) -> list[Check]:
    dirs = [r for r in roots if r.state == "dir"]
    if not dirs:
        return []
    if all(r.writable for r in dirs):
        return [Check("ok", "purge: every root is writable")]
    checks = []
    for r in dirs:
        if r.writable is None:
            checks.append(Check("warn", f"purge: cannot tell whether root {r.root} is writable (no shell)"))
        elif not r.writable:
            checks.append(
                Check(
                    "warn",
                    f"purge: root {r.root} is not writable by the remote user: purge deletes nothing there "
                    "(fix its permissions, or set purge dry_run = true)",
                )
            )
    return checks


# ------------------------------------------------------------------------------------ output


def render(section: Section) -> str:
    """A section as text that reads the same with or without a terminal: one line per check."""
    lines = [section.title]
    for check in section.checks:
        lines.append(f"  {MARKS[check.level]}  {check.text}")
        lines += [f"        {d}" for d in check.detail]
    return "\n".join(lines)


def summary(sections: Sequence[Section]) -> str:
    levels = [c.level for s in sections for c in s.checks]
    failed, warned = levels.count("fail"), levels.count("warn")
    warnings = f"{warned} warning{'s' if warned != 1 else ''}"
    if failed:
        return f"{failed} check{'s' if failed != 1 else ''} failed, {warnings}"
    return f"all checks passed, {warnings}" if warned else "all checks passed"


def exit_code(sections: Sequence[Section]) -> int:
    return EXIT_FAILED if any(c.level == "fail" for s in sections for c in s.checks) else 0
