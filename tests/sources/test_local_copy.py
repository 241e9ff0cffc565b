"""A local folder's copy is hashed once: the copy's hash stands for the file only while the file provably
has not changed (copied whole, same inode, size, mtime and ctime); anything else is read again."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mediasyncd.sources.copied import CTIME_MARGIN_NS, Copied
from mediasyncd.sources.local import COPY_HOP, LocalSource

OLD = 1_700_000_000.0


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (OLD, OLD))
    return path


def _later_than_ctime(path: Path) -> int:
    """A copy start time past the file's ctime by more than the margin."""
    return os.stat(path).st_ctime_ns + CTIME_MARGIN_NS + 1


def test_a_whole_copy_of_an_unchanged_file_is_remembered_once(tmp_path: Path) -> None:
    """The digest is handed out once, for the same file as copied, and then forgotten."""
    path = _write(tmp_path / "a.png", b"x" * 100)
    st = os.stat(path)
    copied = Copied()
    assert copied.remember(str(path), "d1", st, st, whole=True, started_ns=_later_than_ctime(path))
    assert copied.take(str(path), os.lstat(path)) == "d1"
    assert copied.take(str(path), os.lstat(path)) is None


def test_a_resumed_copy_or_a_recent_ctime_is_not_remembered(tmp_path: Path) -> None:
    """Bytes hashed from an earlier attempt's partial, or a file changed within the margin before the copy,
    are read again at verification."""
    path = _write(tmp_path / "a.png", b"x" * 100)
    st = os.stat(path)
    copied = Copied()
    assert not copied.remember(str(path), "d", st, st, whole=False, started_ns=_later_than_ctime(path))
    assert not copied.remember(str(path), "d", st, st, whole=True, started_ns=st.st_ctime_ns)
    assert len(copied) == 0


def test_a_file_changed_during_or_after_the_copy_is_read_again(tmp_path: Path) -> None:
    """A write bumps ctime even when size and mtime are put back: the remembered digest is not used."""
    path = _write(tmp_path / "a.png", b"x" * 100)
    before = os.stat(path)
    started = _later_than_ctime(path)
    copied = Copied()
    assert copied.remember(str(path), "d", before, before, whole=True, started_ns=started)
    time.sleep(0.01)
    _write(path, b"y" * 100)  # same size, mtime set back
    assert copied.take(str(path), os.lstat(path)) is None
    after = os.stat(path)
    assert not copied.remember(str(path), "d", before, after, whole=True, started_ns=started)


def test_copies_remembered_are_bounded(tmp_path: Path) -> None:
    """Copies whose verification never comes do not pile up."""
    path = _write(tmp_path / "a.png", b"x")
    st = os.stat(path)
    copied = Copied(keep=3)
    for i in range(10):
        copied.remember(f"{path}.{i}", "d", st, st, whole=True, started_ns=_later_than_ctime(path))
    assert len(copied) == 3


async def test_local_pull_hashes_what_it_copied_and_verification_sees_a_rewrite(tmp_path: Path) -> None:
    """The pull's digest is the SHA-256 of the bytes landed (several copy trips for a large file), and a
    file rewritten in place after the copy (size and mtime kept) verifies with its new bytes."""
    root = tmp_path / "root"
    data = os.urandom(COPY_HOP * 2 + 12345)
    path = _write(root / "big.bin", data)
    source = LocalSource([str(root)])
    with ThreadPoolExecutor(2) as executor:
        partial = tmp_path / "partial"
        digest = await source.pull(str(path), partial, size=len(data), mtime=OLD, executor=executor)
        assert digest == hashlib.sha256(data).hexdigest()
        assert partial.read_bytes() == data
        await asyncio.sleep(0.01)
        changed = bytes(reversed(data))
        _write(path, changed)
        hashes = await source.sha256([str(path)])
        assert hashes == {str(path): hashlib.sha256(changed).hexdigest()}


async def test_local_pull_resumes_a_partial(tmp_path: Path) -> None:
    """A partial left by an interrupted copy is continued, and the digest covers the whole file."""
    root = tmp_path / "root"
    data = os.urandom(300_000)
    path = _write(root / "f.png", data)
    partial = tmp_path / "partial"
    partial.write_bytes(data[:100_000])
    source = LocalSource([str(root)])
    with ThreadPoolExecutor(2) as executor:
        digest = await source.pull(str(path), partial, size=len(data), mtime=OLD, executor=executor)
    assert digest == hashlib.sha256(data).hexdigest()
    assert partial.read_bytes() == data
    assert await source.sha256([str(path)]) == {str(path): digest}
