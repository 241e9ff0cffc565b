"""The `Source` protocol: the only way the rest of the daemon touches a remote.

A source lists its roots, pulls one file into a partial (resuming one a previous attempt left) or many
small files in one stream, hashes, checks that a file is still the version it was, deletes, measures
free space, and surveys its roots for `mediasyncd doctor`. Transports differ (SSH, a local folder, a
shell behind `docker exec` or any command); puller, verifier, purge and watchers depend on this protocol alone.

Errors are the contract every implementation keeps:
- `RemoteError`: the source as a whole is unusable (connection lost, shell gone): the session ends,
  everything in flight goes back to the queue, nothing counts against a file;
- `RemoteFileChanged`: the file is not the listed version (rewritten, vanished): taken again once it settles;
- `TransferError`: this one file could not be read: it is retried later with backoff;
- `LibraryFull`: the library's disk is full: the file waits for space.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

from mediasyncd.sources.listing import Listing
from mediasyncd.sources.receive import RateLimiter
from mediasyncd.sources.survey import Survey
from mediasyncd.sources.tar import Member

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Capabilities:
    """What a source can do beyond the protocol's minimum, shown in `/status` as `summary`."""

    transport: str = "ssh"
    find_printf: bool = False  # one-command listings through a shell
    hasher: str | None = None  # "openssl" (SHA extensions: ~4x coreutils), "sha256sum" or "local"
    tar: bool = False  # GNU tar: small files can come in one stream (`pull_batch`)
    stream_below: int = 0  # files below this size come in tar streams whatever `batch_below` says (a
    # transport that starts a process per single file: docker exec costs ~50-100 ms)
    host_path: bool = False  # a container's files are read from this machine, not through its shell
    note: str = ""  # why a transport does not take its fastest path (shown after the summary)
    batches: bool = False  # `pull_batch` without a shell: many small files per job (a local folder)
    streams: int = 4  # batches sharing the byte budget at once, each taking 1/streams of it: over a
    # fast SSH link 2 (fewer remote shells; the CPU sets the pace), elsewhere 4, to keep a far link full
    hashes_in_stream: bool = False  # `pull_batch` returns the source's hashes of what it sent
    round_trip: float | None = None  # SSH: the connection's round trip as the kernel measured it (seconds;
    # None where it is not known, e.g. through a ProxyCommand): what decides a fast link's paths

    @property
    def hashes(self) -> bool:
        return self.hasher is not None

    @property
    def hashes_apart(self) -> bool:
        """The source hashes a file with its own process, apart from sending it: a large file's hash
        can be taken while the file travels (a local folder's hash is the copy's own, taken after it)."""
        return self.hasher is not None and self.hasher != "local"

    @property
    def summary(self) -> str:
        """`find,openssl,tar` over SSH; `docker:find,sha256sum,tar` for a shell behind a command;
        `docker:host-path` for a container whose files are read from this machine; `local`. A note
        follows in parentheses (`docker:find,openssl,tar (files through docker exec: …)`)."""
        if self.transport == "local":
            return self.transport
        parts = (("find", self.find_printf), (self.hasher or "", bool(self.hasher)), ("tar", self.tar))
        found = ",".join(name for name, ok in parts if ok)
        if self.transport == "ssh":
            text = found or "sftp-only"
        elif self.host_path:
            text = f"{self.transport}:host-path"
        else:
            text = f"{self.transport}:{found or 'minimal'}"
        return f"{text} ({self.note})" if self.note else text


class Expected(NamedTuple):
    """A file the purge means to delete, and the version it verified: deleted only if still that."""

    path: str
    sha256: str
    size: int
    mtime: float


