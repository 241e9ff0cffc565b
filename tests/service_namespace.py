"""Run scripts/install-service for real, inside a mount namespace, and record what it did as JSON.

Run as root under `unshare -m` by tests/test_install_service.py (standard library only):

    unshare -m --propagation private python tests/service_namespace.py CHECKOUT SCRATCH OUT.json --forbid PATH

CHECKOUT is a copy of the repository (the scenario edits it to see the venv upgraded); SCRATCH an empty
directory the service user can reach (a tmpfs is mounted on it for the overlays' upper layers and the
notify socket).

Every directory the script writes (/etc, /opt, /usr/local/bin, /var/lib, /srv) gets an overlay whose
upper layer is a tmpfs, so the host's files stay visible (pip's local indexes under /opt, the passwd
database) and the host is left unchanged when the namespace ends. The daemon is run as the installed
unit would run it, as the service user, in a network namespace of its own (so its status port cannot
collide with anything on the host), and reports over a notify socket this driver listens on.
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import pwd
import shlex
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

OVERLAID = ["/etc", "/opt", "/usr/local/bin", "/var/lib", "/srv"]
SCRIPT = "scripts/install-service"
USER = "mediasyncd"
UNIT = Path("/etc/systemd/system/mediasyncd.service")
DROP_IN = Path("/etc/systemd/system/mediasyncd.service.d/write-paths.conf")
CONFIG = Path("/etc/mediasyncd/config.toml")
VENV = Path("/opt/mediasyncd")
LINK = Path("/usr/local/bin/mediasyncd")
STATE = Path("/var/lib/mediasyncd")
LIBRARY = Path("/srv/media")
TREE = [Path("/etc/mediasyncd"), CONFIG, STATE, VENV, VENV / "bin" / "mediasyncd", LINK, UNIT, DROP_IN]
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

Facts = dict[str, Any]


def sh(*cmd: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def isolate(scratch: Path) -> None:
    """Overlays with tmpfs upper layers over every directory the script writes."""
    submounts = _mount_points_under(OVERLAID)
    sh("mount", "-t", "tmpfs", "-o", "mode=0755", "scratch", str(scratch))
    for d in OVERLAID:
        name = d.strip("/").replace("/", "_")
        lower, upper, work = (scratch / part / name for part in ("lower", "upper", "work"))
        for p in (lower, upper, work):
            p.mkdir(parents=True)
        sh("mount", "--rbind", d, str(lower))  # keeps the original and its submounts reachable
        sh("mount", "-t", "overlay", "overlay", "-o", f"lowerdir={d},upperdir={upper},workdir={work}", d)
    for m in submounts:  # an overlay's lower layer does not show mounts inside it (/etc/resolv.conf, ...)
        top = next(d for d in OVERLAID if m.startswith(d + "/"))
        lower = scratch / "lower" / top.strip("/").replace("/", "_") / Path(m).relative_to(top)
        sh("mount", "--bind", str(lower), m)
    if Path("/run/systemd/system").is_dir():  # systemd is PID 1 on the host: keep systemctl away from it
        sh("mount", "-t", "tmpfs", "tmpfs", "/run/systemd")


def _mount_points_under(dirs: list[str]) -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if any(p.startswith(d + "/") for d in dirs)]


def run(*cmd: str, env: dict[str, str] | None = None) -> Facts:
    r = subprocess.run(cmd, text=True, capture_output=True, env=env, timeout=300, check=False)
    return {"rc": r.returncode, "out": r.stdout, "err": r.stderr}


def install(checkout: Path, *args: str) -> Facts:
    return run(str(checkout / SCRIPT), *args)


def describe(path: Path) -> Facts:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return {"exists": False}
    kind = "link" if stat.S_ISLNK(st.st_mode) else "dir" if stat.S_ISDIR(st.st_mode) else "file"
    return {
        "exists": True,
        "kind": kind,
        "mode": f"{stat.S_IMODE(st.st_mode):04o}",
        "owner": f"{pwd.getpwuid(st.st_uid).pw_name}:{grp.getgrgid(st.st_gid).gr_name}",
        "target": os.readlink(path) if kind == "link" else None,
        "mtime_ns": st.st_mtime_ns,
    }


def tree() -> dict[str, Facts]:
    return {str(p): describe(p) for p in TREE}


def mentions(root: Path, needles: list[str]) -> list[str]:
    """Files (and link targets) under `root` whose bytes contain any of `needles`."""
    found = []
    wanted = [n.encode() for n in needles]
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
            if any(n in data for n in wanted):
                found.append(str(path))
    return found


def unit_values(key: str) -> list[str]:
    prefix = f"{key}="
    return [ln[len(prefix) :] for ln in UNIT.read_text().splitlines() if ln.startswith(prefix)]


def run_daemon(scratch: Path, timeout: float = 60.0) -> Facts:
    """The unit's ExecStart= with its Environment=, as the service user; READY=1 expected, then SIGTERM."""
    sock_path = scratch / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(sock_path))
    os.chmod(sock_path, 0o666)
    env = {"PATH": SYSTEMD_PATH, "HOME": str(STATE), "USER": USER, "LOGNAME": USER}
    for assignment in unit_values("Environment"):
        key, _, value = assignment.partition("=")
        env[key] = value
    env["NOTIFY_SOCKET"] = str(sock_path)
    exec_start = shlex.split(unit_values("ExecStart")[0])
    as_user = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups", "--", *exec_start]
    log = (scratch / "daemon.log").open("w+")
    # A network namespace of its own: the status port is free whatever runs on the host, and the
    # example remote fails fast (backoff) instead of waiting for DNS.
    proc = subprocess.Popen(
        ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *as_user],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    messages: list[str] = []
    deadline = time.monotonic() + timeout
    listener.settimeout(1.0)
    while time.monotonic() < deadline and proc.poll() is None and not any("READY=1" in m for m in messages):
        try:
            messages.append(listener.recv(4096).decode())
        except TimeoutError:
            pass
    ready = any("READY=1" in m for m in messages)
    uid = _uid_of(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        rc: int | None = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = None
    listener.settimeout(0.1)
    try:
        while True:
            messages.append(listener.recv(4096).decode())
    except TimeoutError:
        pass
    listener.close()
    log.seek(0)
    return {"ready": ready, "messages": messages, "uid": uid, "rc": rc, "log": log.read()[-4000:]}


def _uid_of(pid: int) -> int | None:
    try:
        return Path(f"/proc/{pid}").stat().st_uid
    except FileNotFoundError:
        return None


def check_service() -> Facts:
    return run(str(LINK), "config", "check", "--service", str(CONFIG))


def scenario(checkout: Path, scratch: Path, forbid: list[str]) -> Facts:
    facts: Facts = {}
    facts["install"] = install(checkout)
    facts["tree"] = tree()
    facts["passwd"] = run("getent", "passwd", USER)["out"]
    facts["groups"] = run("id", "-nG", USER)["out"]
    facts["unit_matches_repo"] = UNIT.read_bytes() == (checkout / "systemd" / UNIT.name).read_bytes()
    facts["config_matches_example"] = CONFIG.read_bytes() == (checkout / "config.toml").read_bytes()
    facts["drop_in"] = DROP_IN.read_text() if DROP_IN.exists() else None
    facts["mentions"] = mentions(VENV, forbid)
    facts["verify"] = run("systemd-analyze", "verify", str(UNIT))
    facts["check_without_library"] = check_service()
    LIBRARY.mkdir(mode=0o755)  # root's
    facts["check_root_library"] = check_service()
    sh("chown", f"{USER}:{USER}", str(LIBRARY))
    facts["check"] = check_service()
    facts["daemon"] = run_daemon(scratch)

    with CONFIG.open("a") as f:
        f.write("# edited by the admin\n")
    edited = CONFIG.read_bytes()
    init = checkout / "mediasyncd" / "__init__.py"
    init.write_text(init.read_text() + "# upgraded from the checkout\n")
    passwd_before = Path("/etc/passwd").read_text()
    facts["reinstall"] = install(checkout)
    facts["tree_after_reinstall"] = tree()
    facts["config_kept"] = CONFIG.read_bytes() == edited
    facts["passwd_unchanged"] = Path("/etc/passwd").read_text() == passwd_before
    installed = next(VENV.glob("lib/python3*/site-packages/mediasyncd/__init__.py"))
    facts["upgraded"] = "# upgraded from the checkout" in installed.read_text()
    facts["mentions_after_reinstall"] = mentions(VENV, forbid)

    facts["uninstall"] = install(checkout, "--uninstall")
    facts["tree_after_uninstall"] = tree()
    facts["state_after_uninstall"] = sorted(p.name for p in STATE.iterdir()) if STATE.is_dir() else None
    facts["purge"] = install(checkout, "--uninstall", "--purge-data")
    facts["tree_after_purge"] = tree()
    facts["library_after_purge"] = LIBRARY.is_dir()
    return facts


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("checkout", type=Path)
    p.add_argument("scratch", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--forbid", action="append", default=[], help="no file in the venv may contain it")
    args = p.parse_args()
    isolate(args.scratch)
    args.out.write_text(json.dumps(scenario(args.checkout, args.scratch, args.forbid), indent=1))


if __name__ == "__main__":
    main()
