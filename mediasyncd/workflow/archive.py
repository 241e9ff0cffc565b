"""`archive`: a second, verified copy at `<dest>/<remote>/<path>` (e.g. a NAS share), written like a
landing: partial -> fsync -> SHA-256 against the hash verified at landing -> rename; the XMP sidecar goes
along. A different file already at the destination is never overwritten. A destination that is missing,
or has lost the marker the stage wrote on first use (an unmounted share shows an empty mount point), is
never created or filled: the stage pauses.

The blocking parts (`destination_problem`, `copy_verified`) are plain functions run in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from mediasyncd.config import Config
from mediasyncd.digest import sha256_file
from mediasyncd.errors import UnsafePathError
from mediasyncd.libc import rename_noreplace
from mediasyncd.paths import check_rel
from mediasyncd.pipeline.xmp import sidecar_path
from mediasyncd.state.workflow import StageLedger
from mediasyncd.workflow.base import Item, Outcome, register

MARKER = ".mediasyncd-archive"
CHUNK = 1 << 20


def target_path(dest: Path, remote: str, rel: str) -> Path:
    """`<dest>/<remote>/<rel>`; `rel` is checked not to lead out of it."""
    check_rel(rel)
    return dest / remote / rel


def destination_problem(dest: Path, used: bool, *, write_marker: bool = True) -> str | None:
    """Why `dest` cannot take files now (None: it can). Writes the marker on first use."""
    if not dest.is_dir():
        return f"archive destination {dest} does not exist (not mounted?)"
    marker = dest / MARKER
    if marker.is_file():
        return None
    if used:
        return f"archive destination {dest} has lost its marker file {MARKER} (not mounted?)"
    if not write_marker:
        return None
    try:
        marker.write_text("mediasyncd archive destination: do not delete this file\n", encoding="utf-8")
    except OSError as exc:
        return f"cannot write the marker file in {dest}: {exc.strerror}"
    return None


@dataclass(frozen=True)
class Copied:
    sha256: str
    already: bool = False  # the same file was there already


class Conflict(Exception):
    """A different file is at the destination."""


class Corrupt(Exception):
    """What was read or written does not hash to the verified SHA-256."""


def copy_verified(source: Path, target: Path, expected: str, partial: Path | None = None) -> Copied:
    """Copy `source` to `target` through a partial, fsync'd and verified against `expected`, then
    renamed; an identical file already at `target` is kept as it is, a different one is a Conflict."""
    if target.exists():
        found = sha256_file(target)
        if found == expected:
            return Copied(found, already=True)
        raise Conflict(f"a different file is already at {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = partial or target.with_name(f".{target.name}.mediasyncd-partial")
    digest = hashlib.sha256()
    try:
        with source.open("rb") as src, partial.open("wb") as out:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != expected:
            raise Corrupt(f"the library copy's SHA-256 differs from the one verified at landing: {source}")
        written = sha256_file(partial)  # read back what the destination holds
        if written != expected:
            raise Corrupt(f"the copy written to {partial} does not verify")
        stat = source.stat()
        os.utime(partial, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        try:
            rename_noreplace(partial, target)  # one appeared meanwhile: never overwrite
        except FileExistsError:
            raise Conflict(f"a different file is already at {target}") from None
    finally:
        partial.unlink(missing_ok=True)
    _fsync_dir(target.parent)
    return Copied(expected)


def copy_sidecar(sidecar: Path, target: Path) -> None:
    """The sidecar follows the file (it is ours: a newer one replaces the old)."""
    if not sidecar.is_file():
        return
    partial = target.with_name(f".{target.name}.mediasyncd-partial")
    try:
        partial.write_bytes(sidecar.read_bytes())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ArchiveStage:
    name = "archive"
    derived = False

    def __init__(self, config: Config, ledger: StageLedger) -> None:
        dest = config.workflow.archive.dest
        if dest is None:
            raise ValueError("workflow.archive.dest is required")
        self.dest = dest
        self.naming = config.pipeline.xmp_naming
        self.ledger = ledger

    async def paused(self, *, dry_run: bool = False) -> str | None:
        used = await self.ledger.used(self.name, str(self.dest))
        return await asyncio.to_thread(destination_problem, self.dest, used, write_marker=not dry_run)

    async def run(self, item: Item, *, dry_run: bool = False) -> Outcome:
        try:
            target = target_path(self.dest, item.row.remote, item.row.rel)
        except UnsafePathError as exc:
            return Outcome.failed(str(exc))
        if dry_run:
            return Outcome("done", str(target), item.sha256, note="dry run")
        try:
            copied = await asyncio.to_thread(copy_verified, item.source, target, item.sha256)
            sidecar = sidecar_path(item.source, self.naming)
            await asyncio.to_thread(copy_sidecar, sidecar, sidecar_path(target, self.naming))
        except (Conflict, Corrupt) as exc:
            return Outcome.failed(str(exc))
        except FileNotFoundError as exc:
            if not self.dest.is_dir():
                return Outcome.waiting(f"archive destination {self.dest} went away")
            return Outcome.failed(f"cannot read or write: {exc}")
        except OSError as exc:
            return Outcome.failed(f"cannot copy: {exc.strerror or exc}")
        return Outcome(
            "done", str(target), copied.sha256, note="already archived" if copied.already else None
        )


register("archive")(ArchiveStage)
