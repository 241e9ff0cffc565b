"""One family of errors; each boundary decides whether to retry, skip or stop."""

from __future__ import annotations

EXIT_CONFIG = (
    78  # EX_CONFIG: a configuration error; systemd does not restart on it (RestartPreventExitStatus)
)


class MediasyncError(Exception):
    """Base of every error mediasyncd raises on purpose."""


class ConfigError(MediasyncError):
    """The configuration is invalid; `problems` lists every problem found, each with its key path."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: " + "; ".join(problems))

    def report(self) -> str:
        lines = [f"{self.source}: {len(self.problems)} problem(s):"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class StateLockedError(MediasyncError):
    """Another process holds the state directory."""


class RemoteError(MediasyncError):
    """A remote could not be reached or answered unexpectedly; retried with backoff."""


class HostKeyError(RemoteError):
    """The remote's host key is unknown (strict) or changed; never retried silently."""


class TransferError(MediasyncError):
    """One file could not be transferred or verified; the file is retried later."""


class RemoteFileChanged(TransferError):
    """The remote file changed while it was being read; retried once it settles again."""


class UnsafePathError(MediasyncError):
    """A remote name cannot be mapped safely into the library; the file is skipped."""


class LibraryUnavailable(MediasyncError):
    """The library directory is missing or not writable (e.g. an unmounted NAS)."""


class LibraryFull(MediasyncError):
    """The library's filesystem ran out of space while a file was written; the file waits, never fails."""


class StateDiskFull(MediasyncError):
    """The state DB's filesystem is full: the transaction was rolled back, nothing it recorded happened;
    the work it belonged to waits and is retried, never counted against a file."""


class StateUnavailable(MediasyncError):
    """The state DB cannot be opened (its filesystem is full or failing, its file unreadable)."""


class StartupError(MediasyncError):
    """The daemon cannot start as configured (e.g. its status address is taken): exit 78, no restart loop."""
