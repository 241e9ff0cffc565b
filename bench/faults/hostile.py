"""A hostile container: an `exec` shell remote (a local `sh`) whose PATH starts with lying or racing tools
(tests/hostile.py), synced with `sync --once` and purged, in-process.

Cases: a `find` that lists `..`, absolute and control-character names; real names with control
characters and a ~4 KB path; many files in one directory; a symlink swapped in for a directory between
listing and transfer; files truncated, grown and replaced during transfer; a `tar` that sends a crafted
stream (absolute, `..`, symlink, hardlink, device members, a member larger than listed); a `sha256sum`
that prints garbage; a remote clock ten years fast or slow (faketime).
Counted: writes outside the library, wrong files landed, files wrongly purged, crashes.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

from bench.faults.report import Figure, Mode, Section
from bench.faults.secutil import quiet
from tests.helpers import once
from tests.hostile import (
    LIBFAKETIME,
    ExecWorld,
    exec_world,
    faketime_shell,
    faketime_swept,
    replace_tool,
    wrap,
)
from tests.purge.conftest import purge, purge_env
from tests.sshd import ssh_run, start_sshd

TITLE = "Hostile container: lying tools, crafted names and tar streams, races, a wrong clock"
PROMISE = (
    "rsync and tar refuse `..` and absolute member names (`--protect-args`, GNU tar strips `/` and `..`); "
    "Syncthing never follows symlinks out of a folder."
)
OLD = time.time() - 7200


class Tally:
    def __init__(self) -> None:
        self.outside = 0
        self.wrong = 0
        self.wrongly_purged = 0
        self.crashes = 0
        self.cases = 0
        self.fired = 0  # race hooks that ran (each must, or the race was not tried)
        self.notes: list[str] = []

    def landed_ok(self, world: ExecWorld, originals: dict[str, bytes]) -> None:
        """Every landed file must be byte-for-byte a version the remote file had at some point."""
        remote = world.on_remote()
        for rel, data in world.landed().items():
            if data not in (originals.get(rel), remote.get(rel)):
                self.wrong += 1
                self.notes.append(f"wrong file landed: {rel!r}")


def _sentinels(base: Path) -> list[Path]:
    return [
        base / "escape.png",
        base / "escape2.png",
        base.parent / "escape.png",
        Path("/tmp/abs-hostile.png"),
    ]


def _outside(world: ExecWorld) -> int:
    return sum(p.exists() for p in _sentinels(world.tmp))


def _sync(world: ExecWorld, tally: Tally) -> None:
    tally.cases += 1
    try:
        with quiet():
            world.sync()
    except Exception as exc:  # a crash of the pass, not a refused file
        tally.crashes += 1
        tally.notes.append(f"sync crashed: {exc!r}"[:200])


def _files(world: ExecWorld, n: int, prefix: str = "", size: int = 1500) -> dict[str, bytes]:
    blobs = {f"{prefix}{i:03}.png": os.urandom(size) for i in range(n)}
    for rel, data in blobs.items():
        world.write(rel, data, OLD)
    return blobs


def lying_find(work: Path, tally: Tally) -> None:
    world = exec_world(work / "find")
    root = world.remote_root
    blobs = _files(world, 3)
    lies = ["../../escape.png", "/tmp/abs-hostile.png", "a/../../escape2.png", "ctl\x1b[2J\x07.png", "nul"]
    records = "".join(f"printf '%s\\0f\\0%s\\0%s\\0%s\\0' '{root}' 10 1700000000 '{rel}'; " for rel in lies)
    wrap(world.bin_dir, "find", records, once=False)
    _sync(world, tally)
    tally.outside += _outside(world)
    tally.landed_ok(world, blobs)


def awkward_names(work: Path, tally: Tally) -> None:
    world = exec_world(work / "names")
    blobs = {"ctl\x1b[31m\x07.png": b"a" * 900, "new\nline.png": b"b" * 900, "tab\t.png": b"c" * 900}
    long_rel = "/".join(["d" * 200] * 19) + "/" + "f" * 180 + ".png"  # ~4 KB of path
    blobs[long_rel] = b"d" * 900
    for rel, data in blobs.items():
        try:
            world.write(rel, data, OLD)
        except OSError:
            blobs.pop(rel)
            break
    _sync(world, tally)
    tally.outside += _outside(world)
    tally.landed_ok(world, blobs)


def many_files(work: Path, tally: Tally, n: int) -> tuple[int, float]:
    world = exec_world(work / "many")
    flat = world.remote_root / "flat"
    flat.mkdir()
    for i in range(n):
        path = flat / f"{i:06}.png"
        path.write_bytes(i.to_bytes(4, "big"))
        os.utime(path, (OLD, OLD))
    started = time.monotonic()
    _sync(world, tally)
    seconds = time.monotonic() - started
    landed = (
        len(list((world.library / "r1" / "flat").iterdir()))
        if (world.library / "r1" / "flat").exists()
        else 0
    )
    return landed, seconds


def races(work: Path, tally: Tally) -> None:
    """Between listing and transfer (in a wrapped `tar`, or `tail` for single files): truncate, grow,
    replace files, and swap a directory for a symlink to a folder outside the root."""
    for tool in ("tar", "tail"):
        world = exec_world(work / f"race-{tool}")
        # exec sources stream files below 16 MiB in tar; larger ones come one by one (`tail -c`)
        blobs = _files(world, 3, "", 1500 if tool == "tar" else 17 << 20)
        blobs |= _files(world, 2, "sub/s", 1500)
        outside = world.tmp / "outside"
        outside.mkdir()
        for rel in blobs:
            if rel.startswith("sub/"):  # same size and mtime: only the content differs
                (outside / rel[4:]).write_bytes(b"S" * len(blobs[rel]))
                os.utime(outside / rel[4:], (OLD, OLD))
        r = world.remote_root
        hook = (
            f": > '{r}/000.png'; printf more >> '{r}/001.png'; "
            f"printf replaced > '{r}/x.tmp'; mv '{r}/x.tmp' '{r}/002.png'; "
            f"rm -rf '{r}/sub'; ln -s '{outside}' '{r}/sub'"
        )
        wrap(world.bin_dir, tool, hook, when='*"-cf -"*' if tool == "tar" else "*")
        _sync(world, tally)
        tally.fired += (world.bin_dir / f".{tool}.done").exists()
        tally.landed_ok(world, blobs)
        secret = [rel for rel, data in world.landed().items() if data.startswith(b"S" * 100)]
        if secret:
            tally.notes.append(
                f"{tool}: a file from outside the root landed through a swapped-in symlink: {secret}"
            )
            tally.wrong += len(secret)


def crafted_tar(work: Path, tally: Tally) -> None:
    world = exec_world(work / "tar")
    blobs = _files(world, 4)
    names = sorted(blobs)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:

        def add(name: str, data: bytes = b"", **kw: object) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(OLD)
            for k, v in kw.items():
                setattr(info, k, v)
            tar.addfile(info, io.BytesIO(data) if data else None)

        add("/tmp/abs-hostile.png", b"x" * 10)
        add("../escape.png", b"x" * 10)
        add("../../escape.png", b"x" * 10)
        add(names[0], type=tarfile.SYMTYPE, linkname="/etc/passwd")
        add(names[1], type=tarfile.LNKTYPE, linkname="/etc/passwd")
        add(names[2], type=tarfile.CHRTYPE, devmajor=1, devminor=3)
        add(names[3], b"Z" * (len(blobs[names[3]]) + 4096))  # larger than listed
    crafted = world.tmp / "crafted.tar"
    crafted.write_bytes(buf.getvalue())
    replace_tool(
        world.bin_dir,
        "tar",
        f'case "$*" in *--version*) echo "tar (GNU tar) 1.35";; *) cat "{crafted}";; esac',
    )
    _sync(world, tally)
    tally.outside += _outside(world)
    tally.landed_ok(world, blobs)


def lying_hasher(work: Path, tally: Tally) -> None:
    """`sha256sum` and `openssl` that print zero hashes, garbage and other paths; two files rewritten in
    place (same size and mtime) after landing: none of them may go."""
    world = exec_world(work / "hash")
    blobs = _files(world, 4)
    _sync(world, tally)
    root = world.remote_root
    for rel in sorted(blobs)[:2]:
        path = root / rel
        st = path.stat()
        path.write_bytes(bytes(b ^ 0xFF for b in blobs[rel]))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    lie = f'echo "{"a" * 64}  {root}/other.png"; echo garbage; for f; do echo "{"0" * 64}  $f"; done'
    replace_tool(world.bin_dir, "sha256sum", lie)
    replace_tool(world.bin_dir, "openssl", lie)
    with quiet():
        world.purge()
    remote = world.on_remote()
    tally.wrongly_purged += sum(1 for rel in sorted(blobs)[:2] if rel not in remote)
    tally.wrongly_purged += sum(
        1 for rel in blobs if rel not in remote and world.landed().get(rel) != blobs[rel]
    )


def clock(work: Path, tally: Tally, offset: str) -> None:
    world = exec_world(work / f"clock{offset}", command=faketime_shell(work / f"clock{offset}", offset))
    young = {f"young{i}.png": os.urandom(2000) for i in range(3)}
    for rel, data in young.items():
        world.write(rel, data, time.time() - 120)
    old = _files(world, 2, "old", 2000)
    _sync(world, tally)
    tally.landed_ok(world, young | old)
    with quiet():
        world.purge()
    tally.wrongly_purged += sum(1 for rel in young if rel not in world.on_remote())


def sshd_clock(work: Path, tally: Tally, offset: str) -> None:
    """The same over a real OpenSSH sshd whose sessions run under Debian's libfaketime (sshd's SetEnv):
    its shell's `date` is ten years off, its files were written by the real clock."""
    tmp = work / f"sshd{offset}"
    extra = f"SetEnv LD_PRELOAD={LIBFAKETIME} FAKETIME={offset}"
    with start_sshd(tmp / "sshd", extra_config=extra) as server:
        env = purge_env(tmp, server)
        young = {f"young{i}.png": os.urandom(2000) for i in range(3)}
        for rel, data in young.items():
            env.write(rel, data, time.time() - 120)
        old = {f"old{i}.png": os.urandom(2000) for i in range(2)}
        for rel, data in old.items():
            env.write(rel, data, OLD)
        probe = ssh_run(server, "date +%Y").stdout.decode().strip()
        tally.fired += probe != time.strftime("%Y")
        tally.cases += 1
        with quiet():
            once(env)
            purge(env)
        remote = {str(p.relative_to(env.remote_root)) for p in env.remote_root.rglob("*") if p.is_file()}
        tally.wrongly_purged += sum(1 for rel in young if rel not in remote)
        for rel, data in env.landed().items():
            tally.wrong += data != (young | old).get(rel)
        tally.notes.append(f"sshd sessions under faketime {offset}: the remote's `date +%Y` said {probe}")


