"""Helpers shared by the security scenarios: the CLI as a child process, and quiet in-process calls."""

from __future__ import annotations

import contextlib
import io
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import MEDIASYNCD

TRACEBACK = "Traceback (most recent call last)"


@dataclass(frozen=True)
class Ran:
    status: int
    out: str
    err: str

    @property
    def traceback(self) -> bool:
        return TRACEBACK in self.out or TRACEBACK in self.err


def cli(args: Sequence[str], *, timeout: float = 60.0, env: dict[str, str] | None = None) -> Ran:
    """`mediasyncd ARGS` as a child process; never raises on a non-zero exit."""
    done = subprocess.run(
        [MEDIASYNCD, *args],
        capture_output=True,
        timeout=timeout,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    return Ran(done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"))


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """In-process CLI calls print their report and log lines to stdout: keep them out of the report."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def files_under(root: Path) -> dict[str, bytes]:
    """Regular files under `root`, relative to it (symlinks not followed)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }
