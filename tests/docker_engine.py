"""A real Docker Engine for tests: Debian's `dockerd` with its data, socket, pid file and exec root in a
temp dir, no iptables and no bridge (containers run with `--network none`), and two images made with
`docker import` from root filesystems built here (nothing can be pulled from a registry):

- `mediasyncd-test/busybox`: busybox-static alone (no GNU `find -printf`, no `openssl`, busybox `tar`);
- `mediasyncd-test/full`: dash, GNU findutils, coreutils, tar and openssl with their libraries, and the
  libraries Debian's python3 and its extension modules need (the interpreter and its standard library
  are bound in read-only by `Engine.run(..., python=True)`, so the remote agent can run there).

`start_engine(tmp)` yields an `Engine`; on exit it removes the containers it ran and stops exactly the
dockerd it started (SIGTERM, then SIGKILL by pid).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

DOCKERD = Path(shutil.which("dockerd") or "/usr/sbin/dockerd")
DOCKER = Path("/usr/bin/docker")  # Debian's (or docker-ce's) client; another may come first on PATH
BUSYBOX = Path("/bin/busybox")
FULL_TOOLS = (
    "sh", "find", "tar", "sha256sum", "stat", "tail", "head", "cat", "date", "df", "rm", "rmdir", "od",
    "tr", "wc", "dirname", "sleep", "grep", "openssl", "mkdir", "chmod", "mv", "ln",
)  # fmt: skip
PYTHON = Path("/usr/bin/python3.11")  # Debian's interpreter (python3-minimal), not the venv's
PYTHON_LIB = Path("/usr/lib/python3.11")
IMAGES = ("busybox", "full")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
FOREVER = "1000000000"  # busybox sleep takes no "infinity"


class DockerStartError(RuntimeError):
    """dockerd exited or never answered; the message carries its log."""


@dataclass
class Engine:
    root: Path
    pid: int
    containers: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"unix://{self.root / 'docker.sock'}"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def docker(self, *args: str, stdin: bytes | None = None, check: bool = True) -> str:
        done = subprocess.run(
            [str(DOCKER), "-H", self.host, *args], input=stdin, capture_output=True, timeout=120
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
        return done.stdout.decode(errors="replace").strip()

    def shell_argv(self, container: str) -> list[str]:
        """What the exec transport runs for `container`."""
        return [str(DOCKER), "-H", self.host, "exec", "-i", container, "sh"]

    def run(self, image: str, name: str, mounts: Sequence[Path] = (), python: bool = False) -> str:
        """A container of `image` that sleeps, with each of `mounts` bound at the same path inside; with
        `python`, the host's python3 and its standard library bound read-only at their own paths."""
        volumes = [arg for m in mounts for arg in ("-v", f"{m}:{m}")]
        if python:
            volumes += ["-v", f"{PYTHON}:/usr/bin/python3:ro", "-v", f"{PYTHON_LIB}:{PYTHON_LIB}:ro"]
        self.docker("run", "-d", "--name", name, "--network", "none", *volumes, image, "sleep", FOREVER)
        self.containers.append(name)
        return name

    def remove(self, name: str) -> None:
        self.docker("rm", "-f", name, check=False)


@contextmanager
def start_engine(tmp: Path) -> Iterator[Engine]:
    """Start dockerd under `tmp`, import both test images, and stop it all again."""
    for tool in (DOCKERD, DOCKER, BUSYBOX):
        if not tool.exists():
            raise DockerStartError(f"{tool} is missing: run scripts/setup --dev (docker.io, busybox-static)")
    tmp.mkdir(parents=True, exist_ok=True)
    log = tmp / "dockerd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(DOCKERD), "--data-root", str(tmp / "data"), "-H", f"unix://{tmp / 'docker.sock'}",
                "--pidfile", str(tmp / "docker.pid"), "--exec-root", str(tmp / "exec"),
                "--iptables=false", "--ip6tables=false", "--bridge=none",
            ],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    engine = Engine(tmp, proc.pid)
    try:
        _wait_ready(engine, proc, log)
        for image in IMAGES:
            rootfs = tmp / f"rootfs-{image}"
            shutil.rmtree(rootfs, ignore_errors=True)
            (_busybox_rootfs if image == "busybox" else _full_rootfs)(rootfs)
            tarball = subprocess.run(["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True)
            engine.docker("import", "-", f"mediasyncd-test/{image}:1", stdin=tarball.stdout)
        yield engine
    finally:
        for name in engine.containers:
            engine.remove(name)
        _stop(proc)


def _wait_ready(engine: Engine, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DockerStartError(f"dockerd exited ({proc.returncode}):\n{log.read_text(errors='replace')}")
        if (engine.root / "docker.sock").exists() and not subprocess.run(
            [str(DOCKER), "-H", engine.host, "version"], capture_output=True
        ).returncode:
            return
        time.sleep(0.2)
    raise DockerStartError(f"dockerd did not answer within {START_TIMEOUT_S:.0f} s:\n{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _busybox_rootfs(root: Path) -> None:
    (root / "bin").mkdir(parents=True)
    (root / "tmp").mkdir()
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout
    for applet in applets.split():
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")


def _full_rootfs(root: Path) -> None:
    """The host's own tools with the libraries `ldd` names, at the same paths."""
    (root / "tmp").mkdir(parents=True)
    wanted: set[Path] = set()
    for tool in FULL_TOOLS:
        found = shutil.which(tool, path="/usr/bin:/bin")
        if found is None:
            raise DockerStartError(f"{tool} is missing on this machine")
        wanted.add(Path(found))
        wanted.update(_libraries(Path(found)))
    for binary in (PYTHON, *sorted((PYTHON_LIB / "lib-dynload").glob("*.so"))):
        wanted.update(_libraries(binary))
    for path in wanted:
        target = root / path.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path.resolve(), target)
    with contextlib.suppress(FileExistsError):
        (root / "bin").symlink_to("usr/bin")


def _libraries(binary: Path) -> set[Path]:
    """The shared libraries `ldd` names for `binary`."""
    ldd = subprocess.run(["ldd", str(binary.resolve())], capture_output=True, text=True).stdout
    return {Path(word) for word in ldd.split() if word.startswith("/")}