def run(mode: Mode, work: Path) -> Section:
    quick = mode is Mode.QUICK
    tally = Tally()
    lying_find(work, tally)
    awkward_names(work, tally)
    races(work, tally)
    crafted_tar(work, tally)
    lying_hasher(work, tally)
    for offset in ("+3650d", "-3650d"):
        with faketime_swept():
            clock(work, tally, offset)
            sshd_clock(work, tally, offset)
    n = 10_000 if quick else 100_000
    landed, seconds = many_files(work, tally, n)
    return Section(
        TITLE,
        PROMISE,
        tally.cases,
        [
            Figure.zero("writes outside the library", tally.outside),
            Figure.zero("wrong files landed", tally.wrong),
            Figure.zero("files wrongly purged", tally.wrongly_purged),
            Figure.zero("sync passes that crashed", tally.crashes),
            Figure.at_least("race hooks and fake clocks that took effect", tally.fired, 4),
            Figure.at_least(f"files landed from one directory of {n:,}", landed, n),
            Figure.info("seconds for that pass", round(seconds, 1)),
        ],
        [
            "Quick mode: 10,000 files in one directory (full mode: 100,000)."
            if quick
            else "100,000 files in one directory, one `sync --once` pass over the exec remote.",
            "Names with control characters (ESC, BEL, newline, tab) are refused at listing by design (reported "
            "as rejected), never landed; `..`, absolute and NUL-cut names from the lying `find` likewise.",
            "Found and fixed: a directory swapped for a symlink out of the root between listing and transfer "
            "let same-size, same-mtime files from outside the root land (the remote's hash was taken through "
            "the symlink too); hashes are now taken with every directory below the root pinned (`cd -P` + "
            "`pwd -P`), so such bytes fail verification (tests/test_hostile_remote.py).",
            "Found and fixed: a remote clock years fast made young files look old to the purge; ages are now "
            "measured on the earlier of the remote's clock and ours (tests/purge/test_purge_races.py).",
            "The lying `sha256sum` prints zero hashes, garbage lines and hashes of other paths; a remote "
            "tool that lies consistently (the right hash for a rewritten file) is beyond what any client can "
            "check: the purge trusts the remote's hash only together with size, mtime and the library copy.",
            *tally.notes[:10],
        ],
    )