@dataclass
class Deletion:
    """What `Source.delete` did with each path it was given.

    Every file is first renamed to a quarantine name beside it (`.mediasyncd-purge-<token>-<n>`), so a
    writer that re-creates the path meanwhile makes a new file that nothing here touches; the quarantined
    file is then checked (its SHA-256 where the source can hash, else its size and mtime) and removed only
    if it is still the expected version; otherwise it is renamed back, never over a file made at the path
    meanwhile (then it stays under its quarantine name, still on the remote)."""

    deleted: set[str] = field(default_factory=set)  # checked in quarantine, then removed
    gone: set[str] = field(default_factory=set)  # already absent: nothing was deleted
    changed: set[str] = field(default_factory=set)  # not the expected version (or not a regular file): kept
    failed: set[str] = field(default_factory=set)  # could not be set aside, checked or removed: kept

    @property
    def kept(self) -> set[str]:
        return self.changed | self.failed

    def add(self, outcome: str, path: str) -> None:
        """Record `path` under `outcome`: "D"eleted, "G"one, "C"hanged or "F"ailed."""
        {"D": self.deleted, "G": self.gone, "C": self.changed, "F": self.failed}[outcome].add(path)

    def merge(self, other: Deletion) -> None:
        self.deleted |= other.deleted
        self.gone |= other.gone
        self.changed |= other.changed
        self.failed |= other.failed


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: bytes
    stderr: bytes


class Shell(Protocol):
    """A long-lived shell on the source, one command at a time (for watchers such as the agent)."""

    async def run(self, script: str) -> CommandResult: ...

    def close(self) -> None: ...


class Spawned(Protocol):
    """A long-running command on the source (the remote agent). Closing it closes its channel: the
    command sees EOF on stdin."""

    async def read(self) -> bytes:
        """What the command wrote since the last read (stdout and stderr as one stream; at least one
        byte), or b"" once it exited or its channel is gone."""

    def close(self) -> None: ...


@runtime_checkable
class Spawner(Protocol):
    """A source that can start a long-running command beside its shell (where the transport has one).
    Kept apart from `Source`: a transport offers it by having `spawn`."""

    async def spawn(self, command: str) -> Spawned:
        """Start `command` (a POSIX sh command line) on its own channel. Raises RemoteError."""


class Source(Protocol):
    """One opened remote. Paths are absolute paths on the source, under one of its roots."""

    @property
    def caps(self) -> Capabilities: ...

    @property
    def shell(self) -> Shell | None:
        """The source's command channel, where the transport has one."""

    async def close(self) -> None: ...

    async def list_roots(self, roots: Sequence[str]) -> Listing:
        """Every regular file under `roots` in as few round trips as the source allows."""

    async def pull(
        self,
        path: str,
        partial: Path,
        *,
        size: int,
        mtime: float,
        executor: Executor,
        limiter: RateLimiter | None = None,
        progress: Progress | None = None,
    ) -> str:
        """Copy `path` (expected `size` and `mtime`) into `partial`, continuing what `partial` already
        holds; return the SHA-256 of the whole file."""

    async def pull_batch(
        self,
        root: str,
        partials: dict[str, Path],
        *,
        executor: Executor,
        on_member: Callable[[Member], None],
        progress: Progress | None = None,
        sizes: dict[str, int] | None = None,
        limiter: RateLimiter | None = None,
    ) -> dict[str, str] | None:
        """Stream the files `partials` names (relative to `root`) into their partials, calling
        `on_member` for each one received (only where `caps.tar`, or `caps.batches`: a local folder
        copies them many per trip to a thread). A member whose size is not the one `sizes` lists is
        not written. `limiter` paces the bytes as it does for `pull` (`bwlimit`). Where
        `caps.hashes_in_stream`, returns the source's own SHA-256 of the files, by path as `sha256`
        gives them, taken right after it sent them (None where it could not: ask `sha256`); else None."""

    async def sha256(self, paths: Sequence[str]) -> dict[str, str] | None:
        """The source's own SHA-256 of each readable path (batched), or None if it cannot hash."""

    async def still_same(self, files: Sequence[tuple[str, int, float]]) -> set[str]:
        """The paths of `(path, size, mtime)` whose lstat still shows that size and mtime."""

    async def delete(self, files: Sequence[Expected]) -> Deletion:
        """Delete each file only if it is still the expected version, checked after it was set aside
        under a quarantine name (see `Deletion`): no write that races the deletion is lost."""

    async def remove_empty_dirs(self, root: str, deleted: Sequence[str]) -> None:
        """Remove the directories between `root` and the deleted paths that are now empty."""

    async def free_space(self, path: str) -> int | None:
        """Bytes available on the filesystem holding `path` (None if unknown)."""

    async def survey(self, roots: Sequence[str]) -> Survey:
        """Each root's state (a missing one's nearest existing parent and its names) and what the remote
        agent would need (python3, the inotify limit), for `mediasyncd doctor`."""
