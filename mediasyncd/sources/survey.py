"""What `mediasyncd doctor` asks a source beyond its `Capabilities`: each root's state (and, for a missing
root, the nearest existing parent and its names), the Python and inotify limit the remote agent needs.

Over a shell it is one command, built and parsed here as pure values; the SFTP-only and local sources fill
the same record their own way.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

PARENT_NAMES = 40  # names of a missing root's nearest existing parent, at most
DIR_COUNT_LIMIT = 1_000_000  # directories under a root are counted up to this many

RootState = Literal["dir", "missing", "not-dir"]


@dataclass(frozen=True)
class RootSurvey:
    root: str
    state: RootState
    writable: bool | None = None  # by the remote user (None: unknown)
    dirs: int | None = None  # directories under the root, itself included (None: not counted)
    parent: str | None = None  # a missing root's nearest existing parent
    names: tuple[str, ...] = ()  # its first names in sorted order, directories with a trailing "/"
    more: int = 0  # its names past `names`


@dataclass(frozen=True)
class Survey:
    roots: tuple[RootSurvey, ...]
    host_known: bool = True  # False: python and inotify could not be asked (no shell)
    python: str | None = None  # `python3`'s version, e.g. "3.10.12" (None: no python3)
    inotify_watches: int | None = None  # /proc/sys/fs/inotify/max_user_watches (None: unreadable)


def survey_command(roots: Sequence[str]) -> str:
    """One POSIX sh command printing NUL-terminated records: `python V`, `inotify N`, and per root (by
    index) `dir`/`missing`/`not-dir`, `writable`, `dirs N`, `parent P`, `name N` and `count N`."""
    quoted = " ".join(shlex.quote(r) for r in roots)
    return (
        "v=$(python3 -c 'import sys; print(\"%d.%d.%d\" % sys.version_info[:3])' 2>/dev/null)"
        " && printf 'python\\0%s\\0' \"$v\"; "
        "w=$(cat /proc/sys/fs/inotify/max_user_watches 2>/dev/null) && printf 'inotify\\0%s\\0' \"$w\"; "
        f"i=0; for r in {quoted}; do "
        'if [ -d "$r" ]; then '
        "printf 'dir\\0%d\\0' $i; "
        "[ -w \"$r\" ] && printf 'writable\\0%d\\0' $i; "
        f'printf \'dirs\\0%d\\0%s\\0\' $i "$(find "$r/" -type d 2>/dev/null | head -n {DIR_COUNT_LIMIT} '
        '| wc -l)"; '
        "else "
        "if [ -e \"$r\" ]; then printf 'not-dir\\0%d\\0' $i; else printf 'missing\\0%d\\0' $i; fi; "
        'p=$(dirname -- "$r"); while [ ! -d "$p" ]; do p=$(dirname -- "$p"); done; '
        "printf 'parent\\0%d\\0%s\\0' $i \"$p\"; n=0; "
        'for e in "$p"/*; do { [ -e "$e" ] || [ -L "$e" ]; } || continue; n=$((n+1)); '
        f'if [ $n -le {PARENT_NAMES} ]; then s=; [ -d "$e" ] && s=/; '
        'printf \'name\\0%d\\0%s%s\\0\' $i "${e##*/}" "$s"; fi; done; '
        "printf 'count\\0%d\\0%d\\0' $i $n; "
        "fi; i=$((i+1)); done; true"
    )


def parse_survey(output: bytes, roots: Sequence[str]) -> Survey:
    """Parse `survey_command` output; records it does not know are skipped."""
    tokens = [t.decode("utf-8", "surrogateescape") for t in output.split(b"\0")]
    python: str | None = None
    watches: int | None = None
    drafts = [_Draft() for _ in roots]
    pos = 0
    while pos < len(tokens):
        tag = tokens[pos].strip()
        args = tokens[pos + 1 : pos + 1 + _ARITY.get(tag, 0)]
        pos += 1 + len(args)
        if tag not in _ARITY or len(args) < _ARITY[tag]:
            continue
        if tag == "python":
            python = args[0].strip() or None
        elif tag == "inotify":
            watches = _int(args[0])
        elif (index := _int(args[0])) is not None and 0 <= index < len(drafts):
            drafts[index].add(tag, args[1:])
    return Survey(tuple(d.done(root) for d, root in zip(drafts, roots, strict=True)), True, python, watches)


_ARITY = {"python": 1, "inotify": 1, "dir": 1, "missing": 1, "not-dir": 1, "writable": 1}
_ARITY |= {"dirs": 2, "parent": 2, "name": 2, "count": 2}
_STATES: dict[str, RootState] = {"dir": "dir", "missing": "missing", "not-dir": "not-dir"}


@dataclass
class _Draft:
    """One root's records as they are parsed."""

    state: RootState = "missing"
    writable: bool = False
    dirs: int | None = None
    parent: str | None = None
    names: list[str] = field(default_factory=list)
    count: int | None = None

    def add(self, tag: str, args: Sequence[str]) -> None:
        if tag in _STATES:
            self.state = _STATES[tag]
        elif tag == "writable":
            self.writable = True
        elif tag == "dirs":
            self.dirs = _int(args[0])
        elif tag == "parent":
            self.parent = args[0]
        elif tag == "name":
            self.names.append(args[0])
        elif tag == "count":
            self.count = _int(args[0])

    def done(self, root: str) -> RootSurvey:
        is_dir = self.state == "dir"
        return RootSurvey(
            root,
            self.state,
            writable=self.writable if is_dir else None,
            dirs=self.dirs if is_dir else None,
            parent=None if is_dir else self.parent,
            names=() if is_dir else tuple(self.names),
            more=max(0, (self.count or 0) - len(self.names)),
        )


def _int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None
