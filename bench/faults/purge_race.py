"""Purge races, injected at a chosen step by wrapping a tool of an `exec` shell remote (not by timing luck):
- a render written again at its path right before the remote `rm` (after every hash and lstat);
- a file rewritten in place (same size and mtime) right before the purge sets it aside;
- a library copy deleted, or edited, after it was hashed (while the remote's lstat runs);
- rows lost from the state DB.

Counted: deletions of anything not verified (a remote file gone whose library copy is not its verified
bytes, or a newer render lost), and files verified and deleted (the purge still works).
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.faults.report import Figure, Mode, Section
from tests.hostile import ExecWorld, exec_world, wrap

TITLE = "Purge races: a file rewritten between its hash and its rm"
PROMISE = (
    "rclone `move` deletes a source file only after a checked copy; rsync `--remove-source-files` has "
    "data-loss reports for files rewritten during the run. mediasyncd sets each file aside, re-verifies it "
    "there and deletes only then."
)
FILES = 6


def _world(work: Path, tag: str) -> tuple[ExecWorld, dict[str, bytes]]:
    world = exec_world(work / tag)
    blobs = {f"d{i % 2}/{tag}-{i}.png": os.urandom(3000 + i) for i in range(FILES)}
    for rel, data in blobs.items():
        world.write(rel, data)
    if world.sync() != 0:
        raise RuntimeError(f"{tag}: sync --once failed")
    return world, blobs


def _unverified(world: ExecWorld, blobs: dict[str, bytes], newer: dict[str, bytes]) -> int:
    """Remote files gone without their verified bytes in the library, plus newer renders lost."""
    remote = world.on_remote()
    library = world.landed()
    bad = sum(1 for rel, data in blobs.items() if rel not in remote and library.get(rel) != data)
    return bad + sum(1 for rel, data in newer.items() if remote.get(rel) != data)


def _race(work: Path, kind: str, n: int) -> tuple[int, int, int]:
    """One run of race `kind`: (unverified deletions, verified deletions, purge exit status)."""
    world, blobs = _world(work, f"{kind}-{n}")
    victim_rel = sorted(blobs)[n % FILES]
    victim = world.remote_root / victim_rel
    newer: dict[str, bytes] = {}
    lib = world.library / "r1"
    if kind == "rm":
        newer[victim_rel] = b"a newer render at the same path"
        (world.tmp / "newer").write_bytes(newer[victim_rel])
        wrap(world.bin_dir, "rm", f"cat '{world.tmp / 'newer'}' > '{victim}'")
    elif kind == "mv":
        other = bytes(b ^ 0x5A for b in blobs[victim_rel])
        newer[victim_rel] = other
        (world.tmp / "other").write_bytes(other)
        wrap(
            world.bin_dir,
            "mv",
            f"m=$(stat -c %Y '{victim}'); cat '{world.tmp / 'other'}' > '{victim}'; touch -d @$m '{victim}'",
        )
    elif kind == "library":
        gone, edited = sorted(blobs)[n % FILES], sorted(blobs)[(n + 1) % FILES]
        wrap(world.bin_dir, "stat", f"rm -f '{lib / gone}'; printf x >> '{lib / edited}'")
    elif kind == "rows":
        world.sql("DELETE FROM files WHERE rel = ?", victim_rel)
        blobs_kept = dict(blobs)
        lib_copy = lib / victim_rel
        lib_copy.unlink()  # and the library lost it too: only the remote has it
        blobs = blobs_kept
    status = world.purge()
    remote = world.on_remote()
    deleted = sum(1 for rel in blobs if rel not in remote)
    return _unverified(world, blobs, newer), deleted, status


def run(mode: Mode, work: Path) -> Section:
    reps = 2 if mode is Mode.QUICK else 20
    kinds = ("rm", "mv", "library", "rows")
    unverified = deleted = failed_runs = 0
    for n in range(reps):
        for kind in kinds:
            bad, gone, status = _race(work, kind, n)
            unverified += bad
            deleted += gone
            failed_runs += status != 0
    runs = reps * len(kinds)
    return Section(
        TITLE,
        PROMISE,
        runs,
        [
            Figure.zero("unverified deletions (or newer renders lost)", unverified),
            Figure.zero("purge runs that failed", failed_runs),
            Figure.at_least("verified files deleted (the purge still purges)", deleted, runs * (FILES - 2)),
            Figure.info("files per run", FILES),
        ],
        [
            f"{reps} runs of each race ({', '.join(kinds)}) on an `exec` sh remote whose PATH starts with "
            "a wrapped `rm`, `mv` or `stat` that does the damage first, once.",
            "`rm`: a newer render written at the path right before `rm` survives (the verified file had "
            "been set aside); `mv`: a same-size, same-mtime rewrite right before the set-aside is caught "
            "by the hash in quarantine and put back; `library`: a library copy deleted or edited after it "
            "was hashed keeps its remote copy; `rows`: a file whose DB row and library copy are gone is "
            "never deleted.",
            "Left open by design: a writer that keeps the file open and writes through that descriptor "
            "after the hash in quarantine (the window is the shell's own `hash; rm` step).",
        ],
    )
