"""Commands for a minimal POSIX userland (busybox: no GNU `find -printf`, no `openssl`, a small `tar`),
built as pure values, and parsers of what they print.

The listing is `find … -exec stat -c '%s %Y %n' {} +`, one line per file; a name holding a newline would
break its line, so such names are listed apart (hex-encoded) and rejected as unsafe. Whole-second mtimes
are what `stat` gives; `same_version` accepts them, as it does SFTP v3's.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from mediasyncd.sources.listing import Listing, Rejected

NEWLINE = "nl=$(printf '\\nx'); nl=${nl%x}; "


def stat_listing_command(roots: Sequence[str]) -> str:
    """Print `now T`, then per root (by index) `missing I` or `root I` followed by `SIZE MTIME PATH`
    lines, and `bad I HEX` for each file whose path holds a newline. `find "$r/"` follows a root that is
    a symlink and nothing below it."""
    quoted = " ".join(shlex.quote(r) for r in roots)
    hexed = 'for f; do printf "bad %s %s\\n" "$0" "$(printf %s "$f" | od -An -tx1 | tr -d " \\n")"; done'
    return (
        f"{NEWLINE}printf 'now %s\\n' \"$(date +%s)\"; i=0; for r in {quoted}; do "
        "if [ -d \"$r\" ]; then printf 'root %d\\n' $i; "
        'find "$r/" -mindepth 1 -type f ! -path "*$nl*" -exec stat -c \'%s %Y %n\' {} + 2>/dev/null; '
        f'find "$r/" -mindepth 1 -type f -path "*$nl*" -exec sh -c {shlex.quote(hexed)} $i {{}} + 2>/dev/null; '
        "else printf 'missing %d\\n' $i; fi; i=$((i+1)); done; true"
    )


def parse_stat_listing(output: bytes, roots: Sequence[str]) -> Listing:
    """Parse `stat_listing_command` output; lines that do not fit are ignored, never trusted."""
    listing = Listing(method="stat")
    root: str | None = None
    prefix = b""
    for line in output.split(b"\n"):
        head, _, rest = line.partition(b" ")
        if head in (b"root", b"missing", b"bad", b"now") and _tagged(listing, head, rest, roots):
            root = roots[int(rest)] if head == b"root" else root
            prefix = (root.rstrip("/") + "/").encode() if root is not None else b""
            continue
        if root is None:
            continue
        size, _, rest = line.partition(b" ")
        mtime, _, path = rest.partition(b" ")
        if not (size.isdigit() and mtime.isdigit()) or not path.startswith(prefix):
            continue
        rel_b = path[len(prefix) :].lstrip(b"/")
        listing.add(root, rel_b, int(size), float(mtime))
    return listing


def _tagged(listing: Listing, head: bytes, rest: bytes, roots: Sequence[str]) -> bool:
    """Handle a tag line; False when it is not one after all (a file line starting like a tag)."""
    if head == b"now":
        try:
            listing.remote_now = float(rest)
        except ValueError:
            return False
        return True
    index_b, _, arg = rest.partition(b" ")
    if not index_b.isdigit() or int(index_b) >= len(roots):
        return False
    root = roots[int(index_b)]
    if head == b"missing" and not arg:
        listing.missing_roots.append(root)
    elif head == b"bad":
        try:
            raw = bytes.fromhex(arg.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            return False
        prefix = (root.rstrip("/") + "/").encode()
        rel = raw[len(prefix) :].lstrip(b"/") if raw.startswith(prefix) else raw
        listing.rejected.append(Rejected(root, rel, "control character in name"))
    elif head == b"root" and arg:
        return False
    return True


def stat_command(paths: Sequence[str]) -> str:
    """`I SIZE MTIME` for each path (by index) that is a regular file, not a symlink."""
    args = " ".join(shlex.quote(p) for p in paths)
    return (
        f"set -- {args}; i=0; for f; do "
        'if [ -f "$f" ] && [ ! -L "$f" ]; then printf \'%d \' $i; stat -c \'%s %Y\' -- "$f" || echo; fi; '
        "i=$((i+1)); done; true"
    )


def parse_stat(output: bytes, files: Sequence[tuple[str, int, float]]) -> dict[str, tuple[int, float]]:
    """Size and mtime by path from `stat_command` output."""
    found: dict[str, tuple[int, float]] = {}
    for line in output.decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) != 3 or not all(p.isdigit() for p in parts) or int(parts[0]) >= len(files):
            continue
        found[files[int(parts[0])][0]] = (int(parts[1]), float(parts[2]))
    return found


def read_script(path: str, offset: int) -> str:
    """Print `X` then the file's bytes from `offset` on, or `M` when it is not a regular file (gone, a
    symlink now): the first byte tells the answer of a shell from the failure to reach one."""
    f = shlex.quote(path)
    return f"if [ -f {f} ] && [ ! -L {f} ]; then printf X; exec tail -c +{offset + 1} -- {f}; fi; printf M"


def tar_script(root: str, rels: Sequence[str], *, gnu: bool, after: str = "") -> str:
    """`X` then a tar stream of `rels` (relative to `root`, never recursed into): GNU tar with hard links
    dereferenced, else a busybox-style `tar` with the names as arguments. When tar succeeded, what the
    script `after` prints goes to stderr (the source's hashes of what it sent: no second trip); a tar that
    failed ends the shell with its status."""
    names = " ".join(shlex.quote(r) for r in rels)
    options = "--format=gnu --hard-dereference " if gnu else ""
    tar = f"tar -cf - {options}--no-recursion -- {names} 2>/dev/null"
    start = f"cd {shlex.quote(root)} 2>/dev/null || {{ printf M; exit 1; }}; printf X; "
    if not after:
        return f"{start}exec {tar}"
    return f"{start}{tar} || exit\n{{ {after}\n}} </dev/null >&2"


TAR_PROBE = "tar -cf /dev/null --no-recursion -C / . >/dev/null 2>&1 && echo tar-args; "
