"""Purging a real OpenSSH remote: what goes, what stays and why, dry runs, batching, tidying, min_free."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest

from mediasyncd.purge.runner import RunOptions, purge_remote
from mediasyncd.sources.commands import BATCH_FILES
from mediasyncd.sources.ssh.source import SshSource
from mediasyncd.state import Store
from mediasyncd.state.purge import PurgeLedger
from tests.helpers import OLD, Env, once, small_filesystem
from tests.purge.conftest import listed, on_remote, purge, purge_env, reasons
from tests.sshd import SshServer

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(20_000)


def corrupt(path: Path) -> None:
    """Flip the bits of one byte in place: same size, same mtime, different content."""
    st = path.stat()
    with path.open("r+b") as fh:
        fh.seek(st.st_size // 2)
        byte = fh.read(1)
        fh.seek(st.st_size // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_old_verified_files_are_deleted_from_the_remote_and_stay_in_the_library(
    tmp_path: Path, sshd: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every old verified file goes from the remote, its library copy stays, and each deletion is
    logged with remote, path, size and age."""
    env = purge_env(tmp_path, sshd)
    env.write("txt2img/2026-11-20/00001-1.png", PNG)
    env.write("txt2img/2026-11-20/00002-2.png", PNG[::-1])
    assert once(env) == 0
    before = env.landed()
    assert purge(env) == 0
    assert on_remote(env) == set()
    assert env.landed() == before
    logs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    purged = [e for e in logs if e["event"] == "purged"]
    assert {e["path"] for e in purged} == {"txt2img/2026-11-20/00001-1.png", "txt2img/2026-11-20/00002-2.png"}
    assert all(e["remote"] == "r1" and e["size"] == len(PNG) and e["age_s"] >= 3600 for e in purged)
    assert set(env.rows("SELECT state FROM files WHERE purged_at IS NOT NULL")) == {("purged",)}


