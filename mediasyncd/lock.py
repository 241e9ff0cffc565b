"""One process per state directory: an flock held for the process's lifetime."""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import sys
import time
from pathlib import Path

from mediasyncd.errors import StartupError, StateLockedError


class StateLock:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "lock"
        self._fd: int | None = None

    def acquire(self, command: str) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StartupError(unusable_state_dir(self.path.parent, exc)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise StateLockedError(
                f"state directory {self.path.parent} is in use by {holder}; stop that process "
                f"(or point this one at another state_dir) and try again"
            ) from None
        info = {"pid": os.getpid(), "command": command, "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except OSError:
            pass  # who holds it is a courtesy (e.g. a full disk): the flock is the lock
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def unusable_state_dir(state_dir: Path, exc: OSError) -> str:
    """One line: why the state directory cannot be used, and what to do."""
    user = _user_name()
    return (
        f"cannot use the state directory {state_dir}: {exc.strerror or exc}; set [daemon] state_dir to a "
        f"directory {user} can write, or create it: sudo install -d -o {user} {state_dir}"
    )


def _user_name() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def is_held(state_dir: Path) -> bool:
    """True while some process holds the state directory's lock (probed without taking it for long)."""
    try:
        fd = os.open(state_dir / "lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops a lock we may have taken
    return False


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']} (`mediasyncd {info['command']}`, since {info['since']})"
    except (ValueError, KeyError, OSError):
        return "another mediasyncd process"


def argv_command() -> str:
    return " ".join(sys.argv[1:]) or "run"
