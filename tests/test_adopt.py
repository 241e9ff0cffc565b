"""Adopting a library filled by rsync, against the real sshd: copies already at their landing paths are
recorded as landed and verified without a transfer; anything else is fetched as before."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediasyncd.demo.images import write_forge_image
from mediasyncd.units import format_size
from tests.helpers import MEDIASYNCD, OLD, Env, make_env, once, opens_of, sftp_log, wait_for
from tests.purge.conftest import on_remote, purge, purge_env
from tests.sshd import SshServer, start_sshd

BIG = b"\x89PNG\r\n\x1a\n" + os.urandom(3 << 20)  # past batch_below: would come by SFTP
SMALL = {f"txt2img-images/2026-11-21/{i:05d}-{i}.png": os.urandom(5000 + i) for i in range(6)}  # tar


def fill_remote(env: Env) -> dict[str, bytes]:
    files = {"videos/clip.png": BIG, **SMALL}
    for n, (rel, data) in enumerate(sorted(files.items())):
        env.write(rel, data, mtime=OLD + n + 0.25)
    return files


def rsync_to_library(env: Env) -> None:
    """What a user moving from rsync has: `rsync -a` keeps sizes and mtimes."""
    (env.library / "r1").mkdir(exist_ok=True)
    subprocess.run(["rsync", "-a", f"{env.remote_root}/", f"{env.library / 'r1'}/"], check=True)


def events(env: Env, kind: str) -> list[dict[str, object]]:
    rows = env.rows(f"SELECT data FROM events WHERE type = '{kind}' ORDER BY id")
    return [json.loads(r[0]) for r in rows]


def logs(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def inodes(env: Env) -> dict[str, tuple[int, int]]:
    base = env.library / "r1"
    return {
        str(p.relative_to(base)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in base.rglob("*")
        if p.is_file()
    }


def tree(root: Path) -> list[tuple[str, int, int]]:
    """Every path under `root` (hidden ones too) with its inode and mtime."""
    return sorted(
        (str(p.relative_to(root)), p.lstat().st_ino, p.lstat().st_mtime_ns) for p in root.rglob("*")
    )


def test_a_library_filled_by_rsync_is_adopted_without_fetching_a_byte(
    tmp_path: Path, sshd_logged: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every copy rsync left is recorded landed with its SHA-256 and a `file_synced` marked adopted; the
    pass fetches nothing (no SFTP open, no landed bytes) and leaves the library files as they were."""
    env = make_env(tmp_path, sshd_logged)
    files = fill_remote(env)
    rsync_to_library(env)
    before = inodes(env)
    assert once(env) == 0
    assert "r1: 0 landed (0 B), 7 adopted from the library" in capsys.readouterr().out
    assert 'open "' not in sftp_log(sshd_logged)
    assert inodes(env) == before
    rows = env.rows("SELECT rel, state, sha256, local_path FROM files ORDER BY rel")
    assert rows == [
        (rel, "landed", hashlib.sha256(data).hexdigest(), f"r1/{rel}") for rel, data in sorted(files.items())
    ]
    synced = events(env, "file_synced")
    assert len(synced) == 7 and all(e["adopted"] is True for e in synced)
    (done,) = events(env, "sync_complete")
    assert (done["landed"], done["landed_bytes"], done["adopted"]) == (0, 0, 7)
    assert done["adopted_bytes"] == sum(map(len, files.values()))
    assert not any((env.library / ".mediasyncd" / "partial").rglob("*.part"))


def test_adopted_files_are_purged_from_the_remote_like_landed_ones(tmp_path: Path, sshd: SshServer) -> None:
    """An adopted file is verified: an old one goes from the remote, and its library copy stays."""
    env = purge_env(tmp_path, sshd)
    files = fill_remote(env)
    rsync_to_library(env)
    assert once(env) == 0
    assert purge(env) == 0
    assert on_remote(env) == set()
    assert env.landed() == files