def test_every_unsafe_file_is_kept_with_its_reason(
    tmp_path: Path, sshd: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Young, unverified, deleted locally, corrupt locally, changed on the remote (by size/mtime or only
    by content) and preserved files all stay, each with its reason recorded and printed; exit 0."""
    env = purge_env(tmp_path, sshd, purge={"preserve": ["keep/**"]})
    env.write("old.png", PNG)
    env.write("young.png", PNG, mtime=time.time() - 120)
    env.write("unverified.png", PNG, mtime=time.time() + 30)  # still settling: seen, never landed
    for name in ("missing.png", "corrupt.png", "changed.png", "same-size-mtime.png", "keep/precious.png"):
        env.write(name, PNG)
    assert once(env) == 0
    (env.library / "r1/missing.png").unlink()
    corrupt(env.library / "r1/corrupt.png")
    env.write("changed.png", PNG + b"more")
    corrupt(env.remote_root / "same-size-mtime.png")
    capsys.readouterr()

    assert purge(env) == 0

    assert on_remote(env) == {
        "young.png", "unverified.png", "missing.png", "corrupt.png", "changed.png", "same-size-mtime.png",
        "keep/precious.png",
    }  # fmt: skip
    assert reasons(env) == {
        "old.png": "purged",
        "young.png": "too_young",
        "unverified.png": "not_verified",
        "missing.png": "missing_locally",
        "corrupt.png": "corrupt_locally",
        "changed.png": "changed_on_remote",
        "same-size-mtime.png": "remote_hash_mismatch",
        "keep/precious.png": "preserved",
    }
    out = capsys.readouterr().out
    assert f"keep {env.remote_root}/corrupt.png: local copy's SHA-256 differs" in out
    assert "r1: 1 file(s) deleted" in out


def test_a_file_rewritten_after_its_remote_hash_was_taken_is_kept(
    tmp_path: Path, sshd: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a remote that hashes, the plan's hashes may be minutes old when a batch is deleted: a file
    rewritten in between (new content, new mtime) is spared by the lstat taken right before its batch."""
    import mediasyncd.purge.runner as runner

    env = purge_env(tmp_path, sshd)
    env.write("steady.png", PNG)
    env.write("rewritten.png", PNG[::-1])
    assert once(env) == 0
    evidence = runner._evidence

    async def then_rewrite(*args: object, **kwargs: object) -> object:
        found = await evidence(*args, **kwargs)  # type: ignore[arg-type]
        env.write("rewritten.png", PNG[::-1] + b"new", mtime=OLD + 60)
        return found

    monkeypatch.setattr(runner, "_evidence", then_rewrite)
    assert purge(env) == 0
    assert on_remote(env) == {"rewritten.png"}
    assert (env.remote_root / "rewritten.png").read_bytes() == PNG[::-1] + b"new"
    assert reasons(env) == {"steady.png": "purged", "rewritten.png": "changed_on_remote"}


def test_dry_run_deletes_nothing_and_lists_exactly_what_the_real_run_deletes(
    tmp_path: Path, sshd: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`purge --dry-run` leaves the remote untouched; the real run then deletes exactly its list."""
    env = purge_env(tmp_path, sshd)
    for i in range(6):
        env.write(f"d{i % 2}/old{i}.png", PNG + bytes([i]))
    env.write("young.png", PNG, mtime=time.time() - 60)
    assert once(env) == 0
    (env.library / "r1/d0/old0.png").unlink()
    before = on_remote(env)
    capsys.readouterr()

    assert purge(env, dry_run=True) == 0
    dry = capsys.readouterr().out
    assert on_remote(env) == before
    assert "purged" not in set(reasons(env).values())
    would = listed(dry, "would delete")
    assert len(would) == 5 and "1 file(s) deleted from the library are still on the remote" in dry

    assert purge(env) == 0
    real = capsys.readouterr().out
    assert listed(real, "deleted") == would
    assert {str(env.remote_root / p) for p in before - on_remote(env)} == would


def test_config_dry_run_deletes_nothing(
    tmp_path: Path, sshd: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dry_run = true` in the purge config makes even a plain `mediasyncd purge` a dry run."""
    env = purge_env(tmp_path, sshd, purge={"dry_run": True})
    env.write("old.png", PNG)
    assert once(env) == 0
    capsys.readouterr()
    assert purge(env) == 0
    assert on_remote(env) == {"old.png"}
    assert "would delete" in capsys.readouterr().out


async def test_deletes_are_batched_into_a_bounded_number_of_remote_commands(
    tmp_path: Path, sshd: SshServer
) -> None:
    """25 files with batches of 10: one listing, one hash command, three deletes, one rmdir — not 25."""
    env = purge_env(tmp_path, sshd)
    for i in range(25):
        env.write(f"day{i % 5}/{i:05}.png", PNG + bytes([i]))
    assert await asyncio.to_thread(once, env) == 0
    config = env.config()
    store = Store(config.daemon.db_path)
    await store.open()
    host = await SshSource.open(config.remotes[0], config.daemon.state_dir)
    try:
        assert host.shell is not None
        before = host.shell.commands_run
        report = await purge_remote(
            config.remotes[0], host, PurgeLedger(store), env.library, RunOptions(batch_files=10)
        )
        commands = host.shell.commands_run - before
    finally:
        await host.close()
        await store.close()
    assert len(report.deleted) == 25 and on_remote(env) == set()
    assert commands == 1 + 1 + 3 + 1
    assert BATCH_FILES >= 100  # the default batch is large: one command per hundreds of files


def test_empty_directories_are_removed_but_roots_stay(tmp_path: Path, sshd: SshServer) -> None:
    """Directories left empty by the purge go (nested ones too); non-empty ones and the root stay."""
    env = purge_env(tmp_path, sshd)
    env.write("a/b/c/deep.png", PNG)
    env.write("a/top.png", PNG[::-1])
    env.write("mixed/old.png", PNG + b"1")
    env.write("mixed/young.png", PNG + b"2", mtime=time.time() - 60)
    (env.remote_root / "untouched-empty").mkdir()
    assert once(env) == 0
    assert purge(env) == 0
    dirs = {str(p.relative_to(env.remote_root)) for p in env.remote_root.rglob("*") if p.is_dir()}
    assert dirs == {"mixed", "untouched-empty"}
    env.write("mixed/young.png", PNG + b"2", mtime=OLD)  # now old: the last file goes, the root stays
    assert once(env) == 0
    assert purge(env) == 0
    assert env.remote_root.is_dir() and not (env.remote_root / "mixed").exists()


async def test_min_free_purges_the_oldest_verified_files_and_stops_at_the_threshold(
    tmp_path: Path, sshd: SshServer
) -> None:
    """Below min_free, young verified files go oldest first until the threshold is reached, no further;
    an unverified (corrupt) one is skipped even though it is the oldest."""
    size = 16 << 20
    env = purge_env(tmp_path, sshd, purge={"older_than": "1d"})
    with small_filesystem(env.remote_root, "200m"):  # free space that no other process moves
        await _purge_for_space(env, size)


async def _purge_for_space(env: Env, size: int) -> None:
    now = time.time()
    for i in range(5):  # f0 is the oldest
        env.write(f"f{i}.png", os.urandom(size), mtime=now - 5000 + i * 600)
    assert await asyncio.to_thread(once, env) == 0
    corrupt(env.library / "r1/f0.png")  # never purged
    vfs = os.statvfs(env.remote_root)
    min_free = vfs.f_bavail * vfs.f_frsize + size * 3 // 2  # needs two files' worth
    config = env.config()
    remote = replace(config.remotes[0], purge=replace(config.remotes[0].purge, min_free=min_free))
    store = Store(config.daemon.db_path)
    await store.open()
    host = await SshSource.open(remote, config.daemon.state_dir)
    try:
        report = await purge_remote(remote, host, PurgeLedger(store), env.library, RunOptions())
    finally:
        await host.close()
        await store.close()
    assert report.plan.free is not None
    assert sorted(d.row.rel for d in report.deleted) == ["f1.png", "f2.png"]
    assert all(d.for_space for d in report.deleted)
    assert on_remote(env) == {"f0.png", "f3.png", "f4.png"}


def test_an_sftp_only_remote_is_purged_over_sftp(tmp_path: Path, sshd_sftp_only: SshServer) -> None:
    """Without a shell, deletes and empty-directory removal go through SFTP, with the same safety."""
    env = purge_env(tmp_path, sshd_sftp_only)
    env.write("x/old.png", PNG)
    env.write("x/y/old2.png", PNG[::-1])
    env.write("young.png", PNG + b"y", mtime=time.time() - 60)
    assert once(env) == 0
    corrupt(env.library / "r1/x/y/old2.png")
    assert purge(env) == 0
    assert on_remote(env) == {"young.png", "x/y/old2.png"}
    assert reasons(env)["x/y/old2.png"] == "corrupt_locally"


def test_files_deleted_locally_are_counted_and_purged_only_on_request(
    tmp_path: Path, sshd: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A copy deleted from the library keeps its remote file (counted) until --include-deleted-locally."""
    env = purge_env(tmp_path, sshd)
    env.write("gone-locally.png", PNG)
    assert once(env) == 0
    (env.library / "r1/gone-locally.png").unlink()
    capsys.readouterr()
    assert purge(env) == 0
    assert "1 file(s) deleted from the library are still on the remote" in capsys.readouterr().out
    assert on_remote(env) == {"gone-locally.png"}
    assert env.rows("SELECT deleted_locally FROM purge_runs ORDER BY id DESC LIMIT 1") == [(1,)]
    assert once(env) == 0
    assert env.landed() == {}  # never re-fetched
    assert purge(env, include_deleted_locally=True) == 0
    assert on_remote(env) == set()


def test_an_unavailable_library_purges_nothing(tmp_path: Path, sshd: SshServer) -> None:
    """With the library's NAS unmounted (an empty mount point), even --include-deleted-locally deletes
    nothing and the run fails."""
    env = purge_env(tmp_path, sshd)
    env.write("old.png", PNG)
    assert once(env) == 0
    shutil.move(env.library, tmp_path / "nas-elsewhere")
    env.library.mkdir()
    assert purge(env, include_deleted_locally=True) == 1
    assert on_remote(env) == {"old.png"}
    assert env.rows("SELECT outcome FROM purge_runs") == [("error",)]


def test_an_unreachable_remote_fails_the_run_with_a_recorded_error(
    tmp_path: Path, sshd: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A remote that cannot be reached makes the run exit non-zero and is recorded as a failed run."""
    env = purge_env(tmp_path, sshd, port=1)
    assert purge(env) == 1
    assert "r1: FAILED: cannot connect" in capsys.readouterr().err
    assert env.rows("SELECT outcome FROM purge_runs") == [("error",)]
