"""A real PostgreSQL for the tests: Debian's server binaries, `initdb` in a temp dir, started on a free
loopback port (no system service); it can be stopped and started again (an outage). initdb refuses to
run as root, so as root the cluster belongs to the `postgres` user the Debian package creates (via setpriv)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

USER = "mediasyncd"


def find_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    bin: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mediasyncd-pg-")))
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def dsn(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        # setpriv execs (no parent left in between): signals reach the server itself
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--", *argv]

    def init(self) -> None:
        os.chmod(self.root, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            self._as_owner(
                [str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8",
                 "--no-sync"]
            ),
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    def start(self) -> None:
        log = open(self.root / "postgres.log", "ab")  # noqa: SIM115 - the server's stderr, closed by the OS
        self.proc = subprocess.Popen(
            self._as_owner(
                [str(self.bin / "postgres"), "-D", str(self.data), "-k", str(self.root), "-p", str(self.port),
                 "-h", "127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=50"]
            ),
            stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER],
                capture_output=True,
                timeout=10,
            )
            if ready.returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not start: {(self.root / 'postgres.log').read_text()[-2000:]}")

    def stop(self) -> None:
        """A fast shutdown (SIGINT): connections are cut, as in an outage."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def psql(self, sql: str) -> str:
        out = subprocess.run(
            [str(self.bin / "psql"), self.dsn, "-AtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        return out.stdout.strip()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
