"""A large file's remote hash is taken while the file travels, not after its last byte; small files are
still hashed after, in batches. Against the real sshd."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mediasyncd.sources import Source, open_source
from mediasyncd.transfer.verify import EARLY_HASH
from tests.helpers import remote_table
from tests.sshd import SshServer
from tests.transfer.parts import puller_parts


async def test_a_large_files_hash_is_asked_for_before_it_has_arrived(sshd: SshServer, tmp_path: Path) -> None:
    root = tmp_path / "outputs"
    root.mkdir()
    big = b"".join(
        hashlib.sha256(i.to_bytes(4, "big")).digest() * 1024 for i in range(EARLY_HASH // 32768 + 8)
    )
    (root / "big.mp4").write_bytes(big)
    (root / "small.png").write_bytes(b"s" * 5000)
    table = remote_table(sshd, "r1", root, settle="0s")
    parts = await puller_parts(tmp_path, table)
    remote, config, store = parts.remote, parts.config, parts.store
    events: list[tuple[str, str, float]] = []

    async def opener() -> Source:
        source = await open_source(remote, config.daemon.state_dir)
        real_pull, real_batch, real_hash = source.pull, source.pull_batch, source.sha256

        async def pull(path: str, partial: Path, **kw: Any) -> str:
            try:
                return await real_pull(path, partial, **kw)
            finally:
                events.append(("pulled", Path(path).name, time.monotonic()))

        async def pull_batch(root: str, partials: dict[str, Path], **kw: Any) -> None:
            try:
                await real_batch(root, partials, **kw)
            finally:
                events.extend(("pulled", Path(rel).name, time.monotonic()) for rel in partials)

        async def sha256(paths: Sequence[str]) -> dict[str, str] | None:
            events.extend(("hash asked", Path(p).name, time.monotonic()) for p in paths)
            return await real_hash(paths)

        source.pull = pull  # type: ignore[method-assign]
        source.pull_batch = pull_batch  # type: ignore[method-assign]
        source.sha256 = sha256  # type: ignore[method-assign]
        return source

    with ThreadPoolExecutor(2) as pool:
        counts = await parts.puller(opener, pool).sync_once()
    await store.close()
    assert counts.landed == 2 and (tmp_path / "lib" / "r1" / "big.mp4").read_bytes() == big
    asked = [(name, t) for kind, name, t in events if kind == "hash asked"]
    pulled = {name: t for kind, name, t in events if kind == "pulled"}
    assert [n for n, _ in asked].count("big.mp4") == 1 and [n for n, _ in asked].count("small.png") == 1
    assert dict(asked)["big.mp4"] < pulled["big.mp4"]  # asked while it travelled
    assert dict(asked)["small.png"] > pulled["small.png"]  # asked for after, with its batch


def test_only_a_source_that_hashes_apart_from_sending_is_asked_early() -> None:
    from mediasyncd.sources.base import Capabilities

    assert Capabilities(hasher="openssl").hashes_apart and Capabilities(hasher="sha256sum").hashes_apart
    assert not Capabilities(hasher=None).hashes_apart
    assert not Capabilities(transport="local", hasher="local").hashes_apart  # the copy's own hash, after it
