"""Sources that misbehave: a stopped or removed container, a shell that answers garbage to listing and
hash commands, a local root that disappears. Each gets a clear status; nothing is written outside the
library and nothing is purged without a verified copy."""

from __future__ import annotations

import asyncio
import io
import os
import stat
import tarfile
import time
from pathlib import Path

import pytest

from mediasyncd.daemon import Daemon
from mediasyncd.errors import RemoteError
from mediasyncd.sources.exec.source import ExecSource
from tests.docker_engine import Engine
from tests.helpers import until
from tests.sources.test_transports_e2e import World, make_world

OLD = time.time() - 3600


def fake_tools(directory: Path, **scripts: str) -> list[str]:
    """An `exec` command whose shell finds these scripts first on its PATH."""
    directory.mkdir()
    for name, body in scripts.items():
        path = directory / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return ["env", f"PATH={directory}:/usr/bin:/bin", "sh"]


async def test_a_stopped_container_is_unreachable_with_what_docker_said(
    docker_engine: Engine, tmp_path: Path
) -> None:
    """Opening a stopped container, or using one that stops under an open source, is a RemoteError
    ("unreachable" / "shell gone") naming docker's own words; a removed one too."""
    name = docker_engine.run("mediasyncd-test/busybox:1", f"mst-stop-{os.getpid()}")
    source = await ExecSource.open(docker_engine.shell_argv(name), "docker")
    docker_engine.docker("stop", "-t", "0", name)
    with pytest.raises(RemoteError, match="shell gone"):
        await source.list_roots(["/tmp"])
    await source.close()
    with pytest.raises(RemoteError, match=r"unreachable: .*is not running"):
        await ExecSource.open(docker_engine.shell_argv(name), "docker")
    docker_engine.remove(name)
    with pytest.raises(RemoteError, match=r"unreachable: .*No such container"):
        await ExecSource.open(docker_engine.shell_argv(name), "docker")


@pytest.mark.parametrize("transport", ["docker-busybox", "docker-host"])
async def test_the_daemon_backs_off_from_a_stopped_container_and_resumes_when_it_starts(
    request: pytest.FixtureRequest, docker_engine: Engine, tmp_path: Path, transport: str
) -> None:
    """`/status` shows the docker remote in backoff with the reason while its container is stopped; once
    it runs again, new files land: through its shell, and read from this machine (where the stop is seen
    at the next listing, and the restarted container is found again by its new first process)."""
    name = docker_engine.run("mediasyncd-test/busybox:1", f"mst-daemon-{transport}-{os.getpid()}", [tmp_path])
    world = make_world(request, tmp_path, transport, container=name, poll_interval="0.3s", settle="0s")
    world.write("a.png", b"a" * 100)
    daemon = Daemon(world.config())
    running = asyncio.create_task(daemon.run())
    try:
        await until(lambda: "a.png" in world.landed())
        status = daemon.view.remote("r1")
        assert status.snapshot()["transport"] == "docker" and status.snapshot()["state"] == "connected"
        assert (status.snapshot()["capabilities"] == "docker:host-path") == (transport == "docker-host")
        docker_engine.docker("stop", "-t", "0", name)
        await until(lambda: status.state == "backoff")
        assert status.last_error is not None
        assert "shell gone" in status.last_error or "unreachable" in status.last_error
        world.write("b.png", b"b" * 100)
        docker_engine.docker("start", name)
        await until(lambda: "b.png" in world.landed(), within=60)
    finally:
        daemon.stop.set()
        await running


