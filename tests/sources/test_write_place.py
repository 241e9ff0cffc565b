"""Tar streams are written on the event loop only where the library's filesystem is local, and move to a
thread for good once a write there stalls."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mediasyncd.sources import tar, write_place
from mediasyncd.sources.tar import Member, unpack_stream
from mediasyncd.sources.write_place import LOCAL_FS, WritePlace, fs_type
from tests.sources import test_tar_hostile as hostile

MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 22 0:21 / /dev/shm rw,nosuid,nodev shared:3 master:2 - tmpfs tmpfs rw,size=24G
30 22 0:45 / /mnt/nas rw,relatime - nfs4 nas:/photos rw,vers=4.2
31 22 0:46 / /mnt/sshfs rw - fuse.sshfs user@gpu:/ rw,user_id=0
32 22 8:17 / /media/stick rw - vfat /dev/sdb1 rw
"""


def test_the_filesystem_type_is_read_from_mountinfo_by_device() -> None:
    assert fs_type(MOUNTINFO, os.makedev(254, 0)) == "ext4"
    assert fs_type(MOUNTINFO, os.makedev(0, 21)) == "tmpfs"  # optional fields before the "-"
    assert fs_type(MOUNTINFO, os.makedev(0, 45)) == "nfs4"
    assert fs_type(MOUNTINFO, os.makedev(9, 9)) is None


@pytest.mark.parametrize(
    ("dev", "on_loop"),
    [
        ((254, 0), True),
        ((0, 21), True),
        ((0, 45), False),
        ((0, 46), False),
        ((8, 17), False),
        ((9, 9), False),
    ],
    ids=["ext4", "tmpfs", "nfs4", "sshfs", "vfat", "unknown"],
)
def test_only_local_filesystems_are_written_on_the_loop(dev: tuple[int, int], on_loop: bool) -> None:
    assert WritePlace(lambda: MOUNTINFO).on_loop(os.makedev(*dev)) is on_loop
    assert WritePlace(lambda: MOUNTINFO).on_loop(None) is False


def test_this_machines_own_mountinfo_names_the_filesystem_findmnt_names(tmp_path: Path) -> None:
    place = WritePlace()
    dev = place.device(tmp_path / "not-made-yet" / "partial")
    assert dev == os.stat(tmp_path).st_dev
    kind = subprocess.run(
        ["findmnt", "-n", "-o", "FSTYPE", "-T", str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert place.on_loop(dev) is (kind in LOCAL_FS)


class Forced(hostile.Forced):
    """Every device on the loop (or none), as the test says; `stalled` still moves a device off it."""

    def __init__(self, loop: bool) -> None:
        super().__init__(loop)
        self.moved: set[int] = set()

    def on_loop(self, dev: int | None) -> bool:
        return self.loop and dev not in self.moved

    def stalled(self, dev: int | None, seconds: float) -> None:
        assert dev is not None
        self.moved.add(dev)


class Stream:
    def __init__(self, data: bytes, read: int) -> None:
        self.data, self.read_size = io.BytesIO(data), read

    async def read(self, n: int = -1) -> bytes:
        await asyncio.sleep(0)
        return self.data.read(min(n, self.read_size))


def archive(files: dict[str, bytes]) -> bytes:
    return hostile.archive([hostile.regular(name, data) for name, data in files.items()])


class SlowWrites:
    """`os` for sources/tar.py with every write taking `delay` seconds, and a record of the writing threads."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.threads: set[int] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def write(self, fd: int, data: memoryview) -> int:
        self.threads.add(threading.get_ident())
        time.sleep(self.delay)
        return os.write(fd, data)


@pytest.mark.parametrize("loop", [True, False], ids=["on-loop", "in-thread"])
async def test_members_are_written_where_the_place_says_and_reported_on_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loop: bool
) -> None:
    files = {f"{i}.png": bytes([i]) * (3000 + i) for i in range(6)}
    partials = {name: tmp_path / "p" / name for name in files}
    writes = SlowWrites(0)
    monkeypatch.setattr(tar, "os", writes)
    reported: list[tuple[str, int]] = []
    with ThreadPoolExecutor(2) as pool:
        await unpack_stream(
            Stream(archive(files), 5000), "/r", partials, executor=pool,
            on_member=lambda m: reported.append((m.rel, threading.get_ident())), place=Forced(loop),
        )  # fmt: skip
    await asyncio.sleep(0)
    here = threading.get_ident()
    assert sorted(r for r, _ in reported) == sorted(files) and {t for _, t in reported} == {here}
    assert (writes.threads == {here}) is loop
    assert all(partials[n].read_bytes() == d for n, d in files.items())


async def test_a_write_that_stalls_the_loop_moves_the_stream_to_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fell behind holds its writer: past STALL, this stream's next reads and every later
    stream to that device are written in a thread, and nothing is lost on the way."""
    files = {f"{i}.png": bytes([i]) * 2000 for i in range(8)}
    partials = {name: tmp_path / "p" / name for name in files}
    writes = SlowWrites(0.02)
    monkeypatch.setattr(tar, "os", writes)
    monkeypatch.setattr(write_place, "STALL", 0.01)
    place = Forced(True)
    got: list[Member] = []
    with ThreadPoolExecutor(2) as pool:
        await unpack_stream(
            Stream(archive(files), 2560), "/r", partials, executor=pool, on_member=got.append, place=place
        )
    await asyncio.sleep(0)
    here = threading.get_ident()
    assert place.moved == {os.stat(tmp_path).st_dev}
    assert here in writes.threads and writes.threads - {here}  # the first read on the loop, then threads
    assert sorted(m.rel for m in got) == sorted(files)
    assert all(partials[n].read_bytes() == d for n, d in files.items())
