"""A Docker container on this machine read from this machine (sources/docker): the container's own files,
never this machine's, whatever names, symlinks or `..` the container shows; the exec path, with the
reason in the summary, wherever that reading is not possible."""

from __future__ import annotations

import hashlib
import os
import shlex
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mediasyncd.config import RemoteConfig
from mediasyncd.config_remote import FilesVia
from mediasyncd.errors import RemoteError, RemoteFileChanged
from mediasyncd.sources import Expected, Source
from mediasyncd.sources.docker.container import (
    HostPathUnavailable,
    Inspected,
    engine_elsewhere,
    open_container_root,
    parse_inspect,
)
from mediasyncd.sources.docker.roots import resolve_in
from mediasyncd.sources.docker.source import open_docker
from tests.docker_engine import Engine

SHADOW_SIZE = Path("/etc/shadow").stat().st_size  # on this machine, not in the test images


@pytest.fixture(scope="module")
def layered(docker_engine: Engine) -> Iterator[str]:
    """A busybox container with nothing bound in: what a test writes into it lives in its own layer."""
    name = docker_engine.run("mediasyncd-test/busybox:1", f"mst-layer-{os.getpid()}")
    yield name
    docker_engine.remove(name)


def in_container(engine: Engine, name: str, script: str) -> str:
    return engine.docker("exec", name, "sh", "-c", script)


def remote(engine: Engine, name: str, *roots: Path, files_via: FilesVia = "auto") -> RemoteConfig:
    return RemoteConfig(
        "c", transport="docker", container=name, docker_host=engine.host, roots=tuple(map(str, roots)),
        files_via=files_via,
    )  # fmt: skip


@pytest.fixture
async def executor() -> AsyncIterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as pool:
        yield pool


async def opened(engine: Engine, name: str, *roots: Path) -> Source:
    source = await open_docker(remote(engine, name, *roots))
    assert source.caps.summary == "docker:host-path"
    return source


