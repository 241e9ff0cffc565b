"""Shell commands a source runs on its remote, built as pure values, and parsers of what they print.

Every transport that gives a POSIX shell (SSH today; Docker and `exec` later) runs these through one
long-lived channel: listing, hashing, deleting and measuring free space are one command for many files,
never one exec per file (FIELD_NOTES 3).
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Iterable, Iterator, Sequence

PROBE = (
    "find / -maxdepth 0 -printf '' >/dev/null 2>&1 && echo find-printf; "
    "openssl dgst -sha256 -r /dev/null >/dev/null 2>&1 && echo openssl; "
    "command -v sha256sum >/dev/null 2>&1 && echo sha256sum; "
    "tar --version 2>/dev/null | grep -q 'GNU tar' && echo gnu-tar; true"
)
# Paths passed are absolute, so none can be taken for an option.
HASH_COMMANDS = {"openssl": "openssl dgst -sha256 -r", "sha256sum": "sha256sum --"}
BATCH_FILES = 200  # files per command
BATCH_BYTES = 64 * 1024  # command-line bytes per command


def batches(
    paths: Sequence[str], *, max_files: int = BATCH_FILES, max_bytes: int = BATCH_BYTES
) -> Iterator[list[str]]:
    """Split `paths` into runs that fit one command line (at least one path per batch)."""
    batch: list[str] = []
    size = 0
    for path in paths:
        cost = len(shlex.quote(path).encode()) + 1
        if batch and (len(batch) >= max_files or size + cost > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += cost
    if batch:
        yield batch


def hash_command(hasher: str, paths: Sequence[str]) -> str:
    return f"{HASH_COMMANDS[hasher]} {' '.join(shlex.quote(p) for p in paths)}"


def parse_sha256sum(output: bytes) -> dict[str, str]:
    """Parse `sha256sum` / `openssl dgst -sha256 -r` lines: `<hex>  <path>` or `<hex> *<path>` (sha256sum
    starts a line with a backslash when it escaped the name)."""
    result: dict[str, str] = {}
    for line in output.decode("utf-8", "surrogateescape").split("\n"):
        escaped = line.startswith("\\")
        if escaped:
            line = line[1:]
        if len(line) < 67 or line[64:66] not in ("  ", " *"):
            continue
        digest, name = line[:64], line[66:]
        if escaped:
            name = name.replace("\\n", "\n").replace("\\\\", "\\")
        result[name] = digest.lower()
    return result


def delete_command(paths: Sequence[str]) -> str:
    """`rm -f` the paths, then print (NUL-terminated) every one that still exists."""
    args = " ".join(shlex.quote(p) for p in paths)
    return (
        f'set -- {args}; rm -f -- "$@"; '
        'for f in "$@"; do if [ -e "$f" ] || [ -L "$f" ]; then printf \'%s\\0\' "$f"; fi; done'
    )


def parse_survivors(output: bytes) -> set[str]:
    return {p.decode("utf-8", "surrogateescape") for p in output.split(b"\0") if p}


def emptied_dirs(root: str, paths: Iterable[str]) -> list[str]:
    """Directories between `root` (excluded) and each deleted path, deepest first."""
    base = root.rstrip("/") or "/"
    dirs: set[str] = set()
    for path in paths:
        parent = posixpath.dirname(path)
        while parent != base and parent.startswith(base.rstrip("/") + "/"):
            dirs.add(parent)
            parent = posixpath.dirname(parent)
    return sorted(dirs, key=lambda d: (-d.count("/"), d))


def rmdir_command(dirs: Sequence[str]) -> str:
    """Remove each directory that is empty; non-empty ones stay (rmdir refuses them)."""
    return f"rmdir -- {' '.join(shlex.quote(d) for d in dirs)} 2>/dev/null; true"


def free_space_command(path: str) -> str:
    return f"df -Pk -- {shlex.quote(path)}"


def parse_df(output: bytes) -> int | None:
    """Available bytes from POSIX `df -Pk` output (the 4th column of the last line)."""
    lines = output.decode("utf-8", "replace").strip().splitlines()
    if len(lines) < 2:
        return None
    fields = lines[-1].split()
    try:
        return int(fields[3]) * 1024
    except (IndexError, ValueError):
        return None
