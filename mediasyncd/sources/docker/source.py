"""A Docker container on this machine whose files are read from this machine (see the package's comment).

Each root the container's shell located is held open below the container's root (sources/docker/roots.py)
and handed to the local folder source as `/proc/self/fd/<n>`: the kernel resolves that name straight to
the open directory, and the local source opens everything below its roots one component at a time
without following symlinks. So listing (here, by descriptors), copying, hashing (the copy's own hash,
as for a local folder), checking and deleting (set aside, hashed again, removed only if still the
verified version) stay inside the container's tree, and none of it depends on how the local source
opens its roots. Paths are translated both ways: the rest of the daemon sees the container's paths.

The container's shell runs the rest: where the roots are (before every listing, so a container that
stopped ends the session as it would over `docker exec`), the survey, free space outside the roots, and
the remote agent.
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

FD_DIR = "/proc/self/fd"


def fd_path(fd: int) -> str:
    return f"{FD_DIR}/{fd}"


class DockerHostSource:
    def __init__(self, shell: ExecSource, container_root: int) -> None:
        self._exec = shell
        self._container_root = container_root
        self._files = LocalSource([])
        self._caps = dataclasses.replace(self._files.caps, transport="docker", host_path=True)
        self._located: dict[str, tuple[Located, int] | None] = {}  # normalized root -> where, its fd
        self._retired: list[int] = []  # descriptors of roots that moved: closed with the source, as a
        # thread may still be reading below one (closing it could hand its number to another directory)

    @classmethod
    async def open(cls, shell: ExecSource, container_root: int, roots: Sequence[str]) -> DockerHostSource:
        """Locate `roots` in the container; HostPathUnavailable if this machine sees them otherwise (the
        caller then keeps to the exec path; `container_root` is closed)."""
        source = cls(shell, container_root)
        try:
            seen, held = os.stat(fd_path(container_root)), os.fstat(container_root)
            if (seen.st_dev, seen.st_ino) != (held.st_dev, held.st_ino):
                raise HostPathUnavailable(f"{FD_DIR} does not show this process's descriptors")
            await source._locate(roots)
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
        fds = {r: self._fd(posixpath.normpath(r)) for r in roots}
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
    ) -> None:
        await self._files.pull_batch(
            self._host(root), partials, executor=executor, on_member=on_member, progress=progress,
            sizes=sizes,
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
        for outcome, paths in (
            ("D", done.deleted),
            ("G", done.gone),
            ("C", done.changed),
            ("F", done.failed),
        ):
            for h in paths:
                result.add(outcome, back.get(h, h))
        return result

    async def remove_empty_dirs(self, root: str, deleted: Sequence[str]) -> None:
        await self._files.remove_empty_dirs(self._host(root), [self._host(p) for p in deleted])

    async def free_space(self, path: str) -> int | None:
        """The free space of the filesystem under a root (as `df` in the container shows it), else the
        shell's `df`."""
        fd = self._fd_of(posixpath.normpath(path))
        if fd is None:
            return await self._exec.free_space(path)
        vfs = await asyncio.to_thread(os.fstatvfs, fd)
        return vfs.f_bavail * vfs.f_frsize

    async def survey(self, roots: Sequence[str]) -> Survey:
        return await self._exec.survey(roots)

    # ------------------------------------------------------------------------------------ roots

    def _fd(self, root: str) -> int | None:
        found = self._located.get(root)
        return None if found is None else found[1]

    def _root_of(self, norm: str) -> str | None:
        """The located root that holds the normalized container path `norm` (the longest), or None."""
        for root in sorted(self._located, key=len, reverse=True):
            if self._located[root] is not None and (norm == root or norm.startswith(root.rstrip("/") + "/")):
                return root
        return None

    def _fd_of(self, norm: str) -> int | None:
        root = self._root_of(norm)
        return None if root is None else self._fd(root)

    def _host(self, path: str) -> str:
        """The container's `path` as this process reaches it: below its root's `/proc/self/fd/<n>`. A
        path under no located root stays as it is: under none of the local source's roots, it is
        refused there (a vanished file, a failed deletion)."""
        norm = posixpath.normpath(path)
        root = self._root_of(norm)
        fd = None if root is None else self._fd(root)
        if root is None or fd is None:
            return path
        return fd_path(fd) + norm[len(root.rstrip("/")) :]

    async def _locate(self, roots: Sequence[str]) -> None:
        """Ask the container where each root is and open the ones that moved (or are new) below its root."""
        wanted = list(dict.fromkeys(posixpath.normpath(r) for r in roots))
        answer = await self._exec.shell.run(locate_command(wanted))
        for root, where in parse_located(answer.stdout, wanted).items():
            known = self._located.get(root)
            if known is not None and known[0] == where:
                continue
            opened = None
            if where is not None:
                opened = (where, await asyncio.to_thread(open_located, self._container_root, where))
            if known is not None:
                self._retired.append(known[1])
            self._located[root] = opened
            self._files.roots = [fd_path(f[1]) for f in self._located.values() if f is not None]

    def _close_descriptors(self) -> None:
        fds = [f[1] for f in self._located.values() if f is not None] + self._retired + [self._container_root]
        self._located.clear()
        self._retired.clear()
        self._files.roots = []
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
