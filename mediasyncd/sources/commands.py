"""Shell commands a source runs on its remote, built as pure values, and parsers of what they print.

Every transport that gives a POSIX shell (SSH today; Docker and `exec` later) runs these through one
long-lived channel: listing, hashing, deleting and measuring free space are one command for many files,
never one exec per file (FIELD_NOTES 3).
"""

from __future__ import annotations

import posixpath
import re
import secrets
import shlex
from collections.abc import Iterable, Iterator, Sequence

from mediasyncd.sources.base import Deletion, Expected

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
DELETE_BATCH_BYTES = BATCH_BYTES // 2  # of paths: each deletion also carries ~90 bytes of SHA-256 and stat


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


def hash_command(hasher: str, paths: Sequence[str], roots: Sequence[str] = ()) -> str:
    """Hash `paths` with every directory below its root pinned: the shell `cd -P`s into each file's
    directory and hashes it there only if that directory's real path is the root's real path plus the
    listed directories, so a directory swapped for a symlink (leading out of the root) is never read
    through. A path under no known root is pinned from `/`. Prints `@N` before the lines of group N."""
    variables = _root_variables(roots)
    lines = _root_lines(variables)
    lines.append(
        'g() { d=$1; i=$2; shift 2; cd -P -- "$d" 2>/dev/null && [ "$(pwd -P)" = "$d" ] && '
        f'{{ printf \'@%s\\n\' "$i"; {HASH_COMMANDS[hasher].removesuffix(" --")} "$@" 2>/dev/null; }}; }}'
    )
    for i, (directory, members) in enumerate(_groups(paths, variables)):
        names = " ".join(shlex.quote("./" + leaf) for _, leaf in members)
        lines.append(f"(g {directory} {i} {names})")
    return "\n".join(lines) + "\ntrue"


def _root_variables(roots: Sequence[str]) -> dict[str, str]:
    """A shell variable for each root's real path, the longest root first (`/` needs none)."""
    ordered = sorted({r.rstrip("/") for r in roots if r.rstrip("/")}, key=len, reverse=True)
    return {root: f"r{i}" for i, root in enumerate(ordered)}


def _root_lines(variables: dict[str, str]) -> list[str]:
    """Set each root's variable to its real path; a root that is gone gets one no directory can have."""
    return [
        f'{var}=$(cd -P -- {shlex.quote(root)} 2>/dev/null && pwd -P); [ -n "${var}" ] || {var}=/dev/null/gone'
        for root, var in variables.items()
    ]


