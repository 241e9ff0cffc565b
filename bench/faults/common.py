"""What the data-path scenarios share: a world (remote tree, library, state dir, config), `mediasyncd run`
as a real child process that can be killed -9, a webhook receiver, and the audit that counts what the
library, the remote and the event log hold against what was written on the remote.

Every count here is measured from the files, the state DB (read-only) and the processes themselves.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xml.dom.minidom
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from tests.helpers import remote_table
from tests.procs import cmdline, descendants, still_alive
from tests.sinks.receiver import Receiver
from tests.sshd import SshServer

MEDIASYNCD = str(Path(sys.executable).parent / "mediasyncd")
MiB = 1 << 20
OLD = time.time() - 3600  # mtime of remote files: old enough to settle and to purge (older_than 30m)
INTERNAL = ".mediasyncd"
CONFLICT = re.compile(r"^(?P<stem>.*)~(?P<hash>[0-9a-f]{8,64})(?P<suffix>\.[^./]{1,10})?$")
LANDED_STATES = ("landed", "processed", "purged")
WEBHOOK_SECRET = "whsec_" + "ZmF1bHQtaGFybmVzcy1rZXktMDEyMzQ1Njc4OWFiY2Q="


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_HASHED: dict[tuple[str, int, int, int], str] = {}


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes; a file unchanged since it was last hashed here (same path, inode,
    size and mtime in ns) is not read again."""
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _HASHED:
        _HASHED[key] = _hash(path)
    return _HASHED[key]


def _hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return True
        except (OSError, ValueError, KeyError, sqlite3.Error):
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


# ------------------------------------------------------------------------------------------------ world


@dataclass
class Remote:
    """One remote: its name, its root on the (local) remote side, and what was ever written there."""

    name: str
    root: Path
    sources: dict[str, str] = field(default_factory=dict)  # rel -> sha256 of every file written
    written_at: dict[str, float] = field(default_factory=dict)  # rel -> wall time its write completed

    def write(self, rel: str, data: bytes, mtime: float | None = OLD) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.writing")  # complete files only: the remote's own temp+rename
        tmp.write_bytes(data)
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        os.rename(tmp, path)
        self.sources[rel] = sha256(data)
        self.written_at[rel] = time.time()
        return path


@dataclass
class World:
    """A library, a state dir and a config with remotes on a real sshd (or behind the emulated link)."""

    work: Path
    library: Path
    state_dir: Path
    config_path: Path
    port: int
    remotes: dict[str, Remote]

    @property
    def remote(self) -> Remote:
        return next(iter(self.remotes.values()))

    def db(self) -> sqlite3.Connection:
        """The state DB, read-only (beside a running daemon, as `mediasyncd events` reads it)."""
        return sqlite3.connect(f"file:{self.state_dir / 'state.db'}?mode=ro", uri=True, timeout=10)

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if not (self.state_dir / "state.db").exists():
            return []
        with contextlib.closing(self.db()) as db:
            return db.execute(sql, args).fetchall()

    def daemon(self, log_name: str = "run.log") -> Daemon:
        return Daemon(self.config_path, self.port, self.work / log_name)


def ssh_remote_table(server: SshServer, name: str, root: Path, **extra: Any) -> dict[str, Any]:
    """The suite's remote table for the test sshd, polling fast and taking files at once."""
    return remote_table(
        server, name, root, **({"poll_interval": "0.5s", "settle": "0s", "watch": "poll"} | extra)
    )


def make_world(
    work: Path,
    remote_tables: list[dict[str, Any]],
    *,
    library: Path | None = None,
    state_dir: Path | None = None,
    transfer: dict[str, Any] | None = None,
    daemon: dict[str, Any] | None = None,
    pipeline: dict[str, Any] | None = None,
    sinks: list[dict[str, Any]] | None = None,
) -> World:
    """Write the config; `remote_tables` are `[[remotes]]` tables whose roots already exist."""
    library = library or work / "library"
    library.mkdir(parents=True, exist_ok=True)
    state_dir = state_dir or work / "state"
    port = free_port()
    doc: dict[str, Any] = {
        "daemon": {
            "library": str(library),
            "state_dir": str(state_dir),
            "status_listen": f"127.0.0.1:{port}",
            "library_min_free": "0",
        }
        | (daemon or {}),
        "transfer": {"concurrency": 4} | (transfer or {}),
        "pipeline": pipeline or {"enabled": False},
        "remotes": remote_tables,
    }
    if sinks:
        doc["sinks"] = sinks
    config_path = work / "config.toml"
    config_path.write_text(tomli_w.dumps(doc))
    remotes = {t["name"]: Remote(t["name"], Path(t["roots"][0])) for t in remote_tables}
    return World(work, library, state_dir, config_path, port, remotes)


