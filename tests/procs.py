"""This machine's process table through /proc: a process's descendants, whether they are still the
same processes (PID and start time, so a reused PID is not mistaken), their command lines. For the
tests and the fault harness that kill -9 and then look for what was left behind."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def children(pid: int) -> list[int]:
    """The PIDs of `pid`'s children (of each of its threads), or none if it has gone. A process may end
    while it is read, so every step is allowed to fail (`Path.glob` is not: a directory gone between
    its check and its listing raises)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for task in tasks:
        try:
            found += map(int, Path(f"/proc/{pid}/task/{task}/children").read_text().split())
        except OSError:
            continue
    return found


def subtree(root: int) -> list[int]:
    """Every process below `root`, parents before their children."""
    found: list[int] = []
    pending = [root]
    while pending:
        kids = children(pending.pop())
        found += kids
        pending += kids
    return found


def descendants(root: int) -> dict[int, str]:
    """Every process below `root`, each PID with its start time (so a reused PID is not mistaken)."""
    found: dict[int, str] = {}
    for pid in subtree(root):
        started = start_time(pid)
        if started is not None:
            found[pid] = started
    return found


def still_alive(procs: dict[int, str]) -> dict[int, str]:
    return {pid: started for pid, started in procs.items() if start_time(pid) == started}


def start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat, or None when gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def processes(match: Callable[[list[bytes]], bool]) -> list[int]:
    """PIDs of the running processes whose argv `match` accepts."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if match(argv):
            found.append(int(entry.name))
    return found
