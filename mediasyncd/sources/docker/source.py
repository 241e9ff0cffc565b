"""A Docker container on this machine whose files are read from this machine (see the package's comment).

Each root is resolved inside the container's root directory and held open (sources/docker/roots.py),
then handed to the local folder source as `/proc/self/fd/<n>`: the kernel resolves that name straight
to the open directory, and the local source opens everything below its roots one component at a time
without following symlinks. So listing (here, by descriptors), copying, hashing (the copy's own hash, as
for a local folder), checking and deleting (set aside, hashed again, removed only if still the verified
version) stay inside the container's tree, and none of it depends on how the local source opens its
roots. Paths are translated both ways: the rest of the daemon sees the container's paths.

Before every listing the container's first process must still run (a stopped or restarted container
ends the session, as over `docker exec`), and the roots are resolved again. The container's shell
(`docker exec -i … sh`) is started only when something needs it: the remote agent, the survey of
`mediasyncd doctor`, free space outside the roots.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import posixpath
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from pathlib import Path

from mediasyncd.config import RemoteConfig
from mediasyncd.errors import RemoteError
from mediasyncd.sources.base import Capabilities, CommandResult, Deletion, Expected, Progress, Source
from mediasyncd.sources.docker.container import ContainerRoot, HostPathUnavailable, find_container_root
from mediasyncd.sources.docker.roots import identity, list_below, resolve_in
from mediasyncd.sources.exec.source import ExecSource
from mediasyncd.sources.exec.spawn import ExecSpawned
from mediasyncd.sources.listing import Listing
from mediasyncd.sources.local import LocalSource
from mediasyncd.sources.receive import RateLimiter
from mediasyncd.sources.survey import Survey
from mediasyncd.sources.tar import Member

FD_DIR = "/proc/self/fd"


def fd_path(fd: int) -> str:
    return f"{FD_DIR}/{fd}"


class LazyShell:
    """The container's shell, started on first use (a pull needs none)."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = tuple(argv)
        self._source: ExecSource | None = None
        self._lock = asyncio.Lock()

    async def source(self) -> ExecSource:
        async with self._lock:
            if self._source is None:
                self._source = await ExecSource.open(self.argv, "docker")
            return self._source

    async def run(self, script: str) -> CommandResult:
        return await (await self.source()).shell.run(script)

    def close(self) -> None:
        if self._source is not None:
            self._source.shell.close()

    async def aclose(self) -> None:
        if self._source is not None:
            await self._source.close()


class DockerHostSource:
    def __init__(self, container: ContainerRoot, shell_argv: Sequence[str]) -> None:
        self._container = container
        self._shell = LazyShell(shell_argv)
        self._files = LocalSource([])
        self._caps = dataclasses.replace(self._files.caps, transport="docker", host_path=True)
        self._located: dict[str, tuple[tuple[int, int], int] | None] = {}  # root -> (dev, ino), its fd
        self._retired: list[int] = []  # descriptors of roots that moved: closed with the source, as a
        # thread may still be reading below one (closing it could hand its number to another directory)

    @classmethod
    async def open(
        cls, container: ContainerRoot, shell_argv: Sequence[str], roots: Sequence[str]
    ) -> DockerHostSource:
        """Resolve `roots` in the container; HostPathUnavailable (and `container` closed) if this process
        cannot reach open descriptors by name."""
        source = cls(container, shell_argv)
        try:
            seen, held = os.stat(fd_path(container.root)), os.fstat(container.root)
            if (seen.st_dev, seen.st_ino) != (held.st_dev, held.st_ino):
                raise HostPathUnavailable(f"{FD_DIR} does not show this process's descriptors")
            await asyncio.to_thread(source._locate, roots)
        except OSError as exc:
            source._close_descriptors()
            raise HostPathUnavailable(f"{FD_DIR} is not usable ({exc.strerror})") from None
        except BaseException:
            source._close_descriptors()
            raise
        return source

    @property
    def caps(self) -> Capabilities:
        return self._caps

    @property
    def shell(self) -> LazyShell:
        return self._shell

    async def spawn(self, command: str) -> ExecSpawned:
        return await ExecSpawned.start(self._shell.argv, command)

    async def close(self) -> None:
        await self._shell.aclose()
        self._close_descriptors()

    async def list_roots(self, roots: Sequence[str]) -> Listing:
        def look() -> Listing:
            if not self._container.alive():
                raise RemoteError("unreachable: the container's first process exited (stopped or restarted)")
            self._locate(roots)
            return list_below({r: self._fd(posixpath.normpath(r)) for r in roots}, roots)

        return await asyncio.to_thread(look)

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
        unlimited = limiter is None or limiter.rate <= 0  # then a small file is copied in one trip
        return await self._files.pull(
            self._host(path), partial, size=size, mtime=mtime, executor=executor,
            limiter=None if unlimited else limiter, progress=progress,
        )  # fmt: skip

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
    ) -> None:
        await self._files.pull_batch(
            self._host(root), partials, executor=executor, on_member=on_member, progress=progress,
            sizes=sizes, limiter=limiter,
        )  # fmt: skip

    async def sha256(self, paths: Sequence[str]) -> dict[str, str] | None:
        back = {self._host(p): p for p in paths}
        found = await self._files.sha256(list(back))
        return None if found is None else {back[h]: digest for h, digest in found.items() if h in back}

    async def still_same(self, files: Sequence[tuple[str, int, float]]) -> set[str]:
        back = {self._host(f[0]): f[0] for f in files}
        same = await self._files.still_same([(self._host(p), size, mtime) for p, size, mtime in files])
        return {back[h] for h in same if h in back}

    async def delete(self, files: Sequence[Expected]) -> Deletion:
        back = {self._host(e.path): e.path for e in files}
        done = await self._files.delete([e._replace(path=self._host(e.path)) for e in files])
        result = Deletion()
        for outcome, paths in zip("DGCF", (done.deleted, done.gone, done.changed, done.failed), strict=True):
            for h in paths:
                result.add(outcome, back.get(h, h))
        return result

    async def remove_empty_dirs(self, root: str, deleted: Sequence[str]) -> None:
        await self._files.remove_empty_dirs(self._host(root), [self._host(p) for p in deleted])

    async def free_space(self, path: str) -> int | None:
        """The free space of the filesystem under a root (as `df` in the container shows it), else the
        shell's `df`."""
        holder = self._holder(posixpath.normpath(path))
        if holder is None:
            return await (await self._shell.source()).free_space(path)
        vfs = await asyncio.to_thread(os.fstatvfs, holder[1])
        return vfs.f_bavail * vfs.f_frsize

    async def survey(self, roots: Sequence[str]) -> Survey:
        return await (await self._shell.source()).survey(roots)

    # ------------------------------------------------------------------------------------ roots

    def _fd(self, root: str) -> int | None:
        found = self._located.get(root)
        return None if found is None else found[1]

    def _holder(self, norm: str) -> tuple[str, int] | None:
        """The located root holding the normalized container path `norm` (the longest) and its fd."""
        located = self._located
        for root in sorted(located, key=len, reverse=True):
            found = located[root]
            if found is not None and (norm == root or norm.startswith(root.rstrip("/") + "/")):
                return root, found[1]
        return None

    def _host(self, path: str) -> str:
        """The container's `path` as this process reaches it: below its root's `/proc/self/fd/<n>`. A
        path under no located root stays as it is: under none of the local source's roots, it is
        refused there (a vanished file, a failed deletion)."""
        norm = posixpath.normpath(path)
        holder = self._holder(norm)
        if holder is None:
            return path
        root, fd = holder
        return fd_path(fd) + norm[len(root.rstrip("/")) :]

    def _locate(self, roots: Sequence[str]) -> None:
        """Blocking: resolve each root in the container again; one that is now another directory (or new)
        gets a fresh descriptor, the old one is retired."""
        located = dict(self._located)  # swapped in whole: the event loop reads it meanwhile
        for root in dict.fromkeys(posixpath.normpath(r) for r in roots):
            fd = resolve_in(self._container.root, root)
            known = located.get(root)
            if known is not None and fd is not None and identity(fd) == known[0]:
                os.close(fd)
                continue
            if known is not None:
                self._retired.append(known[1])
            located[root] = None if fd is None else (identity(fd), fd)
        self._files.roots = [fd_path(f[1]) for f in located.values() if f is not None]
        self._located = located

    def _close_descriptors(self) -> None:
        fds = [f[1] for f in self._located.values() if f is not None] + self._retired
        self._located.clear()
        self._retired.clear()
        self._files.roots = []
        for fd in fds:
            os.close(fd)
        self._container.close()


async def open_docker(remote: RemoteConfig, environ: Mapping[str, str] = os.environ) -> Source:
    """The container's files from this machine where `files_via` allows and the checks in
    sources/docker/container.py pass; otherwise the exec source, noting why. Raises RemoteError
    ("unreachable: …") when neither reaches the container."""
    argv = remote.shell_command
    reason = 'files_via = "exec"'
    if remote.files_via == "auto":
        try:
            container = await find_container_root(remote.docker_host, remote.container or "", environ)
            return await DockerHostSource.open(container, argv, remote.roots)
        except HostPathUnavailable as exc:
            reason = str(exc)
    shell = await ExecSource.open(argv, "docker")
    shell.roots.update(remote.roots)
    return shell.noted(f"files through docker exec: {reason}")
