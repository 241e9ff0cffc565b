"""How we reach a remote: one `Source` protocol (`base`), one implementation per transport.

`open_source` is the one place that picks the transport for a remote; nothing above this package knows
which one a remote uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mediasyncd.config import RemoteConfig, TransferConfig
from mediasyncd.sources.base import (
    Capabilities,
    CommandResult,
    Deletion,
    Expected,
    Shell,
    Source,
    Spawned,
    Spawner,
)
from mediasyncd.sources.listing import Key, Listing, Rejected, RemoteEntry, same_version

__all__ = [
    "Capabilities",
    "CommandResult",
    "Deletion",
    "Expected",
    "Key",
    "Listing",
    "Rejected",
    "RemoteEntry",
    "Shell",
    "Source",
    "Spawned",
    "Spawner",
    "open_source",
    "same_version",
]


def preload(remotes: Sequence[RemoteConfig]) -> None:
    """Import now what `open_source` will import for these remotes (asyncssh for SSH), so that a
    one-pass process can freeze its start-up objects out of the cyclic GC before the pull."""
    if any(r.transport == "ssh" for r in remotes):
        from mediasyncd.sources.ssh.source import SshSource  # noqa: F401


async def open_source(
    remote: RemoteConfig, state_dir: Path, transfer: TransferConfig | None = None
) -> Source:
    """Open `remote` through its transport. Raises RemoteError (HostKeyError for a refused host key)."""
    if remote.transport == "local":
        from mediasyncd.sources.local import LocalSource

        return LocalSource(remote.roots)
    if remote.transport == "docker":
        from mediasyncd.sources.docker.source import open_docker

        return await open_docker(remote)
    if remote.transport == "exec":
        from mediasyncd.sources.exec.source import ExecSource

        source = await ExecSource.open(remote.shell_command, remote.transport)
        source.roots.update(remote.roots)
        return source
    from mediasyncd.sources.ssh.source import SshSource  # asyncssh is loaded only when a remote needs it

    return await SshSource.open(remote, state_dir, transfer)