# ----------------------------------------------------------------------------------------------- daemon


@dataclass
class Daemon:
    """`mediasyncd run` as a real child process, JSON log lines appended to `log`."""

    config_path: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    def start(self, timeout: float = 30.0) -> Daemon:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [MEDIASYNCD, "run", "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,  # a kill of it is ours alone; its helpers are not in our group
            )
        if not wait_until(self.serving, timeout):
            code = self.proc.poll()
            self.stop()
            raise RuntimeError(
                f"mediasyncd run served nothing within {timeout}s (exit {code}): {tail(self.log)}"
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def serving(self) -> bool:
        if not self.alive():
            raise RuntimeError(f"mediasyncd run exited: {tail(self.log)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # it answers (503 while the library is missing)
        except OSError:
            return False

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=5) as response:
            data: dict[str, Any] = json.load(response)
            return data

    def remote_status(self, name: str) -> dict[str, Any]:
        return next((r for r in self.status()["remotes"] if r["name"] == name), {})

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=json.dumps(body or {}).encode() if method == "POST" else None,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            data: dict[str, Any] = json.load(response)
            return data

    def kill9(self, grace: float = 5.0) -> tuple[int, list[str]]:
        """SIGKILL the daemon (its PID only) and wait up to `grace` s for every process it had started
        to go by itself. Returns how many are still alive then (each is then killed) and their cmdlines."""
        assert self.proc is not None
        helpers = descendants(self.pid)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        wait_until(lambda: not still_alive(helpers), grace, 0.02)
        left = still_alive(helpers)
        described = [cmdline(pid)[:160] for pid in left]
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(left), described

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (graceful: the daemon's own shutdown), SIGKILL after `timeout` s."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def error_lines(log: Path) -> list[str]:
    """Lines of a daemon log that are errors: JSON lines at level error/critical, and anything that is
    not a JSON line at all (a traceback, a message printed past the logger)."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            found.append(line)
            continue
        if not isinstance(entry, dict) or entry.get("level") in ("error", "critical", "exception"):
            found.append(line)
    return found


def error_summary(line: str, limit: int = 400) -> str:
    """An error line as a report can hold it: a JSON entry's event and the last line of its exception
    (what raised), else the line itself, cut at `limit`."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line[:limit]
    if not isinstance(entry, dict):
        return line[:limit]
    raised = str(entry.get("exception") or "").strip().splitlines()
    text = str(entry.get("event", ""))[:200] + (f" — {raised[-1]}" if raised else "")
    return text[:limit]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# ------------------------------------------------------------------------------------------------ audit


KINDS = ("partial", "corrupt", "duplicated", "lost", "unverified", "failed")


@dataclass
class Audit:
    """What the library, the remote and the state DB hold against what was written, as sets of distinct
    problems (a problem seen in several checks counts once). Every kind must stay empty; "lost" is only
    looked at once everything had time to land.

    partial: a file in the library that is neither a complete landed file nor a sidecar (a partial, a
             temporary); corrupt: other bytes under a source's name or a conflict name, or a broken
             sidecar; duplicated: one source landed twice; lost: written on the remote, not in the
             library; unverified: gone from the remote without a verified library copy; failed: a file
             the state DB marks failed.
    """

    issues: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in KINDS})

    def found(self, kind: str, what: str) -> None:
        self.issues[kind].add(what)

    def count(self, kind: str) -> int:
        return len(self.issues[kind])

    def add(self, other: Audit) -> None:
        for kind, found in other.issues.items():
            self.issues[kind] |= found

    @property
    def examples(self) -> list[str]:
        return [f"{kind}: {what}" for kind in KINDS for what in sorted(self.issues[kind])[:3]]