def _groups(paths: Sequence[str], variables: dict[str, str]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Paths grouped by directory: the directory as a shell word built on its root's real path, and
    each (path, leaf) in it."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for path in paths:
        parent, leaf = posixpath.split(path)
        word = shlex.quote(parent or "/")
        for root, var in variables.items():
            if parent == root or parent.startswith(root + "/"):
                below = parent[len(root) :]
                word = f'"${var}"' + (shlex.quote(below) if below else "")
                break
        groups.setdefault(word, []).append((path, leaf))
    return list(groups.items())


def parse_hashes(output: bytes, paths: Sequence[str], roots: Sequence[str] = ()) -> dict[str, str]:
    """What `hash_command` printed, by path (a group whose directory was not pinned printed nothing)."""
    groups = _groups(paths, _root_variables(roots))
    found: dict[str, str] = {}
    chunks: dict[int, list[bytes]] = {}
    current: list[bytes] | None = None
    for line in output.split(b"\n"):
        if line.startswith(b"@") and line[1:].isdigit():
            current = chunks.setdefault(int(line[1:]), [])
        elif current is not None:
            current.append(line)
    for index, lines in chunks.items():
        if index >= len(groups):
            continue
        by_leaf = {"./" + leaf: path for path, leaf in groups[index][1]}
        for name, digest in parse_sha256sum(b"\n".join(lines)).items():
            if name in by_leaf:
                found[by_leaf[name]] = digest
    return found


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
            name = _SHA256SUM_ESCAPE.sub(_unescape, name)
        result[name] = digest.lower()
    return result


_SHA256SUM_ESCAPE = re.compile(r"\\([\\nr])")
_SHA256SUM_UNESCAPED = {"\\": "\\", "n": "\n", "r": "\r"}


def _unescape(match: re.Match[str]) -> str:
    r"""One of GNU sha256sum's escapes (a backslash before `\`, `n` or `r`), read left to right: the name
    `x\naples` (a backslash, then `n`), printed as `x\\naples`, stays a backslash and an `n`."""
    return _SHA256SUM_UNESCAPED[match.group(1)]


QUARANTINE = ".mediasyncd-purge-"  # + token-index: the name a file has while its deletion is checked

# One function call per file: `k INDEX SHA256 "SIZE MTIME" DIRECTORY LEAF`, in a subshell pinned to the
# file's directory (`cd -P`, then its real path must be the root's real path plus the listed directories:
# a directory swapped for a symlink out of the root is never entered). The file is renamed aside first (a
# writer re-creating the path then makes a new file), checked there, and removed only if it is still the
# expected version; otherwise put back with `ln` (atomic, never over a file made at the path meanwhile).
# Prints `D|G|C|F INDEX` for deleted, already gone, changed (kept), failed (kept).
_DELETE_FN = (
    'k() ( d=$4; f="./$5"; q="./{prefix}$T-$1"; '
    'if ! cd -P -- "$d" 2>/dev/null; then if [ -e "$d" ] || [ -L "$d" ]; then echo "C $1"; '
    'else echo "G $1"; fi; exit; fi; '
    '[ "$(pwd -P)" = "$d" ] || {{ echo "C $1"; exit; }}; '
    'if [ -L "$f" ] || {{ [ -e "$f" ] && [ ! -f "$f" ]; }}; then echo "C $1"; exit; fi; '
    '[ -e "$f" ] || {{ echo "G $1"; exit; }}; '
    'mv -f -- "$f" "$q" 2>/dev/null || {{ echo "F $1"; exit; }}; '
    'if [ ! -L "$q" ] && [ -f "$q" ] && {check}; then '
    'rm -f -- "$q"; if [ -e "$q" ] || [ -L "$q" ]; then r=F; else echo "D $1"; exit; fi; else r=C; fi; '
    'if ln -- "$q" "$f" 2>/dev/null; then rm -f -- "$q"; '
    'elif [ ! -e "$f" ] && [ ! -L "$f" ]; then mv -f -- "$q" "$f"; fi; echo "$r $1" ); '
)
_CHECK_HASH = '{{ h=$({hasher} "$q" 2>/dev/null); h=${{h#\\\\}}; [ "${{h%% *}}" = "$2" ]; }}'
_CHECK_STAT = '[ "$(stat -c \'%s %Y\' -- "$q" 2>/dev/null)" = "$3" ]'


def delete_command(
    files: Sequence[Expected], hasher: str | None, token: str, roots: Sequence[str] = ()
) -> str:
    """Set each file aside, check it (its SHA-256 with `hasher`, else its size and whole-second mtime),
    delete it only if it is still the expected version, else put it back (see `_DELETE_FN`). Directories
    below `roots` are pinned as in `hash_command`."""
    check = _CHECK_HASH.format(hasher=HASH_COMMANDS[hasher]) if hasher else _CHECK_STAT
    variables = _root_variables(roots)
    lines = _root_lines(variables)
    lines.append(f"T={shlex.quote(token)}; " + _DELETE_FN.format(prefix=QUARANTINE, check=check) + "true")
    for i, e in enumerate(files):
        directory = _groups([e.path], variables)[0][0]
        leaf = posixpath.basename(e.path)
        # The outcome is echoed by the shell itself, not the subshell: once the connection is gone the
        # echo's SIGPIPE ends the script, so an orphaned script never goes on deleting (at most this file).
        lines.append(
            'echo "$(k '
            + f"{i} {shlex.quote(e.sha256)} '{e.size} {int(e.mtime)}' {directory} {shlex.quote(leaf)}"
            + ')"'
        )
    return "\n".join(lines) + "\ntrue"


def parse_deletion(output: bytes, files: Sequence[Expected]) -> Deletion:
    """What `delete_command` printed, by path; a file it said nothing about (the shell died) failed."""
    outcome: dict[int, str] = {}
    for line in output.decode("ascii", "replace").splitlines():
        tag, _, index = line.partition(" ")
        if tag in ("D", "G", "C", "F") and index.isdigit() and int(index) < len(files):
            outcome[int(index)] = tag
    result = Deletion()
    for i, e in enumerate(files):
        result.add(outcome.get(i, "F"), e.path)
    return result


def quarantine_token() -> str:
    return secrets.token_hex(4)


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
