"""This machine's process table through /proc: a process's descendants, whether they are still the
same processes (PID and start time, so a reused PID is not mistaken), their command lines. For the
tests and the fault harness that kill -9 and then look for what was left behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def descendants(root: int) -> dict[int, str]:
    """Every process below `root`, each PID with its start time (so a reused PID is not mistaken)."""
    found: dict[int, str] = {}
    pending = [root]
    while pending:
        pid = pending.pop()
        for children in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                kids = [int(c) for c in children.read_text().split()]
            except OSError:
                continue
            for kid in kids:
                started = start_time(kid)
                if started is not None:
                    found[kid] = started
                    pending.append(kid)
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
