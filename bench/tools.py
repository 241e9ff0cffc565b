"""The tools under test, each pulling one remote tree into a fresh local directory, measured as a child.

`run_measured` times a child process and reads its rusage (through rusage_exec.c): user + system CPU of the
child and of every descendant it waited for (rsync's receiver and its `ssh`), and the largest peak RSS
among them.
Every tool gets the same endpoint and the same source; each writes into its own `work` directory.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import tomli_w

from bench.endpoints import Endpoint

MEDIASYNCD = str(Path(sys.executable).parent / "mediasyncd")
REPO = Path(__file__).resolve().parent.parent
RUSAGE_EXEC_SOURCE = Path(__file__).with_name("rusage_exec.c")
REMOTE_NAME = "bench"
RCLONE_TRANSFERS = 16


class ToolFailed(RuntimeError):
    """A tool exited non-zero or timed out; the message carries the end of its log."""


@dataclass(frozen=True)
class RunStats:
    wall_s: float
    cpu_s: float  # user + system, the child and its waited-for descendants
    maxrss_mb: float  # peak RSS of the largest process in the tree
    machine_cpu_s: float  # CPU time of the whole machine meanwhile: both ends on one host


def machine_busy_s() -> float:
    """CPU seconds all CPUs have spent busy since boot (/proc/stat: everything but idle and iowait)."""
    with open("/proc/stat") as fh:
        ticks = [int(x) for x in fh.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


@functools.cache
def rusage_exec() -> str:
    """rusage_exec.c, compiled once per source version into the temp directory."""
    source = RUSAGE_EXEC_SOURCE.read_bytes()
    binary = (
        Path(tempfile.gettempdir()) / f"mediasyncd-bench-rusage-{hashlib.sha256(source).hexdigest()[:12]}"
    )
    if not binary.exists():
        partial = binary.with_name(f"{binary.name}.{os.getpid()}")
        subprocess.run(["gcc", "-O2", "-Wall", "-o", str(partial), str(RUSAGE_EXEC_SOURCE)], check=True)
        partial.rename(binary)
    return str(binary)


class Child:
    """A tool started under rusage_exec (see its comment), output appended to `log_path`."""

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.argv, self.log_path = argv, log_path
        fd, name = tempfile.mkstemp(prefix="rusage-", dir=log_path.parent)
        os.close(fd)
        self.usage = Path(name)
        with log_path.open("ab") as log:
            log.write(f"$ {shlex.join(argv)}\n".encode())
            log.flush()
            self.started = time.perf_counter()
            self.busy_at_start = machine_busy_s()
            self.proc = subprocess.Popen(
                [rusage_exec(), name, *argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=None if env is None else os.environ | env,
            )

    def terminate(self) -> None:
        """SIGTERM the tool (rusage_exec passes it on)."""
        if self.proc.poll() is None:
            self.proc.terminate()

    def wait(self, timeout_s: float, check: bool = True) -> RunStats:
        """Wait for the tool (SIGTERM at the timeout, SIGKILL 20 s later); its wall time and rusage.
        A blocking wait, timed out by a timer thread: `Popen.wait(timeout)` polls with sleeps of up to
        50 ms, and that quantised every wall time (a 0.4 s run measured up to 0.05 s long)."""
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            self.terminate()
            if not _waited(self.proc, 20):
                self.proc.kill()

        timer = threading.Timer(timeout_s, expire)
        timer.daemon = True
        timer.start()
        try:
            self.proc.wait()
        finally:
            timer.cancel()
        if expired.is_set():
            raise ToolFailed(f"{self.argv[0]} timed out after {timeout_s:.0f}s: {tail(self.log_path)}")
        wall = time.perf_counter() - self.started
        machine = machine_busy_s() - self.busy_at_start
        if check and self.proc.returncode != 0:
            raise ToolFailed(f"{self.argv[0]} exited {self.proc.returncode}: {tail(self.log_path)}")
        user, system, maxrss_kb = self.usage.read_text().split()
        self.usage.unlink()
        return RunStats(wall, float(user) + float(system), int(maxrss_kb) / 1024, machine)


def _waited(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def run_measured(
    argv: list[str], log_path: Path, timeout_s: float, env: dict[str, str] | None = None
) -> RunStats:
    """Run `argv` to completion; raise ToolFailed on a non-zero exit or a timeout."""
    return Child(argv, log_path, env).wait(timeout_s)


def tail(path: Path, chars: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-chars:].strip()
    except OSError:
        return ""


class Tool(Protocol):
    """Pulls `source` on the endpoint into `dest`; running it again brings `dest` up to date."""

    name: str
    dest: Path

    def pull(self, timeout_s: float) -> RunStats: ...


class Rsync:
    name = "rsync"

    def __init__(self, endpoint: Endpoint, source: Path, work: Path) -> None:
        self.dest = work / "dest"
        self.dest.mkdir(parents=True)
        self.log = work / "rsync.log"
        self.argv = ["rsync", "-a", "-e", endpoint.rsync_shell()]
        self.argv += [f"{endpoint.user}@{endpoint.host}:{source}/", f"{self.dest}/"]

    def pull(self, timeout_s: float) -> RunStats:
        return run_measured(self.argv, self.log, timeout_s)


class Rclone:
    """`rclone copy --transfers 16`; `hashcheck=False` adds --sftp-disable-hashcheck (no md5sum exec per file)."""

    name = "rclone"

    def __init__(self, endpoint: Endpoint, source: Path, work: Path, hashcheck: bool = False) -> None:
        self.dest = work / "dest"
        self.dest.mkdir(parents=True)
        self.log = work / "rclone.log"
        self.argv = ["rclone", "copy", endpoint.rclone_remote(source), str(self.dest)]
        self.argv += ["--transfers", str(RCLONE_TRANSFERS), "--config", str(work / "rclone.conf")]
        self.argv += ["--stats", "0", "--log-level", "ERROR"]
        if not hashcheck:
            self.argv.append("--sftp-disable-hashcheck")

    def pull(self, timeout_s: float) -> RunStats:
        return run_measured(self.argv, self.log, timeout_s)


@dataclass(frozen=True)
class MediasyncdOptions:
    """What the benchmark puts in mediasyncd's config beyond the remote itself."""

    settle: str = "1s"
    poll_interval: str = "1s"
    watch: str = "poll"  # the figures so far are poll mode's; agent mode is not benchmarked yet
    overrides: tuple[tuple[str, Any], ...] = ()  # ("transfer.concurrency", 32), from --set
    source: Path | None = None  # run the `mediasyncd` package found here instead of the installed one
    openssh: bool = False  # reach the sshd through OpenSSH's `ssh` (`transport = "exec"`), not asyncssh

    def command(self, *args: str) -> list[str]:
        if self.source is None:
            return [MEDIASYNCD, *args]
        # -P: `-m` would otherwise put the current directory (the repository, when run from it) ahead of
        # PYTHONPATH, and the work tree would run instead of the exported revision.
        return [sys.executable, "-P", "-m", "mediasyncd", *args]

    def env(self) -> dict[str, str] | None:
        return None if self.source is None else {"PYTHONPATH": str(self.source)}


