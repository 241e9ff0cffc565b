"""Include/exclude globs (SPEC §3.1): without '/' a glob matches the file name; with '/' it matches the
path relative to the root, '*' staying within one directory and '**' crossing directories."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache


@lru_cache(maxsize=1024)
def _compile(glob: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = glob.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = glob[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def validate_glob(glob: str) -> None:
    """Raise ValueError when `glob` is not usable."""
    if not glob:
        raise ValueError("empty glob")
    if glob.startswith("/"):
        raise ValueError(f"glob {glob!r} must be relative to the root (no leading '/')")
    try:
        _compile(glob)
    except re.error as exc:
        raise ValueError(f"invalid glob {glob!r}: {exc}") from None


def glob_lint(glob: str) -> str | None:
    """Why a valid `glob` can never match the file it was likely meant for, with that intent; or None.
    Globs match files, never folders, so a folder written as a glob selects nothing."""
    if glob.endswith("/"):
        base = glob.rstrip("/")
        intent = base if base.endswith("**") else base + "/**"
        return f"{glob!r} ends with '/' and never matches a file; for everything under it: {intent!r}"
    depth = 0
    for c in glob:
        if c == "[":
            depth += 1
        elif c == "]" and depth:
            depth -= 1
    if depth:
        return f"{glob!r} has a '[' without its ']', so it matches a literal '['; did you mean {glob.replace('[', '')!r}?"
    if "/" not in glob and "." not in glob and not any(c in glob for c in "*?["):
        return f"{glob!r} matches only files named exactly {glob!r}, not a folder; for the folder: {glob + '/**'!r}"
    return None


def glob_matches(glob: str, rel_path: str) -> bool:
    """True when `glob` matches `rel_path` (a '/'-separated path relative to a root)."""
    target = rel_path if "/" in glob else rel_path.rsplit("/", 1)[-1]
    return _compile(glob).match(target) is not None


@dataclass(frozen=True)
class PathFilter:
    """A file is taken when it matches an include glob (or none are given) and no exclude glob."""

    include: tuple[str, ...]
    exclude: tuple[str, ...]

    # Compiled once, not looked up per file: a listing asks of every file.
    _include: _Combined | None = field(init=False, repr=False, compare=False)
    _exclude: _Combined = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_include", _combined(self.include) if self.include else None)
        object.__setattr__(self, "_exclude", _combined(self.exclude))

    def accepts(self, rel_path: str) -> bool:
        name = rel_path[rel_path.rfind("/") + 1 :]
        if self._include is not None and not self._include.matches(rel_path, name):
            return False
        return not self._exclude.matches(rel_path, name)


@dataclass(frozen=True)
class _Combined:
    """All globs of one list as two regexes: those matched against the name, those against the path."""

    names: re.Pattern[str] | None
    paths: re.Pattern[str] | None

    def matches(self, rel_path: str, name: str) -> bool:
        return bool(
            (self.names is not None and self.names.match(name))
            or (self.paths is not None and self.paths.match(rel_path))
        )


@lru_cache(maxsize=64)
def _combined(globs: tuple[str, ...]) -> _Combined:
    def join(group: list[str]) -> re.Pattern[str] | None:
        if not group:
            return None
        return re.compile("|".join(f"(?:{_compile(g).pattern})" for g in group), re.DOTALL)

    return _Combined(join([g for g in globs if "/" not in g]), join([g for g in globs if "/" in g]))


def any_match(globs: Sequence[str], rel_path: str) -> bool:
    return any(glob_matches(g, rel_path) for g in globs)
