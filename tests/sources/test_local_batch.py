"""A local folder's small files come in batches, many per trip to a thread: each delivered file's digest is
the SHA-256 of the bytes in its partial, and a file that vanished, became a symlink or is not the listed
size is left out (the transfer takes it again, one by one)."""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mediasyncd.sources.local import COPY_HOP, LocalSource
from mediasyncd.sources.receive import RateLimiter
from mediasyncd.sources.tar import Member

OLD = 1_700_000_000.0


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (OLD, OLD))
    return path


async def _pull(
    source: LocalSource, root: Path, rels: list[str], partials_dir: Path, sizes: dict[str, int]
) -> list[Member]:
    members: list[Member] = []
    partials = {rel: partials_dir / f"p{i}" for i, rel in enumerate(rels)}
    with ThreadPoolExecutor(2) as executor:
        await source.pull_batch(str(root), partials, executor=executor, on_member=members.append, sizes=sizes)
    return members


async def test_a_batch_delivers_each_file_hashed_as_written(tmp_path: Path) -> None:
    """Files in several folders, more bytes than one trip: every member's digest is its partial's SHA-256,
    and verification hands back the same digest without reading the file again."""
    root = tmp_path / "root"
    blobs = {f"d{i % 3}/sub/f{i}.png": os.urandom(COPY_HOP // 4 + i) for i in range(9)}
    for rel, data in blobs.items():
        _write(root / rel, data)
    source = LocalSource([str(root)])
    sizes = {rel: len(data) for rel, data in blobs.items()}
    members = await _pull(source, root, list(blobs), tmp_path / "partials", sizes)
    assert sorted(m.rel for m in members) == sorted(blobs)
    for i, rel in enumerate(blobs):
        member = next(m for m in members if m.rel == rel)
        partial = tmp_path / "partials" / f"p{i}"
        assert member.sha256 == hashlib.sha256(partial.read_bytes()).hexdigest()
        assert partial.read_bytes() == blobs[rel]
        assert (member.size, member.mtime) == (len(blobs[rel]), OLD)
    paths = [str(root / rel) for rel in blobs]
    hashes = await source.sha256(paths)
    assert hashes == {str(root / rel): hashlib.sha256(data).hexdigest() for rel, data in blobs.items()}


async def test_a_batch_leaves_out_what_is_not_the_listed_file(tmp_path: Path) -> None:
    """A vanished file, a symlink where a file was listed (to a file outside the root), a file in a folder
    swapped for a symlink, and a file that grew are not delivered and leave no partial; the rest are."""
    root = tmp_path / "root"
    outside = _write(tmp_path / "outside" / "secret.png", b"secret" * 100)
    good = _write(root / "a/good.png", b"g" * 1000)
    _write(root / "a/gone.png", b"x" * 1000)
    _write(root / "a/link.png", b"y" * 1000)
    _write(root / "b/inside.png", b"z" * 600)
    _write(root / "a/grew.png", b"w" * 1000)
    sizes = {"a/good.png": 1000, "a/gone.png": 1000, "a/link.png": 1000, "b/inside.png": 600}
    sizes["a/grew.png"] = 1000
    (root / "a/gone.png").unlink()
    (root / "a/link.png").unlink()
    (root / "a/link.png").symlink_to(outside)
    os.rename(root / "b", tmp_path / "b-moved")
    _write(tmp_path / "outside" / "inside.png", b"o" * 600)  # what following the symlink would find
    (root / "b").symlink_to(tmp_path / "outside")
    _write(root / "a/grew.png", b"w" * 1500)
    source = LocalSource([str(root)])
    partials_dir = tmp_path / "partials"
    rels = list(sizes)
    members = await _pull(source, root, rels, partials_dir, sizes)
    assert [m.rel for m in members] == ["a/good.png"]
    assert members[0].sha256 == hashlib.sha256(good.read_bytes()).hexdigest()
    left = sorted(p.name for p in partials_dir.iterdir())
    assert left == [f"p{rels.index('a/good.png')}"]


async def test_bwlimit_paces_a_batch(tmp_path: Path) -> None:
    """`bwlimit` holds for a local folder's batches: 2.5 MiB at 1 MiB/s (a 1 MiB burst allowed) take at
    least 1.5 s."""
    root = tmp_path / "root"
    blobs = {f"f{i}.png": os.urandom(256 << 10) for i in range(10)}
    for rel, data in blobs.items():
        _write(root / rel, data)
    partials = {rel: tmp_path / "partials" / f"p{i}" for i, rel in enumerate(blobs)}
    members: list[Member] = []
    with ThreadPoolExecutor(2) as executor:
        started = time.monotonic()
        await LocalSource([str(root)]).pull_batch(
            str(root), partials, executor=executor, on_member=members.append,
            sizes={rel: len(data) for rel, data in blobs.items()}, limiter=RateLimiter(1 << 20),
        )  # fmt: skip
        took = time.monotonic() - started
    assert took >= 1.4 and sorted(m.rel for m in members) == sorted(blobs)