def audit(world: World, *, final: bool, sidecars: bool = False) -> Audit:
    """Walk the library and every remote root: see Audit. `final`: count what has not landed as lost."""
    result = Audit()
    by_remote = dict(world.remotes)
    for dirpath, dirnames, filenames in os.walk(world.library):
        here = Path(dirpath)
        if here == world.library and INTERNAL in dirnames:
            dirnames.remove(INTERNAL)
        for name in filenames:
            path = here / name
            rel_lib = str(path.relative_to(world.library))
            remote_name, _, rel = rel_lib.partition("/")
            remote = by_remote.get(remote_name)
            if remote is None or not rel:
                result.found("partial", rel_lib)
                continue
            _judge(result, remote, rel, path, sidecars)
    for remote in world.remotes.values():
        for rel, sha in remote.sources.items():
            copy = world.library / remote.name / rel
            if not copy.is_file() and final:
                result.found("lost", f"{remote.name}/{rel}")
            if not (remote.root / rel).exists() and (not copy.is_file() or sha256_file(copy) != sha):
                result.found("unverified", f"{remote.name}/{rel}")
    for remote_name, rel in world.rows(
        "SELECT remote, rel FROM files WHERE state = 'failed' AND current = 1"
    ):
        result.found("failed", f"{remote_name}/{rel}")
    return result


def _judge(result: Audit, remote: Remote, rel: str, path: Path, sidecars: bool) -> None:
    name = f"{remote.name}/{rel}"
    if rel in remote.sources:
        if sha256_file(path) != remote.sources[rel]:
            result.found("corrupt", name)
        return
    if sidecars and rel.endswith(".xmp") and rel[:-4] in remote.sources:
        try:
            xml.dom.minidom.parse(str(path))
        except Exception:  # any parse failure: a half-written sidecar
            result.found("corrupt", f"{name} (sidecar)")
        return
    conflict = CONFLICT.match(rel)
    if conflict:
        base = conflict["stem"] + (conflict["suffix"] or "")
        if base in remote.sources:
            same = sha256_file(path) == remote.sources[base]
            result.found("duplicated" if same else "corrupt", name)
            return
    result.found("partial", name)


@dataclass
class EventAudit:
    lost: int = 0  # a landed file (state DB) without its file_synced event
    duplicated: int = 0  # a second file_synced for one file
    orphaned: int = 0  # a file_synced for a file the state DB does not hold as landed
    synced: int = 0


def audit_events(world: World, *, cli: bool = True) -> EventAudit:
    """Every landed file has exactly one `file_synced`: read with `mediasyncd events --json` (`cli`), or
    straight from the state DB (faster, between kills)."""
    if cli:
        out = subprocess.run(
            [MEDIASYNCD, "events", "--json", "--type", "file_synced", "--config", str(world.config_path)],
            capture_output=True,
            check=True,
            stdin=subprocess.DEVNULL,
        ).stdout.decode()
        ids = [json.loads(line)["data"]["file_id"] for line in out.splitlines() if line.strip()]
    else:
        rows = world.rows("SELECT json_extract(data, '$.file_id') FROM events WHERE type = 'file_synced'")
        ids = [r[0] for r in rows]
    counts = Counter(ids)
    landed = {
        r[0]
        for r in world.rows(
            f"SELECT id FROM files WHERE state IN {LANDED_STATES!r} AND local_path IS NOT NULL"
        )
    }
    return EventAudit(
        lost=len(landed - set(counts)),
        duplicated=sum(n - 1 for n in counts.values() if n > 1),
        orphaned=len(set(counts) - landed),
        synced=sum(counts.values()),
    )


# -------------------------------------------------------------------------------------------- receiver


class Hook(Receiver):
    """The test suite's webhook receiver (signatures checked with the README's verifier), with the
    harness's secret, answering 204 after `delay` seconds."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(WEBHOOK_SECRET, delay=delay)


def webhook_sink(hook: Hook, secret_file: Path, **extra: Any) -> dict[str, Any]:
    secret_file.write_text(WEBHOOK_SECRET + "\n")
    secret_file.chmod(0o600)
    return {"name": "hook", "type": "webhook", "url": hook.url, "secret_file": str(secret_file)} | extra


# -------------------------------------------------------------------------------------------- mounts


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A size-limited tmpfs mounted over `path` (root only), unmounted on exit."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path, leave: int = 0) -> int:
    """Write `path` until its filesystem has at most `leave` bytes free; returns the bytes written."""
    written = 0
    with path.open("wb") as fh:
        try:
            while True:
                free = os.statvfs(path.parent).f_bavail * os.statvfs(path.parent).f_frsize
                if free <= leave:
                    break
                chunk = min(MiB, max(free - leave, 4096))
                fh.write(b"\0" * chunk)
                fh.flush()
                written += chunk
        except OSError:
            pass
    return written
