"""Listing a remote tree: one `find -printf` through the command channel, or an SFTP walk as fallback.

The command and the parser are pure and unit-tested; `list_tree` is the one place that runs them.
Symlinks inside the roots are never followed (a root that is itself a symlink is), so nothing outside
the configured roots is ever listed.
"""

from __future__ import annotations

import asyncio
import posixpath
import shlex
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import asyncssh

from mediasyncd.errors import RemoteError, UnsafePathError
from mediasyncd.paths import decode_rel
from mediasyncd.transfer.remote import RemoteHost

FIELDS = 5  # root, type, size, mtime, relative path


class RemoteEntry(NamedTuple):
    """One regular file in a listing (a tuple: tens of thousands are made per pass)."""

    root: str
    rel: str
    size: int
    mtime: float

    @property
    def key(self) -> tuple[str, str]:
        return (self.root, self.rel)

    @property
    def path(self) -> str:
        return posixpath.join(self.root, self.rel)


@dataclass(frozen=True)
class Rejected:
    root: str
    raw: bytes
    reason: str

    @property
    def shown(self) -> str:
        return self.raw.decode("utf-8", "backslashreplace").encode("unicode_escape").decode("ascii")


@dataclass
class Listing:
    entries: list[RemoteEntry] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    missing_roots: list[str] = field(default_factory=list)
    remote_now: float | None = None
    method: str = "find"


def find_command(roots: Sequence[str]) -> str:
    """One command that prints the remote clock, then every regular file under `roots`, NUL-separated."""
    quoted = " ".join(shlex.quote(r) for r in roots)
    checks = " ".join(f"[ -d {shlex.quote(r)} ] || printf 'missing\\0%s\\0' {shlex.quote(r)};" for r in roots)
    return (
        f"printf 'now\\0%s\\0' \"$(date +%s.%N)\"; {checks} "
        f"find -H {quoted} -mindepth 1 -type f -printf '%H\\0%y\\0%s\\0%T@\\0%P\\0' 2>/dev/null; true"
    )


def parse_find(output: bytes, roots: Sequence[str]) -> Listing:
    """Parse `find_command` output into entries, rejecting names that cannot land safely."""
    listing = Listing()
    fields = output.split(b"\0")
    if fields and fields[-1] == b"":
        fields.pop()
    i = 0
    root_set = {r.encode() for r in roots}
    while i < len(fields):
        tag = fields[i]
        if tag == b"now" and i + 1 < len(fields):
            listing.remote_now = _clock(fields[i + 1])
            i += 2
            continue
        if tag == b"missing" and i + 1 < len(fields):
            listing.missing_roots.append(fields[i + 1].decode("utf-8", "replace"))
            i += 2
            continue
        if i + FIELDS > len(fields):
            break
        root_b, kind, size, mtime, rel_b = fields[i : i + FIELDS]
        i += FIELDS
        if root_b not in root_set or kind != b"f":
            continue
        root = root_b.decode()
        try:
            rel = decode_rel(rel_b)
            listing.entries.append(RemoteEntry(root, rel, int(size), float(mtime)))
        except UnsafePathError as exc:
            listing.rejected.append(Rejected(root, rel_b, str(exc)))
        except ValueError:
            listing.rejected.append(Rejected(root, rel_b, "unparseable size or mtime"))
    return listing


def _clock(text: bytes) -> float | None:
    """`date +%s.%N`: fractional seconds on GNU date; a date without %N prints it literally."""
    for candidate in (text, text.split(b".", 1)[0]):
        try:
            return float(candidate)
        except ValueError:
            continue
    return None


async def list_tree(host: RemoteHost, roots: Sequence[str]) -> Listing:
    """List every regular file under `roots` in as few round trips as the remote allows."""
    if host.shell is not None and host.caps.find_printf:
        result = await host.shell.run(find_command(roots))
        return parse_find(result.stdout, roots)
    return await sftp_walk(host.sftp, roots)


async def sftp_walk(sftp: asyncssh.SFTPClient, roots: Sequence[str], parallel: int = 16) -> Listing:
    """SFTP-only fallback: walk the roots with up to `parallel` directory reads in flight."""
    listing = Listing(method="sftp")
    for root in roots:
        try:
            attrs = await sftp.stat(root)  # follows a root that is itself a symlink
        except asyncssh.SFTPNoSuchFile:
            listing.missing_roots.append(root)
            continue
        except asyncssh.SFTPError as exc:
            raise RemoteError(f"cannot stat root {root}: {exc.reason}") from None
        if attrs.permissions is None or not stat.S_ISDIR(attrs.permissions):
            listing.missing_roots.append(root)
            continue
        pending: list[bytes] = [b""]
        while pending:
            batch, pending = pending[:parallel], pending[parallel:]
            results = await asyncio.gather(
                *(_readdir(sftp, root, sub) for sub in batch), return_exceptions=True
            )
            for sub, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    if isinstance(result, asyncssh.SFTPError):
                        continue  # vanished or unreadable directory: skip it this pass
                    raise result
                for name, a in result:
                    rel_b = sub + b"/" + name if sub else name
                    mode = a.permissions or 0
                    if stat.S_ISDIR(mode):
                        pending.append(rel_b)
                    elif stat.S_ISREG(mode):
                        try:
                            rel = decode_rel(rel_b)
                            listing.entries.append(RemoteEntry(root, rel, a.size or 0, sftp_mtime(a)))
                        except UnsafePathError as exc:
                            listing.rejected.append(Rejected(root, rel_b, str(exc)))
    return listing


async def _readdir(
    sftp: asyncssh.SFTPClient, root: str, sub: bytes
) -> list[tuple[bytes, asyncssh.SFTPAttrs]]:
    path = root.encode() + (b"/" + sub if sub else b"")
    out: list[tuple[bytes, asyncssh.SFTPAttrs]] = []
    async for entry in sftp.scandir(path):
        name = entry.filename
        assert isinstance(name, bytes)
        if name in (b".", b".."):
            continue
        out.append((name, entry.attrs))
    return out


def sftp_mtime(a: asyncssh.SFTPAttrs) -> float:
    """A file's mtime from SFTP attributes, with the nanoseconds where the server sends them."""
    if a.mtime is None:
        return 0.0
    return float(a.mtime) + (a.mtime_ns % 1_000_000_000) / 1e9 if a.mtime_ns else float(a.mtime)