class Mediasyncd:
    name = "mediasyncd"

    def __init__(self, endpoint: Endpoint, source: Path, work: Path, options: MediasyncdOptions) -> None:
        library = work / "lib"
        library.mkdir(parents=True)
        self.dest = library / REMOTE_NAME
        self.log = work / "mediasyncd.log"
        self.config = work / "config.toml"
        self.status_port = 0
        self.options = options
        self.endpoint, self.source, self.library, self.state_dir = endpoint, source, library, work / "state"
        self.write_config()

    def write_config(self, status_port: int = 0) -> None:
        """(Re)write the config; a daemon needs a `status_port` to serve /status on."""
        self.status_port = status_port
        e = self.endpoint
        daemon: dict[str, Any] = {
            "library": str(self.library),
            "state_dir": str(self.state_dir),
            "library_min_free": "0",
        }
        if status_port:
            daemon["status_listen"] = f"127.0.0.1:{status_port}"
        reach: dict[str, Any] = {
            "host": e.host,
            "port": e.port,
            "user": e.user,
            "identity_file": str(e.key_path),
            "host_key": "strict",
            "known_hosts": str(e.known_hosts_path),
        }
        if self.options.openssh:
            reach = {"transport": "exec", "command": e.ssh_command("sh")}
        config: dict[str, Any] = {
            "daemon": daemon,
            "pipeline": {"enabled": False},
            "remotes": [
                {
                    "name": REMOTE_NAME,
                    **reach,
                    "roots": [str(self.source)],
                    "include": ["*"],
                    "settle": self.options.settle,
                    "poll_interval": self.options.poll_interval,
                    "watch": self.options.watch,
                }
            ],
        }
        for dotted, value in self.options.overrides:
            *parents, key = dotted.split(".")
            table = config
            for part in parents:
                table = table["remotes"][0] if part == "remote" else table.setdefault(part, {})
            table[key] = value
        self.config.write_text(tomli_w.dumps(config))

    def pull(self, timeout_s: float) -> RunStats:
        argv = self.options.command("sync", "--once", "--no-progress", "--config", str(self.config))
        return run_measured([*argv, "--log-level", "warning"], self.log, timeout_s, self.options.env())


