"""Finding a running container's root directory on this machine, or the reason it cannot be used.

The engine tells the container's id and its first process (`docker inspect`); that process's root
(`/proc/<pid>/root`) is the container's whole file tree as the container sees it, its mounts included,
so no mapping of overlay layers, volumes or bind mounts is needed. It is taken only when

- the engine is addressed through a unix socket (or not at all: then the default socket or the
  current context, which the next check still covers),
- `/proc/<pid>` can be opened and its `cgroup` names the container's full id: the pid is that
  container's process in this machine's pid namespace, not a pid of another machine's engine or of
  another namespace (`/proc/<pid>` is held open while its root is opened, so the pid cannot be reused in
  between),
- this user may open that root (root, or the container's own user namespace owner),
- and it is not this machine's own root.

A pidfd of that process (or its /proc directory, on an older kernel) then tells when it exits: a
stopped or restarted container ends the session.

Everything below that root is then opened relative to its descriptor, one component at a time without
following symlinks (sources/docker/roots.py): nothing the container does can lead a read out of it.
"""

from __future__ import annotations

import asyncio
import os
import select
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

INSPECT_FORMAT = "{{.Id}} {{.State.Pid}} {{.State.Running}}"
INSPECT_TIMEOUT = 30.0
DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class HostPathUnavailable(Exception):
    """Why a container's files cannot be read from this machine (the exec path is used instead)."""


@dataclass(frozen=True)
class Inspected:
    id: str
    pid: int


def engine_elsewhere(docker_host: str | None, environ: Mapping[str, str]) -> str | None:
    """Why the engine is not on this machine as far as its address tells (None: it may be). Credentials
    in an address are never repeated: only its scheme is named."""
    host = docker_host or environ.get("DOCKER_HOST") or ""
    if not host or host.startswith("unix://"):
        return None
    scheme = host.partition("://")[0] if "://" in host else "tcp"
    return f"the engine is reached over {scheme}://, not a local socket"


def docker_argv(docker_host: str | None, *args: str) -> list[str]:
    """`docker [-H docker_host] args…`, the same client the exec transport runs."""
    return ["docker", *(("-H", docker_host) if docker_host else ()), *args]


def parse_inspect(output: bytes) -> Inspected:
    """The container's id and first process from `docker inspect --format INSPECT_FORMAT`."""
    words = output.decode("ascii", "replace").split()
    if len(words) != 3 or len(words[0]) != 64 or not all(c in "0123456789abcdef" for c in words[0]):
        raise HostPathUnavailable("docker inspect answered something other than an id and a pid")
    if words[2] != "true" or not words[1].isdigit() or int(words[1]) <= 0:
        raise HostPathUnavailable("the container is not running")
    return Inspected(words[0], int(words[1]))


async def inspect(argv: Sequence[str]) -> Inspected:
    """Run `docker inspect` (`argv`); HostPathUnavailable with what docker said if it fails."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
    except OSError as exc:
        raise HostPathUnavailable(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    try:
        out, err = await asyncio.wait_for(process.communicate(), INSPECT_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise HostPathUnavailable("docker inspect did not answer") from None
    if process.returncode != 0:
        said = err.decode("utf-8", "replace").strip().splitlines()
        raise HostPathUnavailable(f"docker inspect failed: {said[-1][:200] if said else process.returncode}")
    return parse_inspect(out)


@dataclass
class ContainerRoot:
    """The container's root directory, held open, and a handle on its first process that tells when it
    exits (a pidfd, else its /proc directory): a stopped or restarted container ends the session."""

    root: int
    watch: int
    pidfd: bool

    def alive(self) -> bool:
        if self.pidfd:  # readable once the process exited
            poller = select.poll()
            poller.register(self.watch, select.POLLIN)
            return not poller.poll(0)
        try:
            os.stat("stat", dir_fd=self.watch)
        except OSError:
            return False
        return True

    def close(self) -> None:
        os.close(self.root)
        os.close(self.watch)


def open_container_root(found: Inspected, proc: str = "/proc") -> ContainerRoot:
    """Blocking: the container's root directory (see the module's comment), or HostPathUnavailable
    naming the check that failed."""
    try:
        pid_fd = os.open(f"{proc}/{found.pid}", DIRECTORY)
    except OSError as exc:
        raise HostPathUnavailable(f"no process {found.pid} on this machine ({exc.strerror})") from None
    keep: list[int] = []
    try:
        try:
            keep.append(os.pidfd_open(found.pid))
        except (OSError, AttributeError):  # an older kernel: its /proc directory tells instead
            pass
        try:
            root_fd = os.open("root", DIRECTORY, dir_fd=pid_fd)
        except OSError as exc:
            raise HostPathUnavailable(
                f"cannot open the container's root from this user ({exc.strerror})"
            ) from None
        keep.append(root_fd)
        _check_identity(pid_fd, root_fd, found)
    except BaseException:
        for fd in [pid_fd, *keep]:
            os.close(fd)
        raise
    if len(keep) == 2:
        os.close(pid_fd)
        return ContainerRoot(root_fd, keep[0], pidfd=True)
    return ContainerRoot(root_fd, pid_fd, pidfd=False)


def _check_identity(pid_fd: int, root_fd: int, found: Inspected) -> None:
    """The process still is the container's (read after its root was opened) and its root is not ours."""
    try:
        cgroup_fd = os.open("cgroup", os.O_RDONLY | os.O_CLOEXEC, dir_fd=pid_fd)
        with os.fdopen(cgroup_fd, "rb") as fh:
            cgroup = fh.read(1 << 16)
    except OSError as exc:
        raise HostPathUnavailable(f"process {found.pid} is gone or unreadable ({exc.strerror})") from None
    if found.id.encode() not in cgroup:
        raise HostPathUnavailable(
            f"process {found.pid} on this machine is not the container's (an engine on another machine "
            "or in another pid namespace)"
        )
    ours, theirs = os.stat("/"), os.fstat(root_fd)
    if (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino):
        raise HostPathUnavailable("the container shares this machine's root directory")


async def find_container_root(
    docker_host: str | None, container: str, environ: Mapping[str, str]
) -> ContainerRoot:
    """`container`'s root directory on this machine; HostPathUnavailable says why not."""
    elsewhere = engine_elsewhere(docker_host, environ)
    if elsewhere is not None:
        raise HostPathUnavailable(elsewhere)
    found = await inspect(
        docker_argv(docker_host, "inspect", "--type", "container", "--format", INSPECT_FORMAT, container)
    )
    return await asyncio.to_thread(open_container_root, found)
