"""`sync --once` against the real OpenSSH sshd: landing, verification, incrementality, names, safety."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    MEDIASYNCD,
    OLD,
    bytes_read_of,
    make_env,
    once,
    opens_of,
    remote_table,
    sftp_log,
    write_config,
)
from tests.sshd import SshServer, ssh_run, start_sshd

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(300_000)


def test_new_files_land_verified_with_remote_mtime_and_modes(tmp_path: Path, sshd: SshServer) -> None:
    """Every new file lands at <library>/<remote>/<rel>, byte-identical, with the remote mtime and modes."""
    env = make_env(tmp_path, sshd)
    env.write("txt2img-images/2026-11-21/00001-42.png", PNG, mtime=1_700_000_000.5)
    env.write("top.jpg", b"jpeg" * 1000)
    assert once(env) == 0
    landed = env.library / "r1" / "txt2img-images/2026-11-21/00001-42.png"
    assert landed.read_bytes() == PNG
    assert landed.stat().st_mtime == pytest.approx(1_700_000_000.5, abs=1e-3)
    assert stat.S_IMODE(landed.stat().st_mode) == 0o644
    assert stat.S_IMODE(landed.parent.stat().st_mode) == 0o755
    assert (env.library / "r1" / "top.jpg").read_bytes() == b"jpeg" * 1000
    sha = hashlib.sha256(PNG).hexdigest()
    assert ("txt2img-images/2026-11-21/00001-42.png", "landed", sha) in env.rows(
        "SELECT rel, state, sha256 FROM files"
    )


def test_unchanged_files_are_not_transferred_again(tmp_path: Path, sshd_logged: SshServer) -> None:
    """A second pass reads nothing: the landed file keeps its inode and the server logs no second open."""
    env = make_env(tmp_path, sshd_logged)
    remote = env.write("a/one.png", PNG)
    assert once(env) == 0
    landed = env.library / "r1" / "a/one.png"
    before = landed.stat()
    assert once(env) == 0
    after = landed.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_ctime_ns) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_ctime_ns,
    )
    assert opens_of(sshd_logged, remote) == 1
    assert len(env.rows()) == 1


def test_only_included_media_are_taken(tmp_path: Path, sshd: SshServer) -> None:
    """Include/exclude globs decide: a .txt is ignored and an excluded folder stays remote."""
    env = make_env(tmp_path, sshd, exclude=["grids/**"])
    env.write("keep.png", PNG)
    env.write("notes.txt", b"text")
    env.write("grids/grid-0001.png", PNG)
    assert once(env) == 0
    assert set(env.landed()) == {"keep.png"}


def test_a_file_written_just_now_waits_for_settle(tmp_path: Path, sshd: SshServer) -> None:
    """In a single pass a file whose mtime is younger than `settle` is left for the next pass."""
    env = make_env(tmp_path, sshd, settle="30s")
    env.write("old.png", PNG)
    env.write("fresh.png", PNG, mtime=time.time())
    done = subprocess.run(
        [MEDIASYNCD, "sync", "--once", "--config", str(env.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert set(env.landed()) == {"old.png"}
    # the report says why a file it saw was not taken, rather than "1 landed" alone
    assert (
        done.stdout.startswith("r1: 1 landed (")
        and ", 1 not settled yet (changed within settle = 30s" in done.stdout
    )


def test_interrupted_transfer_resumes_from_the_partial(tmp_path: Path, sshd_logged: SshServer) -> None:
    """A partial left by an interrupted transfer is continued: the second read starts past its end."""
    env = make_env(tmp_path, sshd_logged)
    data = os.urandom(3_000_000)
    remote = env.write("big.mp4", data)
    assert once(env) == 0  # establishes the row id, then simulate the crash state for a second version
    (env.library / "r1" / "big.mp4").unlink()
    data2 = os.urandom(3_000_000)
    env.write("big.mp4", data2, mtime=OLD + 10)
    # Pre-seed the partial the next version's row will use, as an interrupted transfer leaves it.
    next_id = env.rows("SELECT MAX(id) FROM files")[0][0] + 1
    partial = env.library / ".mediasyncd" / "partial" / "r1" / f"{next_id}.part"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(data2[:1_000_000])
    assert once(env) == 0
    assert (env.library / "r1" / "big.mp4").read_bytes() == data2
    assert bytes_read_of(sshd_logged, remote)[-1] == 2_000_000
    assert not partial.exists()


def test_awkward_names_land_intact(tmp_path: Path, sshd: SshServer) -> None:
    """Spaces, a leading '-', quotes, CJK and emoji are legal names and land unchanged."""
    env = make_env(tmp_path, sshd)
    env.write("x/-rf --no-preserve-root.png", b"not an option")
    names = ["with space.png", "-leading-dash.png", 'it\'s "quoted".png', "日本語/画像.png", "🎨 art/😀.webp"]
    for n in names:
        env.write(n, n.encode() * 100)
    assert once(env) == 0
    landed = env.landed()
    assert set(landed) == {*names, "x/-rf --no-preserve-root.png"}
    assert all(landed[n] == n.encode() * 100 for n in names)


def test_hostile_names_are_skipped_with_a_warning(
    tmp_path: Path, sshd: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Newlines, control characters and invalid UTF-8 are skipped (exit 0); the rest still lands."""
    env = make_env(tmp_path, sshd)
    env.write("fine.png", PNG)
    for raw in (b"new\nline.png", b"bell\x07.png", b"latin1-\xe9.png"):
        path = os.path.join(os.fsencode(env.remote_root), raw)
        with open(path, "wb") as fh:
            fh.write(b"x")
        os.utime(path, (OLD, OLD))
    assert once(env) == 0
    assert set(env.landed()) == {"fine.png"}
    out = capsys.readouterr().out
    assert out.count('"skipping unsafe name"') == 3
    assert "control character" in out and "not valid UTF-8" in out


