"""The long-lived remote shell over the real sshd: output far larger than the SSH channel window (a
listing of a big tree) comes through whole, and the channel stays in step for the next command."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mediasyncd.sources.ssh.source import SshSource
from tests.sshd import SshServer, connect

WINDOW = 2 * 1024 * 1024  # asyncssh's default channel window: what a single readuntil could buffer


@pytest.fixture
async def host(sshd: SshServer) -> AsyncIterator[SshSource]:
    conn = await connect(sshd)
    remote = await SshSource.start(conn)
    yield remote
    await remote.close()


async def test_output_larger_than_the_channel_window_arrives_whole(host: SshSource) -> None:
    assert host.shell is not None
    big = 3 * WINDOW + 12_345
    result = await host.shell.run(
        f"head -c {big} /dev/zero | tr '\\0' o; head -c {WINDOW + 7} /dev/zero >&2; (exit 3)"
    )
    assert result.exit_status == 3
    assert result.stdout == b"o" * big
    assert result.stderr == b"\0" * (WINDOW + 7)
    after = await host.shell.run("printf 'still %s' in-step")
    assert (after.exit_status, after.stdout, after.stderr) == (0, b"still in-step", b"")


async def test_a_tree_whose_listing_exceeds_the_channel_window_is_listed(
    tmp_path: Path, host: SshSource
) -> None:
    root = tmp_path / "outputs"
    names = [f"2026-11-{day:02d}/ComfyUI_{n:05d}_.png" for day in range(1, 11) for n in range(2_500)]
    for day in range(1, 11):
        (root / f"2026-11-{day:02d}").mkdir(parents=True)
    for name in names:
        (root / name).touch()
    assert len(names) * len(str(root) + names[0]) > WINDOW  # find prints the full path of each
    listing = await host.list_roots([str(root)])
    assert listing.method == "find"
    assert sorted(e.rel for e in listing.entries) == sorted(names)
    assert all(e.size == 0 for e in listing.entries)
