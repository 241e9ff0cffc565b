"""The tar stream reader reads what GNU tar writes as tarfile reads it, and refuses what it cannot read."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from mediasyncd.sources.tar_reader import Header, TarFormatError, TarParser, archive_end


class Collect:
    """A MemberWriter keeping what it is given."""

    def __init__(
        self, header: Header, into: list[tuple[Header, bytes]], fail_after: int | None = None
    ) -> None:
        self.header, self.into, self.fail_after = header, into, fail_after
        self.data = bytearray()
        self.state = "open"

    def write(self, piece: memoryview) -> None:
        self.data += piece
        if self.fail_after is not None and len(self.data) > self.fail_after:
            raise OSError(28, "No space left on device")

    def finish(self) -> None:
        assert len(self.data) == self.header.size
        self.state = "finished"
        self.into.append((self.header, bytes(self.data)))

    def abort(self) -> None:
        self.state = "aborted"


def read_all(data: bytes, chunk: int = 7000) -> tuple[list[tuple[Header, bytes]], TarParser]:
    """Every regular member with its data, the stream fed in `chunk`-byte pieces; TarFormatError as
    `feed` or `close` raise it."""
    got: list[tuple[Header, bytes]] = []
    parser = TarParser(lambda h: Collect(h, got))
    for i in range(0, len(data), chunk):
        parser.feed(data[i : i + chunk])
    parser.close()
    return got, parser


def gnu_tar(root: Path, names: list[str]) -> bytes:
    """What the SSH source runs on the remote (sources/tar_shells.py), here."""
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

    got, parser = read_all(data, chunk)

    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        expected = [(i.name, i.size, float(i.mtime), tar.extractfile(i).read())  # type: ignore[union-attr]
                    for i in tar if i.isreg()]  # fmt: skip
    assert [(h.name, h.size, h.mtime, body) for h, body in got] == expected
    assert sorted(h.name for h, _ in got) == sorted(names[:5])
    assert parser.zero_at is not None and archive_end(parser.zero_at) == len(data)
    assert parser.done and parser.consumed == len(data) and parser.trailing == 0


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
    names: list[str] = []

    def skip(h: Header) -> None:
        names.append(h.name)  # no writer: its data is read past

    parser = TarParser(skip)
    parser.feed(out.getvalue())
    assert parser.close() and parser.trailing == 0
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


def test_bytes_after_the_archive_are_counted_not_read_and_a_cut_end_is_not_whole() -> None:
    """The archive ends at its exact length (`done`); what follows is counted in `trailing` (a reused
    shell's stream must not hold any). A stream that ends between members, or inside the end's
    padding, is not whole; inside a member it is a TarFormatError."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("a.png")
        info.size = 700
        tar.addfile(info, io.BytesIO(b"a" * 700))
    data = out.getvalue()
    got: list[tuple[Header, bytes]] = []
    parser = TarParser(lambda h: Collect(h, got))
    parser.feed(data + b"more")
    assert parser.done and parser.consumed == len(data) and parser.trailing == 4 and parser.close()

    between = TarParser(lambda h: Collect(h, []))
    between.feed(data[: 512 + 1024])  # the member whole, no end
    assert not between.done and between.close() is False
    in_end = TarParser(lambda h: Collect(h, []))
    in_end.feed(data[: 512 + 1024 + 512])  # the first zero block, not the padding after it
    assert in_end.zero_at == 1536 and not in_end.done and in_end.close() is False


def test_a_stream_cut_inside_a_member_aborts_its_writer() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("a.png")
        info.size = 5000
        tar.addfile(info, io.BytesIO(b"a" * 5000))
    writers: list[Collect] = []

    def open_member(h: Header) -> Collect:
        writers.append(Collect(h, []))
        return writers[-1]

    parser = TarParser(open_member)
    parser.feed(out.getvalue()[:3000])
    with pytest.raises(TarFormatError):
        parser.close()
    assert [w.state for w in writers] == ["aborted"]


def test_a_writers_error_aborts_it_and_stops_the_parser() -> None:
    """A full disk while writing a member: the error passes out of `feed`, the writer is aborted (its
    partial closed), and nothing more is written from this stream."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in ("a.png", "b.png"):
            info = tarfile.TarInfo(name)
            info.size = 3000
            tar.addfile(info, io.BytesIO(name.encode() * 1000))
    writers: list[Collect] = []

    def open_member(h: Header) -> Collect:
        writers.append(Collect(h, [], fail_after=1000))
        return writers[-1]

    parser = TarParser(open_member)
    with pytest.raises(OSError):
        parser.feed(out.getvalue()[:2048])
    parser.feed(out.getvalue()[2048:])  # read past: the parser stopped
    assert [w.state for w in writers] == ["aborted"] and parser.done