def test_symlinks_never_lead_outside_the_roots(tmp_path: Path, sshd: SshServer) -> None:
    """Symlinks inside a root (to a secret file or a directory outside) are not followed or landed."""
    env = make_env(tmp_path, sshd)
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    (secret_dir / "passwd.png").write_bytes(b"secret")
    env.write("real.png", PNG)
    (env.remote_root / "link.png").symlink_to(secret_dir / "passwd.png")
    (env.remote_root / "linkdir").symlink_to(secret_dir)
    assert once(env) == 0
    assert set(env.landed()) == {"real.png"}
    written = {p for p in tmp_path.rglob("*") if p.is_file() and "library" not in p.parts}
    assert all(not p.name.endswith(".part") for p in written)


def test_recreated_container_with_reused_names_keeps_both(tmp_path: Path, sshd: SshServer) -> None:
    """A different file at an already landed path lands beside it under a deterministic hashed name."""
    env = make_env(tmp_path, sshd)
    first = b"first container" * 1000
    env.write("txt2img-images/00000-1.png", first)
    assert once(env) == 0
    second = b"second container" * 1000
    env.write("txt2img-images/00000-1.png", second, mtime=OLD + 100)
    assert once(env) == 0
    sha2 = hashlib.sha256(second).hexdigest()
    landed = env.landed()
    assert landed["txt2img-images/00000-1.png"] == first
    assert landed[f"txt2img-images/00000-1~{sha2[:8]}.png"] == second
    rows = env.rows("SELECT local_path, current FROM files ORDER BY id")
    assert rows == [
        ("r1/txt2img-images/00000-1.png", 0),
        (f"r1/txt2img-images/00000-1~{sha2[:8]}.png", 1),
    ]


def test_same_bytes_arriving_again_are_not_duplicated(tmp_path: Path, sshd: SshServer) -> None:
    """A recreated container re-serving identical bytes maps onto the existing landed file."""
    env = make_env(tmp_path, sshd)
    env.write("a.png", PNG)
    assert once(env) == 0
    env.write("a.png", PNG, mtime=OLD + 5)  # touched: same bytes, new mtime
    assert once(env) == 0
    assert set(env.landed()) == {"a.png"}


def test_sftp_only_remote_falls_back_to_an_sftp_walk(tmp_path: Path, sshd_sftp_only: SshServer) -> None:
    """A remote without a shell is listed by SFTP and still lands verified files."""
    env = make_env(tmp_path, sshd_sftp_only)
    env.write("d1/d2/a.png", PNG)
    env.write("b.png", b"b" * 5000)
    assert once(env) == 0
    assert env.landed() == {"d1/d2/a.png": PNG, "b.png": b"b" * 5000}
    assert once(env) == 0
    assert len(env.rows()) == 2


