"""A Docker container on this machine whose files are read from this machine (see the package's comment).

Listing, copying, hashing (the copy's own hash, as for a local folder), checking and deleting (set aside,
hashed again, removed only if still the verified version) run on descriptors below the container's
root; the container's shell runs the rest: where the roots are (before every listing, so a container
that stopped ends the session as it would over `docker exec`), the survey, free space outside the roots,
and the remote agent.
"""

from __future__ import annotations

import asyncio
import errno
import os
import posixpath
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from pathlib import Path

from mediasyncd.config import RemoteConfig
from mediasyncd.errors import RemoteError, TransferError
from mediasyncd.sources.base import Capabilities, Deletion, Expected, Progress, Source
from mediasyncd.sources.docker.container import HostPathUnavailable, find_container_root
from mediasyncd.sources.docker.roots import Located, list_below, locate_command, open_located, parse_located
from mediasyncd.sources.exec.process import ShellProcess
from mediasyncd.sources.exec.source import ExecSource
from mediasyncd.sources.exec.spawn import ExecSpawned
from mediasyncd.sources.listing import Listing
from mediasyncd.sources.local import LocalSource
from mediasyncd.sources.receive import RateLimiter
from mediasyncd.sources.survey import Survey
from mediasyncd.sources.tar import Member


class ContainerFiles(LocalSource):
    """The local folder source's copying, hashing, checking and deleting, with each root opened below
    the container's root instead of by its path on this machine."""

    def __init__(self, roots: Sequence[str]) -> None:
        super().__init__(roots)
        self.located: dict[str, tuple[Located, int] | None] = {}  # normalized root -> where, its fd

    def fd(self, root: str) -> int | None:
        found = self.located.get(root)
        return None if found is None else found[1]

    def _open_root(self, root: str) -> int:
        fd = self.fd(root)
        if fd is None:
            raise FileNotFoundError(errno.ENOENT, f"{root} is not a directory in the container")
        return os.dup(fd)


class DockerHostSource:
    def __init__(self, shell: ExecSource, container_root: int, roots: Sequence[str]) -> None:
        self._exec = shell
        self._container_root = container_root
        self._files = ContainerFiles(roots)
        self._caps = Capabilities(transport="docker", hasher="local", host_path=True)
        self._retired: list[int] = []  # descriptors of roots that moved: closed with the source, as a
        # thread may still be opening a file below one (closing it could hand its number to another file)

    @classmethod
    async def open(cls, shell: ExecSource, container_root: int, roots: Sequence[str]) -> DockerHostSource:
        """Locate `roots` in the container; HostPathUnavailable if this machine sees them otherwise (the
        caller then keeps to the exec path; `container_root` is closed)."""
        source = cls(shell, container_root, roots)
        try:
            await source._locate(roots)
        except BaseException:
            source._close_descriptors()
            raise
        return source

    @property
    def caps(self) -> Capabilities:
        return self._caps

    @property
    def shell(self) -> ShellProcess:
        return self._exec.shell

    async def spawn(self, command: str) -> ExecSpawned:
        return await self._exec.spawn(command)

    async def close(self) -> None:
        await self._exec.close()
        self._close_descriptors()

    async def list_roots(self, roots: Sequence[str]) -> Listing:
        try:
            await self._locate(roots)
        except HostPathUnavailable as exc:  # a new session decides again, and may take the exec path
            raise RemoteError(f"the container's roots moved under this machine's view: {exc}") from None
        fds = {r: self._files.fd(posixpath.normpath(r)) for r in roots}
        return await asyncio.to_thread(list_below, fds, roots)

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
        return await self._files.pull(
            path, partial, size=size, mtime=mtime, executor=executor, limiter=limiter, progress=progress
        )

    async def pull_batch(
        self,
        root: str,
        partials: dict[str, Path],
        *,
        executor: Executor,
        on_member: Callable[[Member], None],
        progress: Progress | None = None,
        sizes: dict[str, int] | None = None,
    ) -> None:
        raise TransferError("files read from this machine are copied one by one")

    async def sha256(self, paths: Sequence[str]) -> dict[str, str] | None:
        return await self._files.sha256(paths)

    async def still_same(self, files: Sequence[tuple[str, int, float]]) -> set[str]:
        return await self._files.still_same(files)

    async def delete(self, files: Sequence[Expected]) -> Deletion:
        return await self._files.delete(files)

    async def remove_empty_dirs(self, root: str, deleted: Sequence[str]) -> None:
        await self._files.remove_empty_dirs(root, deleted)

    async def free_space(self, path: str) -> int | None:
        """The free space of the filesystem under a root (as `df` in the container shows it), else the
        shell's `df`."""
        norm = posixpath.normpath(path)
        for root in sorted(self._files.located, key=len, reverse=True):
            fd = self._files.fd(root)
            if fd is not None and (norm == root or norm.startswith(root.rstrip("/") + "/")):
                vfs = await asyncio.to_thread(os.fstatvfs, fd)
                return vfs.f_bavail * vfs.f_frsize
        return await self._exec.free_space(path)

    async def survey(self, roots: Sequence[str]) -> Survey:
        return await self._exec.survey(roots)

    # ------------------------------------------------------------------------------------ roots

    async def _locate(self, roots: Sequence[str]) -> None:
        """Ask the container where each root is and open the ones that moved (or are new) below its root."""
        wanted = list(dict.fromkeys(posixpath.normpath(r) for r in roots))
        answer = await self._exec.shell.run(locate_command(wanted))
        located = self._files.located
        for root, where in parse_located(answer.stdout, wanted).items():
            known = located.get(root)
            if known is not None and known[0] == where:
                continue
            opened = None
            if where is not None:
                opened = (where, await asyncio.to_thread(open_located, self._container_root, where))
            if known is not None:
                self._retired.append(known[1])
            located[root] = opened
            if root not in self._files.roots:
                self._files.roots.append(root)

    def _close_descriptors(self) -> None:
        located = self._files.located
        fds = [f[1] for f in located.values() if f is not None] + self._retired + [self._container_root]
        located.clear()
        self._retired.clear()
        for fd in fds:
            os.close(fd)


async def open_docker(remote: RemoteConfig, environ: Mapping[str, str] = os.environ) -> Source:
    """The container's shell, and its files from this machine where `files_via` allows and the checks in
    sources/docker/container.py pass; otherwise the exec source, noting why. Raises RemoteError
    ("unreachable: …") when no shell answers."""
    finding: asyncio.Future[int] | None = None
    if remote.files_via == "auto":
        finding = asyncio.ensure_future(
            find_container_root(remote.docker_host, remote.container or "", environ)
        )
    try:
        shell = await ExecSource.open(remote.shell_command, "docker")
    except BaseException:
        if finding is not None:
            await _discard(finding)
        raise
    shell.roots.update(remote.roots)
    if finding is None:
        return shell.noted('files through docker exec: files_via = "exec"')
    try:
        container_root = await finding
        return await DockerHostSource.open(shell, container_root, remote.roots)
    except HostPathUnavailable as exc:
        return shell.noted(f"files through docker exec: {exc}")
    except BaseException:
        await shell.close()
        raise


async def _discard(finding: asyncio.Future[int]) -> None:
    """Wait for a search that is no longer needed and close what it opened."""
    done = await asyncio.gather(finding, return_exceptions=True)
    if isinstance(done[0], int):
        os.close(done[0])
