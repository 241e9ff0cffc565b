"""A tar stream's members are verified against the hashes the stream's own shell sent after the archive
(caps.hashes_in_stream): no `sha256` command is asked for them; where the stream brought none, they
are asked for once, after it; a hash from the stream that disagrees fails the file. Real sshd."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mediasyncd.sources import Source, open_source
from mediasyncd.transfer.ledger import PassCounts
from tests.helpers import remote_table
from tests.sshd import SshServer
from tests.transfer.parts import puller_parts

NAMES = [f"img {i}.png" for i in range(6)]

Hashes = dict[str, str] | None


async def sync_batch(
    sshd: SshServer, tmp_path: Path, alter: Callable[[Hashes], Hashes]
) -> tuple[PassCounts, list[list[str]], dict[str, bytes]]:
    """One pass over six small files (one tar stream); `alter` rewrites what pull_batch returns. Gives
    the pass's counts and the paths of every `sha256` asked for."""
    root = tmp_path / "outputs"
    root.mkdir()
    files = {name: os.urandom(20_000) for name in NAMES}
    for name, data in files.items():
        (root / name).write_bytes(data)
    parts = await puller_parts(tmp_path, remote_table(sshd, "r1", root, settle="0s"))
    asked: list[list[str]] = []

    async def opener() -> Source:
        source = await open_source(parts.remote, parts.config.daemon.state_dir)
        real_batch, real_hash = source.pull_batch, source.sha256
        assert source.caps.hashes_in_stream

        async def pull_batch(root: str, partials: dict[str, Path], **kw: Any) -> Hashes:
            return alter(await real_batch(root, partials, **kw))

        async def sha256(paths: Sequence[str]) -> Hashes:
            asked.append([Path(p).name for p in paths])
            return await real_hash(paths)

        source.pull_batch = pull_batch  # type: ignore[method-assign]
        source.sha256 = sha256  # type: ignore[method-assign]
        return source

    with ThreadPoolExecutor(2) as pool:
        counts = await parts.puller(opener, pool).sync_once()
    await parts.store.close()
    return counts, asked, files


def landed(tmp_path: Path, names: Sequence[str], files: dict[str, bytes]) -> bool:
    return all((tmp_path / "lib" / "r1" / n).read_bytes() == files[n] for n in names)


async def test_a_streams_members_are_checked_against_the_hashes_it_brought(
    sshd: SshServer, tmp_path: Path
) -> None:
    seen: list[Hashes] = []

    def record(hashes: Hashes) -> Hashes:
        seen.append(hashes)
        return hashes

    counts, asked, files = await sync_batch(sshd, tmp_path, record)
    assert counts.landed == 6 and landed(tmp_path, NAMES, files)
    assert asked == []  # nothing asked apart
    assert seen[0] == {
        str(tmp_path / "outputs" / n): hashlib.sha256(data).hexdigest() for n, data in files.items()
    }


async def test_a_stream_without_hashes_has_its_members_hashed_after_it_in_one_command(
    sshd: SshServer, tmp_path: Path
) -> None:
    counts, asked, files = await sync_batch(sshd, tmp_path, lambda h: None)
    assert counts.landed == 6 and landed(tmp_path, NAMES, files)
    assert [sorted(a) for a in asked] == [sorted(NAMES)]


async def test_a_hash_from_the_stream_that_disagrees_fails_that_file_only(
    sshd: SshServer, tmp_path: Path
) -> None:
    def spoil(hashes: Hashes) -> Hashes:
        assert hashes is not None
        return {p: ("0" * 64 if p.endswith(NAMES[2]) else h) for p, h in hashes.items()}

    counts, asked, files = await sync_batch(sshd, tmp_path, spoil)
    assert counts.landed == 5 and counts.failed == 1
    assert any("sha256 mismatch" in f for f in counts.failures)
    assert landed(tmp_path, NAMES[:2] + NAMES[3:], files)
    assert not (tmp_path / "lib" / "r1" / NAMES[2]).exists()
    assert asked == []
