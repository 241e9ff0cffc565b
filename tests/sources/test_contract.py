"""The `Source` contract, run unchanged against every implementation: SSH with a shell (files over SFTP,
or over an exec channel: `transfer.stream_above`), SSH that serves SFTP only, a local folder, a shell
behind a command (`sh`, and busybox's `sh` with its minimal userland), Docker containers through their
shell (a busybox one and one with a full userland) and a Docker container read from this machine
(`docker-host`: busybox, its files through its root). Each test states one promise the rest of the
daemon relies on."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from mediasyncd.config import RemoteConfig, TransferConfig
from mediasyncd.errors import RemoteFileChanged
from mediasyncd.sources import Expected, Source, same_version
from mediasyncd.sources.docker.source import open_docker
from mediasyncd.sources.exec.source import ExecSource
from mediasyncd.sources.local import LocalSource
from mediasyncd.sources.ssh.source import SshSource
from tests.docker_engine import Engine
from tests.sshd import connect, start_sshd

OLD = 1_700_000_000.25


@dataclass
class Opened:
    source: Source
    root: Path
    executor: ThreadPoolExecutor
    python: bool = True  # the source's userland has python3

    @property
    def roots(self) -> list[str]:
        return [str(self.root)]

    def path(self, rel: str) -> str:
        return str(self.root / rel)

    def write(self, rel: str, data: bytes, mtime: float = OLD) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
        return path


EXEC_COMMANDS = {"exec-sh": (["sh"], True), "exec-busybox": (["busybox", "sh"], False)}
TRANSPORTS = [
    "ssh", "ssh-stream", "ssh-sftp-only", "local", "exec-sh", "exec-busybox", "docker-busybox", "docker-full",
    "docker-host",
]  # fmt: skip


@pytest.fixture(params=TRANSPORTS)
async def opened(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opened]:
    root = tmp_path / "root"
    root.mkdir()
    with ThreadPoolExecutor(4) as executor:
        if request.param == "local":
            yield Opened(LocalSource([str(root)]), root, executor)
            return
        if request.param == "docker-host":
            host_source = await open_docker(docker_remote(request, root))
            assert host_source.caps.summary == "docker:host-path"
            try:
                yield Opened(host_source, root, executor, python=False)
            finally:
                await host_source.close()
            return
        if request.param in EXEC_COMMANDS or request.param.startswith("docker-"):
            argv, python = EXEC_COMMANDS.get(request.param) or (docker_argv(request, request.param), False)
            exec_source = await ExecSource.open(argv)
            try:
                yield Opened(exec_source, root, executor, python)
            finally:
                await exec_source.close()
            return
        with start_sshd(tmp_path / "sshd", sftp_only=request.param == "ssh-sftp-only") as server:
            # ssh-stream: every file comes over an exec channel (`cat`), not SFTP (transfer.stream_above)
            transfer = (
                TransferConfig(stream_above=1, large_files="exec") if request.param == "ssh-stream" else None
            )
            source = await SshSource.start(await connect(server), transfer)
            try:
                yield Opened(source, root, executor)
            finally:
                await source.close()


def docker_argv(request: pytest.FixtureRequest, param: str) -> list[str]:
    engine: Engine = request.getfixturevalue("docker_engine")
    containers: dict[str, str] = request.getfixturevalue("docker_containers")
    return engine.shell_argv(containers[param.removeprefix("docker-")])


def docker_remote(request: pytest.FixtureRequest, root: Path) -> RemoteConfig:
    """The busybox container, its files read from this machine (the daemon's own choice for it)."""
    engine: Engine = request.getfixturevalue("docker_engine")
    containers: dict[str, str] = request.getfixturevalue("docker_containers")
    return RemoteConfig(
        "c", transport="docker", container=containers["busybox"], docker_host=engine.host, roots=(str(root),)
    )


def write_raw(directory: Path, name: bytes) -> None:
    """A file whose name is raw bytes (not necessarily UTF-8)."""
    fd = os.open(os.path.join(os.fsencode(directory), name), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"b")
    os.close(fd)


async def pull(o: Opened, rel: str, partial: Path, size: int, mtime: float = OLD) -> str:
    return await o.source.pull(o.path(rel), partial, size=size, mtime=mtime, executor=o.executor)


async def test_listing_holds_every_regular_file_with_size_and_mtime(opened: Opened, tmp_path: Path) -> None:
    """Regular files at any depth are listed with their size and mtime; symlinks (to files or to
    directories outside the root) are not followed or listed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"s" * 10)
    opened.write("a.png", b"a" * 100)
    opened.write("day/one/b.png", b"b" * 7, mtime=OLD + 5)
    (opened.root / "link.png").symlink_to(outside / "secret.png")
    (opened.root / "linkdir").symlink_to(outside)
    listing = await opened.source.list_roots(opened.roots)
    got = {e.rel: e for e in listing.entries}
    assert set(got) == {"a.png", "day/one/b.png"}
    assert got["a.png"].size == 100 and got["day/one/b.png"].size == 7
    assert same_version(7, got["day/one/b.png"].mtime, 7, OLD + 5)
    assert listing.missing_roots == [] and listing.rejected == []


async def test_a_missing_root_is_reported_not_an_error(opened: Opened) -> None:
    """A root that does not exist is named in `missing_roots`; the other roots are still listed."""
    opened.write("x.png", b"x")
    gone = str(opened.root.parent / "no-such-root")
    listing = await opened.source.list_roots([*opened.roots, gone])
    assert listing.missing_roots == [gone]
    assert [e.rel for e in listing.entries] == ["x.png"]


async def test_unsafe_names_are_set_aside_with_a_reason(opened: Opened) -> None:
    """Names that cannot land safely (not UTF-8, control characters) are rejected, never listed."""
    opened.write("ok.png", b"ok")
    opened.write("new\nline.png", b"n")
    write_raw(opened.root, b"bad-\xff.png")
    listing = await opened.source.list_roots(opened.roots)
    assert [e.rel for e in listing.entries] == ["ok.png"]
    assert sorted(r.raw for r in listing.rejected) == [b"bad-\xff.png", b"new\nline.png"]
    assert all(r.reason for r in listing.rejected)


@pytest.mark.parametrize("size", [5_000, 3 << 20])
async def test_a_pull_copies_the_bytes_and_returns_their_sha256(
    opened: Opened, tmp_path: Path, size: int
) -> None:
    """Small (buffered) and large (streamed) files arrive whole in the partial, hashed on the way."""
    data = os.urandom(size)
    opened.write("f.bin", data)
    partial = tmp_path / "partials" / "f.part"
    digest = await pull(opened, "f.bin", partial, size)
    assert digest == hashlib.sha256(data).hexdigest()
    assert partial.read_bytes() == data


async def test_a_pull_continues_from_what_the_partial_holds(opened: Opened, tmp_path: Path) -> None:
    """An interrupted transfer resumes at the partial's end: the bytes already there are kept, not
    fetched again (here they differ on purpose, so a restart from zero would show)."""
    data = os.urandom(3 << 20)
    opened.write("big.bin", data)
    partial = tmp_path / "big.part"
    kept = b"X" * (1 << 20)
    partial.write_bytes(kept)
    digest = await pull(opened, "big.bin", partial, len(data))
    expected = kept + data[len(kept) :]
    assert partial.read_bytes() == expected
    assert digest == hashlib.sha256(expected).hexdigest()


async def test_a_shorter_or_vanished_file_is_a_change_and_its_partial_is_dropped(
    opened: Opened, tmp_path: Path
) -> None:
    """A file that no longer has its listed size, or is gone, raises RemoteFileChanged (retried once it
    settles, never counted as a failure) and leaves no partial behind."""
    opened.write("short.bin", os.urandom(2 << 20))
    partial = tmp_path / "short.part"
    with pytest.raises(RemoteFileChanged):
        await pull(opened, "short.bin", partial, 3 << 20)
    assert not partial.exists()
    with pytest.raises(RemoteFileChanged):
        await pull(opened, "never-there.bin", tmp_path / "gone.part", 10)
    assert not (tmp_path / "gone.part").exists()


async def test_still_same_tells_an_unchanged_file_from_a_rewritten_or_missing_one(opened: Opened) -> None:
    """The last check before a delete: same size and mtime, else not the verified version."""
    opened.write("keep.png", b"k" * 10)
    opened.write("rewritten.png", b"r" * 10)
    opened.write("rewritten.png", b"r" * 11)
    same = await opened.source.still_same(
        [
            (opened.path("keep.png"), 10, OLD),
            (opened.path("rewritten.png"), 10, OLD),
            (opened.path("missing.png"), 10, OLD),
        ]
    )
    assert same == {opened.path("keep.png")}


async def test_hashes_of_many_files_come_in_one_call(opened: Opened) -> None:
    """Where the source can hash, every readable path maps to its SHA-256 and a missing one is absent;
    a source that cannot says so with None."""
    blobs = {f"h/{i}.png": os.urandom(1000 + i) for i in range(3)}
    for rel, data in blobs.items():
        opened.write(rel, data)
    got = await opened.source.sha256([opened.path(rel) for rel in blobs] + [opened.path("absent.png")])
    if not opened.source.caps.hashes:
        assert got is None
        return
    assert got == {opened.path(rel): hashlib.sha256(data).hexdigest() for rel, data in blobs.items()}


async def test_a_batch_brings_each_member_hashed_and_with_it_the_sources_own_hashes(
    opened: Opened, tmp_path: Path
) -> None:
    """Many small files in one stream (where `caps.tar` or `caps.batches`): each arrives whole in its
    partial with the SHA-256 of what was written; where `caps.hashes_in_stream` the call returns the
    source's own hashes of them by path (no second command), and where a listed file had vanished the
    stream's hashes are not offered (None: they are asked for apart)."""
    caps = opened.source.caps
    if not (caps.tar or caps.batches):  # files come one by one (sftp-only): the puller never asks
        assert not caps.hashes_in_stream
        return
    assert caps.hashes_in_stream == (caps.tar and caps.hashes)  # a shell that streams and hashes does both
    blobs = {f"day/{i}.png": os.urandom(3000 + i) for i in range(4)} | {"top name.png": os.urandom(10)}
    for rel, data in blobs.items():
        opened.write(rel, data)

    async def batch(rels: list[str]) -> tuple[dict[str, str] | None, dict[str, str]]:
        partials = {rel: tmp_path / "partials" / f"{len(rels)}-{i}.part" for i, rel in enumerate(rels)}
        members: dict[str, str] = {}
        got = await opened.source.pull_batch(
            str(opened.root), partials, executor=opened.executor,
            on_member=lambda m: members.__setitem__(m.rel, m.sha256),
            sizes={rel: len(blobs[rel]) for rel in rels if rel in blobs},
        )  # fmt: skip
        for rel, digest in members.items():
            assert (
                partials[rel].read_bytes() == blobs[rel] and digest == hashlib.sha256(blobs[rel]).hexdigest()
            )
        return got, members

    got, members = await batch(list(blobs))
    assert set(members) == set(blobs)
    theirs = {opened.path(rel): hashlib.sha256(data).hexdigest() for rel, data in blobs.items()}
    assert got == (theirs if caps.hashes_in_stream else None)
    got, members = await batch(["day/0.png", "gone.png", "day/1.png"])
    assert "gone.png" not in members
    assert got is None  # tar said it failed: what its shell would hash next is not taken for the stream


def expected(path: Path) -> Expected:
    st = path.lstat()
    return Expected(str(path), hashlib.sha256(path.read_bytes()).hexdigest(), st.st_size, st.st_mtime)


async def test_delete_removes_files_then_only_the_directories_it_emptied(opened: Opened) -> None:
    """Deleted files are gone (none survives); emptied directories go, the root and directories that
    still hold files stay."""
    for rel in ("d1/a.png", "d1/sub/b.png", "d2/c.png", "d2/stay.png"):
        opened.write(rel, b"x")
    doomed = [expected(opened.root / r) for r in ("d1/a.png", "d1/sub/b.png", "d2/c.png")]
    result = await opened.source.delete(doomed)
    assert result.deleted == {e.path for e in doomed} and not result.kept, result
    await opened.source.remove_empty_dirs(str(opened.root), [e.path for e in doomed])
    left = sorted(str(p.relative_to(opened.root)) for p in opened.root.rglob("*"))
    assert left == ["d2", "d2/stay.png"]


async def test_delete_keeps_a_file_that_is_no_longer_the_verified_version(opened: Opened) -> None:
    """A file rewritten since it was verified (same size, same mtime, other bytes) is checked after it
    was set aside and put back under its own name; nothing is left under a quarantine name."""
    path = opened.write("rewritten.png", b"first render")
    wanted = expected(path)
    opened.write("rewritten.png", b"other render")
    result = await opened.source.delete([wanted])
    assert result.changed == {wanted.path} and not result.deleted
    if not opened.source.caps.hashes and opened.source.caps.transport != "ssh":
        return  # a shell without a hasher checks size and mtime only: it keeps nothing here
    assert sorted(p.name for p in opened.root.iterdir()) == ["rewritten.png"]
    assert path.read_bytes() == b"other render"


async def test_delete_never_removes_a_symlink_swapped_in_nor_its_target(
    opened: Opened, tmp_path: Path
) -> None:
    """A file replaced by a symlink after listing is not the verified file: the link stays, and so does
    the file it points to, outside the root."""
    target = tmp_path / "precious.png"
    target.write_bytes(b"keep me")
    (opened.root / "swap.png").symlink_to(target)
    wanted = expected(target)._replace(path=opened.path("swap.png"))
    result = await opened.source.delete([wanted])
    assert result.changed == {wanted.path}
    assert (opened.root / "swap.png").is_symlink()
    assert target.read_bytes() == b"keep me"


async def test_free_space_of_the_root_is_measured(opened: Opened) -> None:
    """Free bytes of the root's filesystem, as statvfs sees them (to within 64 MiB)."""
    free = await opened.source.free_space(str(opened.root))
    vfs = os.statvfs(opened.root)
    assert free is not None and abs(free - vfs.f_bavail * vfs.f_frsize) < 64 << 20


async def test_survey_tells_a_directory_root_from_a_missing_one_and_a_file(opened: Opened) -> None:
    """A root that is a directory is `dir`; a missing one and a file both name the nearest existing
    parent and its names (directories with a trailing '/', hidden names left out)."""
    opened.write("a/b/x.png", b"x")
    opened.write("note.txt", b"n")
    (opened.root / ".hidden").mkdir()
    missing = str(opened.root / "gone" / "deeper" / "outputs")
    a_file = str(opened.root / "note.txt")
    survey = await opened.source.survey([*opened.roots, missing, a_file])
    good, gone, flat = survey.roots
    assert (good.root, good.state) == (str(opened.root), "dir")
    assert (gone.state, gone.parent, gone.names, gone.more) == (
        "missing",
        str(opened.root),
        ("a/", "note.txt"),
        0,
    )
    assert (flat.state, flat.parent) == ("not-dir", str(opened.root))


async def test_survey_counts_directories_and_asks_for_python_where_it_has_a_shell(opened: Opened) -> None:
    """With a shell (or locally) the survey counts a root's directories (itself included), says whether
    it is writable, and finds python3 and the inotify limit; over SFTP alone those stay unknown."""
    opened.write("a/b/x.png", b"x")
    opened.write("c/y.png", b"y")
    survey = await opened.source.survey(opened.roots)
    (root,) = survey.roots
    if opened.source.shell is None and opened.source.caps.transport == "ssh":
        assert not survey.host_known and root.dirs is None and root.writable is None
        return
    assert survey.host_known and root.dirs == 4 and root.writable is True
    if opened.python:
        assert survey.python is not None and survey.python.startswith("3.")
    assert survey.inotify_watches == max_user_watches()


def max_user_watches() -> int:
    return int(Path("/proc/sys/fs/inotify/max_user_watches").read_text())
