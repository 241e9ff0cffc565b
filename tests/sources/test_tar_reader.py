"""The tar stream reader reads what GNU tar writes as tarfile reads it, and refuses what it cannot read."""

from __future__ import annotations

import io
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from mediasyncd.sources.tar_reader import (
    MAX_QUEUED,
    ROOM,
    Chunks,
    Header,
    TarFormatError,
    archive_end,
    members,
)


def read_all(data: bytes, chunk: int = 7000) -> tuple[list[tuple[Header, bytes]], Chunks]:
    """Every regular member with its data, the stream handed over in `chunk`-byte pieces."""
    chunks = Chunks()

    def feed() -> None:
        for i in range(0, len(data), chunk):
            chunks.queue.put(data[i : i + chunk])
        chunks.queue.put(None)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        got = [(h, b"".join(bytes(p) for p in chunks.pieces(h.size))) for h in members(chunks)]
    finally:
        chunks.drain()
        feeder.join()
    return got, chunks


def gnu_tar(root: Path, names: list[str]) -> bytes:
    """What the SSH source runs on the remote (sources/ssh/tar_shells.py), here."""
    listing = b"".join(n.encode("utf-8", "surrogateescape") + b"\0" for n in names)
    argv = ["tar", "-cf", "-", "--format=gnu", "--null", "--no-recursion", "--hard-dereference", "-C", str(root),
            "-T", "-"]  # fmt: skip
    return subprocess.run(argv, input=listing, capture_output=True, check=True).stdout


@pytest.mark.parametrize("chunk", [1, 511, 512, 10240, 1 << 20])
def test_gnu_tar_members_are_read_as_tarfile_reads_them(tmp_path: Path, chunk: int) -> None:
    """Names (a 180-character one, a non-UTF-8 one), sizes (0 to past a record), mtimes and bytes agree
    with tarfile's reading of GNU tar's own archive; links and folders are not offered; the archive's
    length is where its first zero block says."""
    long_dir = "d" * 120
    (tmp_path / long_dir).mkdir()
    files = {"empty.png": b"", "a.png": b"x" * 100, f"{long_dir}/{'n' * 59}.png": bytes(range(256)) * 90,
             "edge.bin": b"e" * (17 * 512 - 100)}  # fmt: skip
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    odd = b"caf\xe9.png"  # Latin-1, not UTF-8
    with open(bytes(tmp_path) + b"/" + odd, "wb") as fh:
        fh.write(b"odd")
    (tmp_path / "link.png").symlink_to("a.png")
    names = [*files, odd.decode("utf-8", "surrogateescape"), "link.png", long_dir]
    data = gnu_tar(tmp_path, names)

    got, chunks = read_all(data, chunk)

    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        expected = [(i.name, i.size, float(i.mtime), tar.extractfile(i).read())  # type: ignore[union-attr]
                    for i in tar if i.isreg()]  # fmt: skip
    assert [(h.name, h.size, h.mtime, body) for h, body in got] == expected
    assert sorted(h.name for h, _ in got) == sorted(names[:5])
    assert chunks.zero_at is not None and archive_end(chunks.zero_at) == len(data)


def test_members_read_past_are_skipped_whole(tmp_path: Path) -> None:
    """A member whose data the caller does not read, a pax header and an unknown type are skipped with
    their data; the next member still reads right."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [("skipped.png", b"s" * 3000), ("p" * 150 + ".png", b"pax-named")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        odd = tarfile.TarInfo("unknown-type")
        odd.type, odd.size = b"Z", 700
        tar.addfile(odd, io.BytesIO(b"z" * 700))
        last = tarfile.TarInfo("last.png")
        last.size = 4
        tar.addfile(last, io.BytesIO(b"last"))
    chunks = Chunks()
    for part in (out.getvalue(), None):
        chunks.queue.put(part)
    names = [h.name for h in members(chunks)]  # no data read: each is skipped
    # the pax header names the long member; the reader takes the ustar name (pax is not applied)
    assert names[0] == "skipped.png" and names[-1] == "last.png" and "unknown-type" not in names


@pytest.mark.parametrize("damage", ["checksum", "truncated", "number"])
def test_a_damaged_archive_is_refused(damage: str) -> None:
    """A header whose checksum does not add up, a number that is not octal, a stream cut inside a
    member: TarFormatError, never a member with wrong bytes offered as whole."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("a.png")
        info.size = 2000
        tar.addfile(info, io.BytesIO(b"a" * 2000))
    data = bytearray(out.getvalue())
    if damage == "checksum":
        data[0] ^= 1
    elif damage == "number":
        data[124:136] = b"99999999999\0"
        data[148:156] = b"%06o\0 " % (sum(data[:148]) + 256 + sum(data[156:512]))
    else:
        data = data[: 512 + 1000]
    with pytest.raises(TarFormatError):
        read_all(bytes(data))


def test_base_256_sizes_are_read() -> None:
    """GNU tar writes numbers too large for the octal field in base 256."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("a.png")
        info.size, info.mtime = 3, -5  # a negative mtime is written in base 256
        tar.addfile(info, io.BytesIO(b"abc"))
    got, _ = read_all(out.getvalue())
    assert [(h.name, h.mtime, body) for h, body in got] == [("a.png", -5.0, b"abc")]


def test_a_full_queue_wakes_the_putting_side_once_the_thread_has_taken_it_down_to_room() -> None:
    chunks = Chunks()
    woken: list[int] = []
    assert not chunks.when_room(lambda: woken.append(0))  # empty: room now, nothing kept
    for i in range(MAX_QUEUED):
        chunks.queue.put_nowait(bytes([i]) * 10)
    assert chunks.when_room(lambda: woken.append(chunks.queue.qsize()))
    taken = [bytes(p) for p in chunks.pieces(10 * (MAX_QUEUED - ROOM - 1))]
    assert woken == []  # one piece above ROOM still queued
    taken += [bytes(p) for p in chunks.pieces(10)]
    assert woken == [ROOM]
    taken += [bytes(p) for p in chunks.pieces(10)]
    assert woken == [ROOM]  # once per request
    assert taken == [bytes([i]) * 10 for i in range(MAX_QUEUED - ROOM + 1)]


def test_discarding_the_queue_wakes_a_waiting_putter() -> None:
    chunks = Chunks()
    for _ in range(MAX_QUEUED):
        chunks.queue.put_nowait(b"x")
    woken: list[bool] = []
    assert chunks.when_room(lambda: woken.append(True))
    chunks.discard_queued()
    assert woken == [True] and chunks.queue.empty()