def test_a_copy_with_other_bytes_is_kept_and_the_remote_file_lands_beside_it(
    tmp_path: Path, sshd: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same size and mtime, different SHA-256: not adopted, a warning names the file, the remote file is
    fetched and lands under a hashed name; the library copy is untouched."""
    env = make_env(tmp_path, sshd)
    files = fill_remote(env)
    rsync_to_library(env)
    rel = "txt2img-images/2026-11-21/00002-2.png"
    copy = env.library / "r1" / rel
    st = copy.stat()
    mine = bytes(b ^ 0xFF for b in files[rel])
    copy.write_bytes(mine)
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert once(env) == 0
    out = capsys.readouterr().out
    assert "6 adopted from the library" in out and "1 differing from their library copy" in out
    warned = [e for e in logs(out) if e["level"] == "warning" and str(e["event"]).startswith("not adopted")]
    assert [(e["path"], e["local_path"]) for e in warned] == [(rel, f"r1/{rel}")]
    sha = hashlib.sha256(files[rel]).hexdigest()
    landed = env.landed()
    assert landed[rel] == mine
    assert landed[f"txt2img-images/2026-11-21/00002-2~{sha[:8]}.png"] == files[rel]
    assert env.rows(f"SELECT state, sha256 FROM files WHERE rel = '{rel}'") == [("landed", sha)]


def test_a_copy_with_another_mtime_is_fetched_and_recognised_at_landing(
    tmp_path: Path, sshd_logged: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """An mtime off by more than 2 s makes no candidate: the file is fetched as before (no warning), and
    its identical bytes map onto the library copy, which stays as it was."""
    env = make_env(tmp_path, sshd_logged)
    remote = env.write("videos/clip.png", BIG)
    copy = env.library / "r1" / "videos/clip.png"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(BIG)
    os.utime(copy, (OLD + 3, OLD + 3))
    before = inodes(env)
    assert once(env) == 0
    out = capsys.readouterr().out
    assert "r1: 1 landed" in out and "adopted" not in out.split("r1: 1 landed")[1].splitlines()[0]
    assert not any(e["level"] == "warning" for e in logs(out))
    assert opens_of(sshd_logged, remote) == 1
    assert inodes(env) == before
    assert env.rows("SELECT state, local_path FROM files") == [("landed", "r1/videos/clip.png")]


def test_a_copy_within_two_seconds_of_the_remote_mtime_is_adopted(tmp_path: Path, sshd: SshServer) -> None:
    """A library on FAT keeps mtimes in 2 s steps: such a copy is still adopted."""
    env = make_env(tmp_path, sshd)
    env.write("a.png", BIG, mtime=OLD + 1.75)
    copy = env.library / "r1" / "a.png"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(BIG)
    os.utime(copy, (OLD, OLD))
    assert once(env) == 0
    assert events(env, "file_synced")[0]["adopted"] is True


def test_the_adopt_dry_run_counts_and_changes_nothing(tmp_path: Path, sshd_logged: SshServer) -> None:
    """`sync --once --adopt --dry-run` says how many files would be adopted (and bytes), fetched and found
    different; the state DB, the library and the remote stay exactly as they were."""
    env = make_env(tmp_path, sshd_logged)
    env.write("landed-before.png", b"already synced" * 100)
    assert once(env) == 0
    files = fill_remote(env)
    rsync_to_library(env)
    rel = "txt2img-images/2026-11-21/00001-1.png"
    copy = env.library / "r1" / rel
    st = copy.stat()
    copy.write_bytes(bytes(b ^ 0xFF for b in files[rel]))
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.unlink(env.library / "r1" / "videos/clip.png")
    env.write("new.png", b"new" * 1000)
    db = env.state_dir / "state.db"
    snapshot = (
        db.read_bytes(), env.rows("SELECT * FROM files"), env.rows("SELECT * FROM events"), inodes(env)
    )  # fmt: skip
    remote_before = sorted((p, p.stat().st_mtime_ns) for p in env.remote_root.rglob("*"))
    done = subprocess.run(
        [MEDIASYNCD, "sync", "--once", "--adopt", "--dry-run", "--config", str(env.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    adopt_bytes = sum(len(d) for r, d in SMALL.items() if r != rel)
    fetch_bytes = len(BIG) + len(files[rel]) + 3000
    lines = done.stdout.splitlines()
    assert lines == [
        f"r1: would adopt 5 ({format_size(adopt_bytes)}), would fetch 3 ({format_size(fetch_bytes)}), "
        "mismatched 1 (dry run: nothing changed)",
        f"  differs from the remote (same size and mtime, other SHA-256): r1/{rel}",
    ]
    assert all(opens_of(sshd_logged, env.remote_root / r) == 0 for r in files)
    after = (db.read_bytes(), env.rows("SELECT * FROM files"), env.rows("SELECT * FROM events"), inodes(env))
    assert after == snapshot
    assert sorted((p, p.stat().st_mtime_ns) for p in env.remote_root.rglob("*")) == remote_before


def test_the_dry_run_writes_nothing_into_a_fresh_library(tmp_path: Path, sshd: SshServer) -> None:
    """Before the first sync (no state DB yet, no internal folder in the library) the dry run counts
    every rsync copy as adoptable and creates neither."""
    env = make_env(tmp_path, sshd)
    files = fill_remote(env)
    rsync_to_library(env)
    before = tree(env.library)
    done = subprocess.run(
        [MEDIASYNCD, "sync", "--once", "--adopt", "--dry-run", "--config", str(env.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    size = format_size(sum(map(len, files.values())))
    assert done.stdout.startswith(f"r1: would adopt 7 ({size}), would fetch 0 (0 B), mismatched 0")
    assert not (env.library / ".mediasyncd").exists() and not env.state_dir.exists()
    assert tree(env.library) == before


def test_adopted_images_go_through_the_media_pipeline(tmp_path: Path, sshd: SshServer) -> None:
    """An adopted Forge PNG is processed like a landed one: XMP sidecar, state 'processed'."""
    env = make_env(tmp_path, sshd)
    env.config_path.write_text(env.config_path.read_text().replace("enabled = false", "enabled = true"))
    src = write_forge_image(env.remote_root, 7, random.Random(3), size=64)
    os.utime(src, (OLD, OLD))
    rsync_to_library(env)
    landed = env.library / "r1" / src.relative_to(env.remote_root)
    assert once(env) == 0
    assert events(env, "file_synced")[0]["adopted"] is True
    assert landed.with_name(landed.name + ".xmp").exists()
    assert env.rows("SELECT state FROM files") == [("processed",)]


def test_the_dry_run_needs_adopt(tmp_path: Path, sshd: SshServer) -> None:
    """`--dry-run` alone is a usage error (exit 2): a sync has no other dry run."""
    env = make_env(tmp_path, sshd)
    done = subprocess.run(
        [MEDIASYNCD, "sync", "--once", "--dry-run", "--config", str(env.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--adopt" in done.stderr


@pytest.fixture
def sshd_slow_hash(tmp_path: Path) -> Iterator[tuple[SshServer, Path]]:
    """A real sshd whose `openssl` holds every hash of a real file while the flag file it returns exists
    (the probe's hash of /dev/null goes through): a remote hash that is still running."""
    home = tmp_path / "sshd-slow"
    bin_dir = home / "bin"
    bin_dir.mkdir(parents=True)
    flag = home / "slow"
    flag.touch()
    wrapper = bin_dir / "openssl"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'case "$*" in *dev/null*) ;; *) touch {home}/hashing; while [ -e {flag} ]; do sleep 0.05; done;; esac\n'
        'exec /usr/bin/openssl "$@"\n'
    )
    wrapper.chmod(0o755)
    with start_sshd(home, extra_config=f"SetEnv PATH={bin_dir}:/usr/bin:/bin") as server:
        yield server, home


def test_a_kill_9_during_adoption_records_nothing_and_the_next_pass_adopts(
    tmp_path: Path, sshd_slow_hash: tuple[SshServer, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """kill -9 of `sync --once` while the remote still hashes the candidates: nothing is recorded as
    landed (no state, no event), nothing in the library changed; the next pass adopts every file."""
    server, home = sshd_slow_hash
    env = make_env(tmp_path, server)
    files = fill_remote(env)
    rsync_to_library(env)
    before = inodes(env)
    proc = subprocess.Popen(
        [MEDIASYNCD, "sync", "--once", "--config", str(env.config_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: (home / "hashing").exists() or proc.poll() is not None)
    finally:
        proc.kill()
        proc.wait()
    assert (home / "hashing").exists()
    assert set(env.rows("SELECT state, sha256, local_path FROM files")) == {("seen", None, None)}
    assert env.rows("SELECT type FROM events WHERE type = 'file_synced'") == []
    assert inodes(env) == before
    (home / "slow").unlink()
    assert once(env) == 0
    assert "r1: 0 landed (0 B), 7 adopted from the library" in capsys.readouterr().out
    assert env.rows("SELECT DISTINCT state FROM files") == [("landed",)]
    assert env.landed() == files


def test_folder_listings_find_the_same_copies_as_one_lookup_per_file(tmp_path: Path) -> None:
    """find_copies (a folder with many wanted files listed once) answers file by file as find_copy does:
    copies with the size and mtime wanted, none where the folder is missing, a file, or reached through
    a symlink out of the library, none where the name holds another size or mtime."""
    from mediasyncd.transfer.adopt import LIST_AT, find_copies, find_copy
    from mediasyncd.transfer.landing import Library

    root = tmp_path / "library"
    outside = tmp_path / "outside"
    rng = random.Random(7)
    wanted: list[tuple[str, int, float]] = []
    for folder in ("r/many", "r/few", "r/missing", "r/linked", "r/file", "r/deep/er"):
        for i in range(LIST_AT + 3 if folder != "r/few" else 2):
            rel = f"{folder}/{i}.png"
            size, mtime = rng.randrange(1, 50), 1.7e9 + rng.randrange(1000)
            wanted.append((rel, size, mtime))
            if folder in ("r/missing", "r/file") or rng.random() < 0.2:
                continue  # not in the library
            where = outside / f"{i}.png" if folder == "r/linked" else root / rel
            where.parent.mkdir(parents=True, exist_ok=True)
            where.write_bytes(b"x" * (size if rng.random() < 0.8 else size + 1))
            stamp = mtime if rng.random() < 0.8 else mtime + 5
            os.utime(where, (stamp, stamp))
    (root / "r" / "file").write_bytes(b"not a folder")
    (root / "r" / "linked").symlink_to(outside)
    library = Library(root)
    found = find_copies(library, wanted)
    assert found == [find_copy(library, *w) for w in wanted]
    assert sum(c is not None for c in found) >= 10  # the layout holds copies to find, not only misses
    assert all(c is None for c, (rel, _, _) in zip(found, wanted, strict=True) if rel.startswith("r/linked"))