async def test_the_containers_own_files_are_read_never_this_machines_at_the_same_path(
    docker_engine: Engine, layered: str, tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    """Files in the container's layer at a path this machine also has (with other files): the listing,
    the bytes, the hash and the deletion are the container's; this machine's files stay untouched."""
    root = tmp_path / "outputs"
    (root / "day").mkdir(parents=True)
    (root / "a.png").write_bytes(b"decoy on this machine")
    (root / "only-here.png").write_bytes(b"not in the container")
    q = shlex.quote(str(root))
    in_container(docker_engine, layered, f"mkdir -p {q}/day && printf container-a > {q}/a.png && "
                 f"printf container-b > {q}/day/b.png")  # fmt: skip
    source = await opened(docker_engine, layered, root)
    try:
        listing = await source.list_roots([str(root)])
        assert sorted((e.rel, e.size) for e in listing.entries) == [("a.png", 11), ("day/b.png", 11)]
        digest = await source.pull(
            str(root / "a.png"), tmp_path / "a.part", size=11, mtime=listing.entries[0].mtime,
            executor=executor,
        )  # fmt: skip
        assert (tmp_path / "a.part").read_bytes() == b"container-a"
        assert digest == hashlib.sha256(b"container-a").hexdigest()
        assert await source.sha256([str(root / "a.png")]) == {str(root / "a.png"): digest}
        mtime = next(e.mtime for e in listing.entries if e.rel == "a.png")
        deletion = await source.delete([Expected(str(root / "a.png"), digest, 11, mtime)])
        assert deletion.deleted == {str(root / "a.png")}
    finally:
        await source.close()
    assert in_container(docker_engine, layered, f"ls -a {q}").split() == [".", "..", "day"]
    assert (root / "a.png").read_bytes() == b"decoy on this machine"


async def test_symlinks_in_the_container_never_lead_to_this_machines_files(
    docker_engine: Engine, layered: str, tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    """Links to /etc/shadow (absolute, and up through `..`), a linked folder, and roots that are links
    to /etc: nothing of this machine's /etc is listed or read; linked roots are the container's /etc."""
    root, abs_root, up_root = tmp_path / "outputs", tmp_path / "abs-root", tmp_path / "up-root"
    q = shlex.quote(str(tmp_path))
    up = "../" * 12 + "etc"
    in_container(docker_engine, layered, (
        f"mkdir -p {q}/outputs && cd {q}/outputs && printf ok > real.png && ln -s /etc/shadow evil.png && "
        f"ln -s {up}/shadow up.png && ln -s /etc etc && ln -s /etc {q}/abs-root && ln -s {up} {q}/up-root"
    ))  # fmt: skip
    source = await opened(docker_engine, layered, root)
    try:
        listing = await source.list_roots([str(root)])
        assert [e.rel for e in listing.entries] == ["real.png"]
        size = SHADOW_SIZE
        for rel in ("evil.png", "up.png", "etc/shadow", "etc/passwd"):
            with pytest.raises(RemoteFileChanged):
                await source.pull(
                    str(root / rel), tmp_path / "x.part", size=size, mtime=0.0, executor=executor
                )
            assert not (tmp_path / "x.part").exists()
        assert await source.sha256([str(root / "evil.png"), str(root / "etc/shadow")]) == {}
        linked = await source.list_roots([str(abs_root), str(up_root)])
        container_etc = {"hostname", "hosts", "resolv.conf"}  # docker's own; busybox's image has no /etc
        assert {e.rel for e in linked.entries if e.root == str(abs_root)} == container_etc
        assert {e.rel for e in linked.entries if e.root == str(up_root)} == container_etc
    finally:
        await source.close()


async def test_a_folder_swapped_for_a_link_after_listing_is_not_followed(
    docker_engine: Engine, layered: str, tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    """A folder replaced by a link to /etc between the listing and the pull: the pull is a changed file,
    not a read through the link."""
    root = tmp_path / "outputs"
    q = shlex.quote(str(root))
    in_container(docker_engine, layered, f"mkdir -p {q}/day && printf abc > {q}/day/shadow")
    source = await opened(docker_engine, layered, root)
    try:
        (entry,) = (await source.list_roots([str(root)])).entries
        in_container(docker_engine, layered, f"mv {q}/day {q}/old && ln -s /etc {q}/day")
        with pytest.raises(RemoteFileChanged):
            await source.pull(str(root / "day/shadow"), tmp_path / "s.part", size=3, mtime=entry.mtime,
                              executor=executor)  # fmt: skip
        assert not (tmp_path / "s.part").exists()
    finally:
        await source.close()


async def test_a_container_that_stops_ends_the_session_at_the_next_listing(
    docker_engine: Engine, tmp_path: Path
) -> None:
    """Its files stay reachable from this machine a while, but the next listing asks the container's
    shell where the roots are: a stopped container is a RemoteError, as over docker exec."""
    name = docker_engine.run("mediasyncd-test/busybox:1", f"mst-host-stop-{os.getpid()}", [tmp_path])
    source = await opened(docker_engine, name, tmp_path)
    try:
        docker_engine.docker("stop", "-t", "0", name)
        with pytest.raises(RemoteError):
            await source.list_roots([str(tmp_path)])
    finally:
        await source.close()
        docker_engine.remove(name)


async def test_files_via_exec_keeps_to_the_shell_and_says_why(docker_engine: Engine, layered: str) -> None:
    """`files_via = "exec"`: everything through `docker exec`, and the summary says so."""
    source = await open_docker(remote(docker_engine, layered, Path("/tmp"), files_via="exec"))
    try:
        assert not source.caps.host_path
        assert source.caps.summary == 'docker:sha256sum,tar (files through docker exec: files_via = "exec")'
    finally:
        await source.close()


def test_a_pid_that_is_not_the_containers_is_refused(docker_engine: Engine, layered: str) -> None:
    """The container's id must be in the process's cgroup (a pid another engine reported, or one
    reused, is some other process here); a pid that does not exist is refused too; the container's own
    pid is taken, with a pidfd that tells when it exits."""
    container_id = docker_engine.docker("inspect", "--format", "{{.Id}}", layered)
    with pytest.raises(HostPathUnavailable, match="not the container's"):
        open_container_root(Inspected(container_id, os.getpid()))
    with pytest.raises(HostPathUnavailable, match="no process"):
        open_container_root(Inspected(container_id, 1 << 30))
    found = parse_inspect(
        docker_engine.docker("inspect", "--format", "{{.Id}} {{.State.Pid}} true", layered).encode()
    )
    container = open_container_root(found)
    assert container.pidfd and container.alive()
    container.close()


def test_only_a_local_socket_may_be_this_machines_engine() -> None:
    """tcp:// and ssh:// engines (from docker_host or DOCKER_HOST) are elsewhere, named without their
    credentials; a unix socket, or no address at all, may be local (the pid checks decide)."""
    assert engine_elsewhere("tcp://admin:pw@docker.lan:2376", {}) == (
        "the engine is reached over tcp://, not a local socket"
    )
    assert "ssh://" in str(engine_elsewhere(None, {"DOCKER_HOST": "ssh://me@box"}))
    assert engine_elsewhere("unix:///run/docker.sock", {"DOCKER_HOST": "tcp://x:1"}) is None
    assert engine_elsewhere(None, {}) is None


def test_garbage_from_the_engine_is_refused() -> None:
    """An inspect answer that is not a full id, a pid and `true` makes the exec path be used, never a
    guess."""
    for answer in (
        b"",
        b"abc 12 true",
        b"f" * 64 + b" 0 true",
        b"f" * 64 + b" 12 false",
        b"f" * 64 + b" x true",
    ):
        with pytest.raises(HostPathUnavailable):
            parse_inspect(answer)
    assert parse_inspect(b"f" * 64 + b" 12 true\n") == Inspected("f" * 64, 12)


def test_roots_resolve_inside_the_given_root_as_the_container_would(tmp_path: Path) -> None:
    """Resolved below a directory standing for the container's root: absolute links start again there,
    `..` stops there, a file, a missing name and a loop of links resolve to nothing."""
    top = tmp_path / "container"
    (top / "data" / "out").mkdir(parents=True)
    (top / "file").write_bytes(b"x")
    (top / "abs").symlink_to("/data")
    (top / "data" / "up").symlink_to("../../../../../../data/out")
    (top / "loop").symlink_to("/loop")
    expected = (top / "data" / "out").stat()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for path in ("/data/out", "/abs/out", "/abs/up", "/../../data/./out", "/data/up/../out"):
            found = resolve_in(fd, path)
            assert found is not None, path
            st = os.fstat(found)
            os.close(found)
            assert (st.st_dev, st.st_ino) == (expected.st_dev, expected.st_ino), path
        for path in ("/file", "/file/x", "/missing", "/loop", "/abs/out/none"):
            assert resolve_in(fd, path) is None, path
    finally:
        os.close(fd)