def test_garbage_listings_land_nothing_and_write_nothing_outside_the_library(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A `find` that answers crafted records (`..`, absolute paths, other roots, junk bytes): nothing
    lands, nothing appears outside the library, the run still ends."""
    root = str(tmp_path / "source" / "outputs")
    records = [
        "now", "1", root, "f", "5", "1", "../../escape.png", root, "f", "5", "1", "/etc/passwd.png",
        "/elsewhere", "f", "5", "1", "x.png", root, "d", "5", "1", "dir.png", root, "f", "nan", "zz", "y.png",
    ]  # fmt: skip
    body = 'for a; do [ "$a" = -printf ] && { printf "%s\\0" ' + " ".join(f"'{r}'" for r in records)
    body += "; head -c 300 /dev/urandom; exit 0; }; done; exit 0"
    command = fake_tools(tmp_path / "bin", find=body)
    world = make_world(request, tmp_path, "exec-sh", command=command)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    world.sync()
    assert world.landed() == {}
    after = sorted(str(p) for p in tmp_path.rglob("*") if "state" not in p.parts and "library" not in p.parts)
    assert set(after) <= set(before)
    assert not (tmp_path / "escape.png").exists()


def test_garbage_hashes_land_nothing_and_purge_deletes_nothing(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A `sha256sum` that lies (wrong digests, junk lines): no file lands (verification fails), the
    failures are counted, and purge deletes nothing, since nothing has a verified copy."""
    body = 'for f; do [ "$f" = -- ] && continue; printf "%064d  %s\\n" 0 "$f"; done; echo junk'
    command = fake_tools(tmp_path / "bin", sha256sum=body, openssl="exit 1")
    world = make_world(request, tmp_path, "exec-sh", command=command)
    world.write("a.png", b"a" * 5000)
    world.write("many/b.png", b"b" * 100)
    assert world.sync() == 1
    assert world.landed() == {}
    assert world.purge() == 0
    assert world.on_source() == {"a.png", "many/b.png"}


def test_a_local_root_that_disappears_is_reported_and_its_library_copies_stay(
    request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unmounted share: the root is reported missing (exit 1), landed copies stay, purge deletes
    nothing and does not fail on it."""
    world: World = make_world(request, tmp_path, "local")
    world.write("a.png", b"a" * 100)
    assert world.sync() == 0
    world.root.rename(tmp_path / "unmounted")
    capsys.readouterr()
    assert world.sync() == 1
    assert "root " + str(world.root) + " is missing" in capsys.readouterr().err
    assert world.landed() == {"a.png": b"a" * 100}
    world.purge()
    assert (tmp_path / "unmounted" / "a.png").exists()


def test_a_crafted_tar_stream_writes_nothing_outside_the_library(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A `tar` that answers with a hostile archive (`../` and absolute names, a symlink and a wrong-size
    member under requested names): nothing is written outside the library, nothing false lands."""
    hostile = tmp_path / "hostile.tar"
    with tarfile.open(hostile, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in (("../../escape.png", b"evil"), (str(tmp_path / "abs.png"), b"evil")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("a.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
        info = tarfile.TarInfo("b.png")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    body = (
        'case "$1" in --version) echo "tar (GNU tar) 1.34";; '
        f'-cf) [ "$2" = /dev/null ] && exit 0; touch {tmp_path / "tar-ran"}; cat {hostile};; esac'
    )
    command = fake_tools(tmp_path / "bin", tar=body)
    world = make_world(request, tmp_path, "exec-sh", command=command)
    world.write("a.png", b"a" * 4)
    world.write("b.png", b"b" * 5)
    for i in range(4):  # enough small files for a stream
        world.write(f"c{i}.png", b"c")
    world.sync()
    assert (tmp_path / "tar-ran").exists()
    assert all(data in (b"a" * 4, b"b" * 5, b"c") for data in world.landed().values())
    assert not list(tmp_path.rglob("escape.png")) and not (tmp_path / "abs.png").exists()
    assert not (tmp_path.parent / "escape.png").exists()


async def test_a_command_cancelled_mid_answer_retires_the_shell() -> None:
    """The rest of an interrupted answer would be read as the next command's: the shell is retired
    (RemoteError, so the session reconnects) instead of answering wrongly."""
    source = await ExecSource.open(["sh"])
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(source.shell.run("sleep 0.3; echo late"), 0.05)
        with pytest.raises(RemoteError, match="interrupted"):
            await source.shell.run("echo next")
    finally:
        await source.close()