def parse_override(text: str) -> tuple[str, Any]:
    """`section.key=VALUE` (VALUE as TOML, else a string); `remote.key` sets it on the benchmark remote."""
    dotted, sep, raw = text.partition("=")
    if not sep or "." not in dotted:
        raise ValueError(f"expected SECTION.KEY=VALUE, got {text!r}")
    try:
        value: Any = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return dotted, value


@dataclass(frozen=True)
class Revision:
    """A `--mediasyncd-rev` as given and the commit it named when the run was planned."""

    name: str
    commit: str


def resolve_revision(rev: str) -> Revision:
    """Pin `rev` to the commit it names now, so a run benchmarks and reports the same commit even if
    HEAD moves while it runs. SystemExit if `rev` is not a commit."""
    out = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"--mediasyncd-rev {rev}: not a commit in {REPO}")
    return Revision(rev, out.stdout.strip())


def compile_bytecode(source: Path | None = None) -> None:
    """Write the .pyc files of the mediasyncd package under test (`source`, else the work tree), as
    `pip install` does (and, from the revisions that have it, `python -m mediasyncd.precompile`): with PYTHONDONTWRITEBYTECODE set (as here), each `sync --once` would otherwise
    compile every module again at start-up (~0.1 CPU-s) and the figures would show that, not the tool."""
    package = (source or REPO) / "mediasyncd"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)
    if (package / "precompile.py").exists():  # and its dataclasses' code, as scripts/setup does
        env = {**os.environ, "PYTHONPATH": str(package.parent)}
        subprocess.run([sys.executable, "-P", "-m", "mediasyncd.precompile", "-q"], env=env, check=True)


def export_revision(rev: str, into: Path) -> Path:
    """`git archive` of mediasyncd/ at `rev` under `into`, to run with PYTHONPATH (see MediasyncdOptions)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", rev, "mediasyncd"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    compile_bytecode(into)
    return into


def tool_versions() -> dict[str, str]:
    """First line of each tool's version output."""
    out = {}
    for name, argv in {
        "rsync": ["rsync", "--version"],
        "rclone": ["rclone", "version"],
        "OpenSSH": ["ssh", "-V"],
        "mediasyncd": [MEDIASYNCD, "--version"],
    }.items():
        if shutil.which(argv[0]) is None:
            out[name] = "not installed"
            continue
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        lines = (proc.stdout or proc.stderr).strip().splitlines()
        out[name] = lines[0].strip() if lines else "?"
    return out
