"""A hostile remote swaps a directory for a symlink leading out of its root between listing and transfer
(injected by wrapping the remote's `tar`): nothing from outside the root may land, whatever the bytes
that came. Found by the fault harness (bench/faults/hostile.py)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mediasyncd.errors import RemoteFileChanged
from mediasyncd.sources.ssh.source import SshSource
from tests.helpers import OLD
from tests.hostile import exec_world, wrap
from tests.sshd import SshServer, connect


def test_a_directory_swapped_for_a_symlink_out_of_the_root_lands_nothing_from_outside(tmp_path: Path) -> None:
    """Files of the same size and mtime outside the root, reached through the swapped-in symlink, are received but
    fail verification (the remote's hash is taken with the directory pinned) and never land."""
    world = exec_world(tmp_path)
    inside = {f"sub/{i}.png": os.urandom(1500) for i in range(8)}
    for rel, data in inside.items():
        world.write(rel, data)
    outside = tmp_path / "outside"
    outside.mkdir()
    for rel, data in inside.items():  # same size and mtime: only the content differs
        twin = outside / rel.removeprefix("sub/")
        twin.write_bytes(b"S" * len(data))
        os.utime(twin, (OLD, OLD))
    root = world.remote_root
    wrap(
        world.bin_dir,
        "tar",
        f"mv '{root}/sub' '{root}/.real-sub'; ln -s '{outside}' '{root}/sub'",
        when='*"-cf -"*',
    )
    world.sync()
    assert (root / "sub").is_symlink()
    assert not any(data.startswith(b"SSSS") for data in world.landed().values())


def test_a_root_that_is_itself_a_symlink_still_lands_and_verifies(tmp_path: Path) -> None:
    """The pinning allows the root itself to be a symlink (it is followed, as `find -H` does)."""
    real = tmp_path / "real-outputs"
    (real / "d").mkdir(parents=True)
    (real / "d" / "a.png").write_bytes(b"a" * 900)
    os.utime(real / "d" / "a.png", (1_700_000_000, 1_700_000_000))
    (tmp_path / "link").symlink_to(real)
    world = exec_world(tmp_path / "w", roots=[str(tmp_path / "link")])
    assert world.sync() == 0
    assert world.landed() == {"d/a.png": b"a" * 900}


async def test_an_sftp_only_remote_refuses_a_file_behind_a_directory_swapped_for_a_symlink(
    tmp_path: Path, sshd_sftp_only: SshServer
) -> None:
    """Without a remote hash, the SSH source checks the directory's real path before and after the read:
    a file listed under the root, then reached through a directory swapped for a symlink, is refused."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.png").write_bytes(b"inside")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.png").write_bytes(b"SECRET")  # same size and mtime as the listed file
    os.utime(root / "sub" / "a.png", (OLD, OLD))
    os.utime(outside / "a.png", (OLD, OLD))
    source = await SshSource.start(await connect(sshd_sftp_only))
    try:
        listing = await source.list_roots([str(root)])
        [entry] = listing.entries
        assert entry.rel == "sub/a.png"
        (root / "sub").rename(root / ".real-sub")
        (root / "sub").symlink_to(outside)
        partial = tmp_path / "partial"
        with ThreadPoolExecutor(2) as executor, pytest.raises(RemoteFileChanged):
            await source.pull(
                str(root / "sub" / "a.png"), partial, size=entry.size, mtime=entry.mtime, executor=executor
            )
        assert not partial.exists() or b"SECRET" not in partial.read_bytes()
    finally:
        await source.close()
