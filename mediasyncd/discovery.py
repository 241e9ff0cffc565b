"""How the CLI finds a running daemon (SPEC §3.12, "Discovery"): the daemon writes its status address to
a world-readable `daemon.json` — in `$RUNTIME_DIRECTORY` under systemd, else in the state directory —
and removes it when it stops. The file holds no secret: the token stays in the config. A file counts
only when it names this config's state directory and that directory's lock is held (a file left by a
kill -9, or a reused pid, is ignored)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import structlog

from mediasyncd.lock import is_held

FILE = "daemon.json"
SYSTEMD_RUNTIME = Path("/run/mediasyncd")


@dataclass(frozen=True)
class Found:
    url: str  # e.g. http://127.0.0.1:8765
    pid: int
    path: Path


def discovery_path(state_dir: Path) -> Path:
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    return Path(runtime.split(":")[0]) / FILE if runtime else state_dir / FILE


def url_of(host: str, port: int) -> str:
    host = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def write(state_dir: Path, host: str, port: int, version: str) -> Path:
    """Write the file atomically, readable by every user (the CLI may run as another one)."""
    path = discovery_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "url": url_of(host, port),
        "pid": os.getpid(),
        "version": version,
        "state_dir": str(state_dir.resolve()),
    }
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps(body) + "\n", encoding="utf-8")
        tmp.chmod(0o644)
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return path


def try_write(state_dir: Path, host: str, port: int, version: str) -> Path | None:
    """`write`, or None with a warning where it cannot (its disk full): the daemon runs on, and commands
    fall back to the config's `status_listen` or do not find it."""
    try:
        return write(state_dir, host, port, version)
    except OSError as exc:
        structlog.get_logger("mediasyncd.daemon").warning(
            "cannot write the discovery file: commands may not find this daemon",
            path=str(discovery_path(state_dir)), error=exc.strerror or str(exc),
        )  # fmt: skip
        return None


def remove(path: Path) -> None:
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def locate(state_dir: Path) -> Found | None:
    """The running daemon's address, from the first discovery file whose process is alive."""
    if not is_held(state_dir):
        return None
    candidates = [discovery_path(state_dir), SYSTEMD_RUNTIME / FILE, state_dir / FILE]
    if os.environ.get("XDG_RUNTIME_DIR"):
        candidates.insert(2, Path(os.environ["XDG_RUNTIME_DIR"]) / "mediasyncd" / FILE)  # systemd --user
    for path in candidates:
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            pid, url, owner = int(body["pid"]), str(body["url"]), Path(str(body["state_dir"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if owner == state_dir.resolve() and _alive(pid):
            return Found(url, pid, path)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True