def test_nothing_is_written_outside_the_library(tmp_path: Path, sshd: SshServer) -> None:
    """After a sync with hostile and awkward names, new files exist only in the library and state dir."""
    env = make_env(tmp_path, sshd)
    before = {p for p in tmp_path.rglob("*")}
    env.write("..weird..png", PNG)
    env.write("a/..b/c.png", PNG)
    assert once(env) == 0
    created = {p for p in tmp_path.rglob("*")} - before
    allowed = (env.library, env.state_dir, env.remote_root, sshd.log.parent)
    assert all(any(p.is_relative_to(a) for a in allowed) for p in created)
    assert set(env.landed()) == {"..weird..png", "a/..b/c.png"}


def test_missing_library_is_refused_never_created(tmp_path: Path, sshd: SshServer) -> None:
    """An unmounted NAS (missing library) stops the run with a clear error instead of filling the disk."""
    env = make_env(tmp_path, sshd)
    env.library.rmdir()
    from mediasyncd.errors import LibraryUnavailable

    with pytest.raises(LibraryUnavailable, match="does not exist"):
        once(env)
    assert not env.library.exists()


def test_library_disk_floor_fails_the_pass_clearly(
    tmp_path: Path, sshd: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """With less free space than the floor, the pass exits 1 and says what waits; nothing partial is
    left and the file is not marked failed (it is taken once there is room)."""
    env = make_env(tmp_path, sshd)
    text = env.config_path.read_text().replace('library_min_free = "0"', 'library_min_free = "1000TiB"')
    env.config_path.write_text(text)
    env.write("a.png", PNG)
    assert once(env) == 1
    out = capsys.readouterr().out
    assert "1 waiting for room on the library disk" in out
    assert env.landed() == {}
    assert not list((env.library / ".mediasyncd").rglob("*.part"))
    assert env.rows("SELECT state, attempts FROM files") == [("seen", 0)]
    env.config_path.write_text(text.replace('library_min_free = "1000TiB"', 'library_min_free = "0"'))
    assert once(env) == 0
    assert env.landed() == {"a.png": PNG}


def test_remote_file_removed_after_listing_is_not_a_failure(tmp_path: Path, sshd: SshServer) -> None:
    """A file that vanishes between passes is simply forgotten."""
    env = make_env(tmp_path, sshd, settle="30s")
    path = env.write("gone.png", PNG, mtime=time.time())
    assert once(env) == 0
    path.unlink()
    assert once(env) == 0
    assert env.rows() == []


def test_remote_sha256_is_used_when_available(tmp_path: Path, sshd: SshServer) -> None:
    """With a shell, the remote hashes the file; the recorded SHA-256 equals the remote's sha256sum."""
    env = make_env(tmp_path, sshd)
    remote = env.write("h.png", PNG)
    assert once(env) == 0
    theirs = ssh_run(sshd, f"sha256sum {remote}").stdout.split()[0].decode()
    assert env.rows("SELECT sha256 FROM files") == [(theirs,)]


def test_landed_images_go_through_the_media_pipeline(tmp_path: Path, sshd: SshServer) -> None:
    """With the pipeline on, a landed Forge PNG gets its XMP sidecar, is searchable and ends 'processed'."""
    import random
    import subprocess

    from mediasyncd.demo.images import write_forge_image
    from tests.helpers import MEDIASYNCD

    env = make_env(tmp_path, sshd)
    env.config_path.write_text(env.config_path.read_text().replace("enabled = false", "enabled = true"))
    src = write_forge_image(env.remote_root, 7, random.Random(3), size=64)
    os.utime(src, (OLD, OLD))
    rel = str(src.relative_to(env.remote_root))
    assert once(env) == 0
    landed = env.library / "r1" / rel
    assert landed.with_name(landed.name + ".xmp").exists()
    assert env.rows("SELECT state FROM files") == [("processed",)]
    found = subprocess.run(
        [
            MEDIASYNCD,
            "search",
            "lighthouse OR fox OR alley OR astronaut OR koi",
            "--json",
            "--config",
            str(env.config_path),
        ],
        capture_output=True,
        text=True,
    )
    assert found.returncode == 0 and f"r1/{rel}" in found.stdout


def test_awkward_remote_names_become_library_folders(tmp_path: Path, sshd: SshServer) -> None:
    """A remote named with dots, dashes and underscores lands under a folder of exactly that name."""
    env = make_env(tmp_path, sshd)
    env.config_path.write_text(env.config_path.read_text().replace('name = "r1"', 'name = "gpu.box_2-a"'))
    env.write("a.png", b"a")
    assert once(env) == 0
    assert env.landed("gpu.box_2-a") == {"a.png": b"a"}


def test_small_files_come_in_one_tar_stream(tmp_path: Path, sshd_logged: SshServer) -> None:
    """Dozens of small files land verified without one SFTP open each (one tar stream instead)."""
    env = make_env(tmp_path, sshd_logged)
    files = {
        f"2026-11-{d:02d}/{i:05d}-{i * 7}.png": os.urandom(1000 + i) for d in (20, 21) for i in range(20)
    }
    for rel, data in files.items():
        env.write(rel, data, mtime=OLD + len(data))
    assert once(env) == 0
    assert env.landed() == files
    assert 'open "' not in sftp_log(sshd_logged)
    landed = env.library / "r1" / "2026-11-20/00003-21.png"
    assert landed.stat().st_mtime == pytest.approx(OLD + 1003, abs=1)


def test_a_file_gone_before_its_tar_stream_is_not_a_failure(
    tmp_path: Path, sshd: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listed small file that vanishes before the stream reads it is dropped; the others land."""
    from mediasyncd.sources.ssh.source import SshSource

    pull_batch = SshSource.pull_batch
    env = make_env(tmp_path, sshd)
    for i in range(10):
        env.write(f"s{i}.png", b"%d" % i * 500)

    async def vanish_first(self: SshSource, *args: Any, **kwargs: Any) -> None:
        (env.remote_root / "s0.png").unlink(missing_ok=True)
        await pull_batch(self, *args, **kwargs)

    monkeypatch.setattr(SshSource, "pull_batch", vanish_first)
    assert once(env) == 0
    assert set(env.landed()) == {f"s{i}.png" for i in range(1, 10)}
    assert once(env) == 0
    assert ("s0.png",) not in env.rows("SELECT rel FROM files")


def test_hard_linked_files_both_land_with_their_bytes(tmp_path: Path, sshd: SshServer) -> None:
    """Two names of one inode in the same stream both land with the full content."""
    env = make_env(tmp_path, sshd)
    first = env.write("a/one.png", b"shared" * 300)
    os.link(first, env.remote_root / "a" / "two.png")
    for i in range(4):
        env.write(f"a/other{i}.png", b"x" * (i + 1))
    assert once(env) == 0
    landed = env.landed()
    assert landed["a/one.png"] == landed["a/two.png"] == b"shared" * 300


def test_a_missing_root_fails_the_pass_and_says_so(
    tmp_path: Path, sshd: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A root that does not exist on the remote (a Forge fork's other folder name) is not a silent
    success: the pass exits 1 and names the root; the other roots still sync."""
    gone = str(tmp_path / "remote" / "stable-diffusion-webui" / "outputs")
    env = make_env(tmp_path, sshd, settle="0s", roots=[str(tmp_path / "remote" / "outputs"), gone])
    env.write("a.png", PNG)
    assert once(env) == 1
    assert f"root {gone} is missing on the remote" in capsys.readouterr().err
    assert env.landed() == {"a.png": PNG}


@pytest.mark.parametrize("transport", ["ssh", "openssh"])
def test_many_tiny_files_come_through_a_stock_sshds_session_limit(tmp_path: Path, transport: str) -> None:
    """40 tar streams of tiny files fit the byte budget all at once, but an sshd with its defaults
    (`MaxSessions 10`, `MaxStartups 10:30:100`) refuses the eighth session or so: streams run a few at
    a time (`caps.streams`), and every file lands, over asyncssh and through OpenSSH's `ssh` alike
    (before: "tar stream broke: open failed" after the first few hundred)."""
    with start_sshd(tmp_path / "sshd", extra_config="MaxSessions 10\nMaxStartups 10:30:100") as server:
        env = make_env(tmp_path, server)
        files = {f"previews/{i // 100:02d}/{i:04d}.png": os.urandom(200 + i) for i in range(400)}
        for rel, data in files.items():
            env.write(rel, data)
        reach: dict[str, Any] = {}
        if transport == "openssh":
            reach = {
                "transport": "exec",
                "command": [
                    *("ssh", "-F", "/dev/null", "-i", str(server.client_key), "-p", str(server.port)),
                    *("-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"),
                    *("-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "LogLevel=ERROR"),
                    f"{server.user}@{server.host}", "sh",
                ],
            }  # fmt: skip
        remote = remote_table(server, "r1", env.remote_root, **reach)
        if transport == "openssh":
            for key in ("host", "port", "user", "identity_file", "known_hosts"):
                del remote[key]
        write_config(
            env.config_path,
            env.library,
            env.state_dir,
            [remote],
            transfer={"concurrency": 32, "batch_files": 10},
        )
        assert once(env) == 0
        assert env.landed() == files
