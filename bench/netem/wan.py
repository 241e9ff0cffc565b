"""An emulated WAN link to the real OpenSSH sshd in a network namespace, for the benchmarks.

    with wan_link(LinkSpec(rtt_ms=40, rate_mbit=200)) as remote:
        subprocess.run(remote.ssh_command("uname -a"), check=True)

Creates a uniquely named netns and a pair of TUN devices joined by `linkem` (linkem.c, compiled on the fly:
a drop-tail queue, a serialiser at the rate and RTT/2 of delay each way), addresses them in a free private
/30 that is routed only between this host and the namespace, and runs `sshd -D` in the namespace with a
fresh host key and client key. Leaving the block stops only the processes it started, deletes the netns
(the TUN devices vanish with linkem) and the temporary directory, also on errors and Ctrl-C. Needs root.

CLI: `python bench/netem/wan.py [--rtt-ms 40 --rate-mbit 200 ...] {up,run -- CMD...,check,cleanup}`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import getpass
import ipaddress
import json
import logging
import os
import secrets
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

LINKEM_SOURCE = Path(__file__).with_name("linkem.c")
SSHD = "/usr/sbin/sshd"
NETNS_PREFIX = "msdwan-"  # + <owner pid>-<token>; `cleanup` removes those whose owner is gone
TMP_PREFIX = "mediasyncd-wan-"
# Pools of /30s; a candidate that overlaps any address or route of this host is skipped.
SUBNET_POOLS = tuple(map(ipaddress.IPv4Network, ("10.254.0.0/16", "172.31.254.0/24", "192.168.254.0/24")))
ALLOC_LOCK = Path("/run/lock/mediasyncd-wan.lock")


class WanError(RuntimeError):
    """The link or its sshd could not be brought up."""


@dataclasses.dataclass(frozen=True)
class LinkSpec:
    """What the emulated link looks like; the same in both directions."""

    rtt_ms: float = 40.0
    rate_mbit: float = 200.0
    queue_bdp: float = 1.0  # drop-tail queue per direction, in bandwidth-delay products (see README)
    mtu: int = 1500
    tick_us: int = 200  # linkem's wake-up period while packets are in flight (0: per packet)
    loss: float = 0.0  # random loss: each packet is dropped with this probability, both ways (0..1)

    @property
    def queue_bytes(self) -> int:
        bdp = self.rate_mbit * 1e6 / 8 * self.rtt_ms / 1e3
        return max(int(bdp * self.queue_bdp), 32 * self.mtu)


@dataclasses.dataclass(frozen=True)
class WanRemote:
    """How to reach the sshd behind the link, plus handles for measuring the link itself."""

    host: str  # the namespace's address; sshd listens on host:port
    port: int
    user: str
    key_path: Path  # client private key (authorized by the sshd)
    known_hosts_path: Path  # holds the sshd's host key for `host`
    local_address: str  # this host's end of the link
    netns: str
    link: LinkSpec
    workdir: Path  # temporary; removed on exit
    sshd_log: Path
    emulator_pid: int
    emulator: subprocess.Popen[bytes] | None = dataclasses.field(default=None, repr=False, compare=False)
    _control_lock: threading.Lock = dataclasses.field(
        default_factory=threading.Lock, repr=False, compare=False
    )

    def set_loss(self, rate: float) -> None:
        """Lose each packet with probability `rate` (0..1), both ways, from now on."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"loss rate {rate} outside 0..1")
        self._control(f"loss {rate!r}")

    def set_blackhole(self, on: bool) -> None:
        """Cut the link (every packet either way is dropped, as by a dead route) or restore it. Returns
        once linkem applies it."""
        self._control(f"blackhole {int(on)}")

    @contextlib.contextmanager
    def blackholed(self) -> Iterator[None]:
        """The link is cut inside the block, restored on leaving it (also on errors)."""
        self.set_blackhole(True)
        try:
            yield
        finally:
            self.set_blackhole(False)

    def _control(self, line: str) -> None:
        proc = self.emulator
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise WanError("this link has no control channel")
        with self._control_lock:
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()
            answer = proc.stdout.readline().decode().strip()
        if not answer.startswith("ok "):
            raise WanError(f"linkem refused {line!r}: {answer or 'no answer (exited?)'}")

    def emulator_counters(self) -> dict[str, dict[str, int]]:
        """linkem's counters per direction (pkts, bytes, drops, errors, lost, blackholed), now."""
        log_path = self.workdir / "linkem.log"
        before = log_path.read_text().count("\n")
        os.kill(self.emulator_pid, signal.SIGUSR1)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            lines = log_path.read_text().splitlines()
            if len(lines) > before and lines[-1].startswith("{"):
                counters: dict[str, dict[str, int]] = json.loads(lines[-1])
                return counters
            time.sleep(0.01)
        raise WanError("linkem did not report its counters")

    def ssh_options(self) -> list[str]:
        """Options for ssh, scp, sftp or `rsync -e`: key, pinned host key, no prompts, no ssh_config."""
        return [
            *("-F", "/dev/null", "-i", str(self.key_path), "-p", str(self.port)),
            *("-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"),
            *("-o", f"UserKnownHostsFile={self.known_hosts_path}", "-o", "GlobalKnownHostsFile=/dev/null"),
        ]

    def ssh_command(self, *remote_command: str) -> list[str]:
        return ["ssh", *self.ssh_options(), f"{self.user}@{self.host}", *remote_command]

    def netns_command(self, *argv: str) -> list[str]:
        """`argv` run inside the remote's namespace (it ends with the link, like sshd)."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def emulator_cpu_seconds(self) -> float:
        """User + system CPU time linkem has used so far (kernel work done in its syscalls included)."""
        fields = Path(f"/proc/{self.emulator_pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def ping_ms(self, count: int = 10, interval_s: float = 0.2) -> list[float]:
        """ICMP echo round trips to the remote, in ms (a raw socket: no `ping` binary needed)."""
        return icmp_ping(self.host, count, interval_s)

    def ssh_cat_mbytes_per_s(self, nbytes: int) -> float:
        """Throughput of `ssh remote 'cat /dev/zero' | head -c nbytes`, from its first byte (MB/s)."""
        return ssh_cat_mbytes_per_s(self.ssh_command("cat /dev/zero"), nbytes)


def ssh_cat_mbytes_per_s(argv: list[str], nbytes: int) -> float:
    """Read `nbytes` from the stdout of `argv` (an ssh running `cat /dev/zero`), timed from the first
    byte, in MB/s."""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, bufsize=0) as proc:
        assert proc.stdout is not None
        try:
            got, start = len(proc.stdout.read(1)), time.monotonic()
            while got < nbytes and (chunk := proc.stdout.read(min(1 << 20, nbytes - got))):
                got += len(chunk)
            elapsed = time.monotonic() - start
        finally:
            proc.kill()
    if got < nbytes:
        raise WanError(f"ssh stream ended after {got} of {nbytes} bytes")
    return (got - 1) / elapsed / 1e6


@contextlib.contextmanager
def wan_link(
    link: LinkSpec = LinkSpec(),
    *,
    user: str | None = None,
    sshd_options: Mapping[str, str] | None = None,
    keep_workdir: bool = False,
) -> Iterator[WanRemote]:
    """Bring up the link and an sshd behind it; yield how to reach it; tear it all down on exit.

    `user` is the account to log in as (default: the current one). `sshd_options` override or add
    sshd_config keywords (e.g. {"MaxStartups": "100"}); spell them as sshd_config does.
    """
    if os.geteuid() != 0:
        raise WanError("wan_link needs root (network namespaces, TUN devices, sshd)")
    if not 576 <= link.mtu <= 2000:
        raise WanError(f"mtu {link.mtu} outside 576..2000")
    if not 0.0 <= link.loss <= 1.0:
        raise WanError(f"loss {link.loss} outside 0..1")
    token = secrets.token_hex(4)
    netns = f"{NETNS_PREFIX}{os.getpid()}-{token}"
    dev_host, dev_ns = f"mw{token}h", f"mw{token}n"
    cleanup = contextlib.ExitStack()
    try:
        workdir = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))
        if not keep_workdir:
            cleanup.callback(_quietly, shutil.rmtree, workdir, True)
        linkem = workdir / "linkem"
        _run("gcc", "-O2", "-Wall", "-o", str(linkem), str(LINKEM_SOURCE))
        with _alloc_lock():
            local, remote = _free_subnet()
            _run("ip", "netns", "add", netns)
            cleanup.callback(_quietly, _run, "ip", "netns", "delete", netns)
            emulator = _start_linkem(linkem, link, dev_host, dev_ns, workdir / "linkem.log")
            cleanup.callback(_quietly, _stop_linkem, emulator, workdir / "linkem.log")
            _configure(link, netns, dev_host, dev_ns, local, remote)

        user = user or getpass.getuser()
        key, known_hosts, sshd_config = _write_ssh_files(workdir, remote, user, sshd_options or {})
        sshd_log = workdir / "sshd.log"
        _run(SSHD, "-t", "-f", str(sshd_config))
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        sshd = subprocess.Popen(
            ["ip", "netns", "exec", netns, SSHD, "-D", "-f", str(sshd_config), "-E", str(sshd_log)],
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in our terminal is ours to handle, not sshd's
        )
        cleanup.callback(_quietly, _stop_netns_processes, netns, sshd)
        _wait_for_sshd(remote, 22, sshd, sshd_log)
        yield WanRemote(
            host=remote,
            port=22,
            user=user,
            key_path=key,
            known_hosts_path=known_hosts,
            local_address=local,
            netns=netns,
            link=link,
            workdir=workdir,
            sshd_log=sshd_log,
            emulator_pid=emulator.pid,
            emulator=emulator,
        )
    finally:
        with _signals_held():
            cleanup.close()


def cleanup_stale() -> list[str]:
    """Remove namespaces and temporary directories left by wan_link() runs whose process is gone."""
    removed = []
    for line in _run("ip", "netns", "list").splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith(NETNS_PREFIX) and not _alive(_owner(name, NETNS_PREFIX)):
            _stop_netns_processes(name, None)
            _run("ip", "netns", "delete", name)
            removed.append(name)
    for path in Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*-*"):
        if not _alive(_owner(path.name, TMP_PREFIX)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    return removed


def _owner(name: str, prefix: str) -> int:
    """The pid in `<prefix><pid>-...`, or 0 (no process) if there is none."""
    pid = name[len(prefix) :].split("-")[0]
    return int(pid) if pid.isdigit() else 0


def icmp_ping(host: str, count: int, interval_s: float, timeout_s: float = 2.0) -> list[float]:
    """Round trips in ms of `count` ICMP echo requests to `host` (raw socket, so root)."""
    ident, rtts = os.getpid() & 0xFFFF, []
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        for seq in range(count):
            payload = bytes(48)
            checksum = _inet_checksum(struct.pack("!BBHHH", 8, 0, 0, ident, seq) + payload)
            sock.sendto(struct.pack("!BBHHH", 8, 0, checksum, ident, seq) + payload, (host, 0))
            sent = time.monotonic()
            while (left := sent + timeout_s - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    packet, (source, _) = sock.recvfrom(2048)
                except TimeoutError:
                    break
                icmp = packet[(packet[0] & 0x0F) * 4 :]  # skip the IP header
                kind, _, _, reply_ident, reply_seq = struct.unpack("!BBHHH", icmp[:8])
                if (source, kind, reply_ident, reply_seq) == (host, 0, ident, seq):  # an echo reply
                    rtts.append((time.monotonic() - sent) * 1e3)
                    break
            time.sleep(max(0.0, sent + interval_s - time.monotonic()))
    return rtts


def _inet_checksum(data: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def _run(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise WanError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def _quietly(fn: Callable[..., object], *args: object) -> None:
    """Teardown steps must all run: log a failure and go on."""
    try:
        fn(*args)
    except Exception:
        log.exception("wan_link teardown step %s failed", getattr(fn, "__name__", fn))


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM (main thread only) so a second Ctrl-C cannot cut teardown short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def _alloc_lock() -> Iterator[None]:
    """Serialise subnet choice between concurrent wan_link() calls on this host."""
    with ALLOC_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _free_subnet() -> tuple[str, str]:
    """A private /30 that no address or route of this host touches: (host end, namespace end)."""
    used = [
        ipaddress.ip_interface(a["local"] + "/" + str(a["prefixlen"])).network
        for link in json.loads(_run("ip", "-j", "-4", "addr"))
        for a in link.get("addr_info", [])
    ]
    for route in json.loads(_run("ip", "-j", "-4", "route", "show", "table", "all")):
        if route["dst"] != "default":
            used.append(ipaddress.IPv4Network(route["dst"], strict=False))
    for pool in SUBNET_POOLS:
        for net in pool.subnets(new_prefix=30):
            if not any(net.overlaps(u) for u in used):
                first, second = net.hosts()
                return str(first), str(second)
    raise WanError("no free /30 in " + ", ".join(map(str, SUBNET_POOLS)))


def _write_ssh_files(
    workdir: Path, listen: str, user: str, extra: Mapping[str, str]
) -> tuple[Path, Path, Path]:
    """Host and client keys, authorized_keys, known_hosts, sshd_config: (client key, known_hosts, config)."""
    host_key, client_key = workdir / "ssh_host_ed25519_key", workdir / "id_ed25519"
    for key in (host_key, client_key):
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mediasyncd-wan", "-f", str(key))
    authorized = workdir / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text())
    workdir.chmod(0o755)  # sshd reads authorized_keys as `user`
    authorized.chmod(0o644)
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text(f"{listen} {host_key.with_suffix('.pub').read_text()}")
    options = {
        "ListenAddress": listen,
        "Port": "22",
        "HostKey": str(host_key),
        "PidFile": "none",
        "AuthorizedKeysFile": str(authorized),
        "AllowUsers": user,
        "PermitRootLogin": "prohibit-password",
        "PasswordAuthentication": "no",
        "KbdInteractiveAuthentication": "no",
        "UsePAM": "no",
        "StrictModes": "no",
        "UseDNS": "no",
        "PrintMotd": "no",
        "X11Forwarding": "no",
        "Subsystem": "sftp /usr/lib/openssh/sftp-server",
        **extra,
    }
    config = workdir / "sshd_config"
    config.write_text("".join(f"{k} {v}\n" for k, v in options.items()))
    return client_key, known_hosts, config


def _start_linkem(
    binary: Path, link: LinkSpec, dev_a: str, dev_b: str, log_path: Path
) -> subprocess.Popen[bytes]:
    argv = [str(binary), "-a", dev_a, "-b", dev_b, "-r", str(int(link.rate_mbit * 1e6))]
    argv += ["-d", str(int(link.rtt_ms * 500)), "-q", str(link.queue_bytes), "-t", str(link.tick_us), "-w"]
    argv += ["-l", repr(link.loss), "-s", str(secrets.randbits(63))]
    with log_path.open("wb") as log_file:
        # -w: linkem exits when its stdin (this pipe) closes, i.e. when we do, however we die.
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file)
    assert proc.stdout is not None
    if proc.stdout.readline() != b"ready\n":
        proc.communicate()  # reap it and close our ends of its pipes
        raise WanError(f"linkem did not start: {log_path.read_text().strip()}")
    return proc


def _configure(link: LinkSpec, netns: str, dev_host: str, dev_ns: str, local: str, remote: str) -> None:
    """Move one TUN end into the namespace and address both ends of the /30 (IPv4 only)."""
    _run("ip", "link", "set", dev_ns, "netns", netns)
    for ns, dev, address in (([], dev_host, local), (["-n", netns], dev_ns, remote)):
        _run("ip", *ns, "link", "set", dev, "mtu", str(link.mtu), "txqueuelen", "1000", "addrgenmode", "none")
        _run("ip", *ns, "addr", "add", f"{address}/30", "dev", dev)
        _run("ip", *ns, "link", "set", dev, "up")
    _run("ip", "-n", netns, "link", "set", "lo", "up")


def _wait_for_sshd(host: str, port: int, sshd: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if sshd.poll() is not None:
            raise WanError(f"sshd exited with {sshd.returncode}: {log_path.read_text().strip()}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1) as conn:
            if conn.recv(4).startswith(b"SSH-"):
                return
        time.sleep(0.05)
    raise WanError(f"sshd not answering on {host}:{port}: {log_path.read_text().strip()}")


def _stop_linkem(proc: subprocess.Popen[bytes], log_path: Path) -> None:
    assert proc.stdin is not None
    proc.stdin.close()  # linkem's cue to exit
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
    log.info("linkem exited %s: %s", proc.returncode, log_path.read_text().strip()[-400:])


def _stop_netns_processes(netns: str, sshd: subprocess.Popen[bytes] | None) -> None:
    """Stop sshd and every process still in our namespace (only sshd's sessions can be there)."""
    pids = {int(p) for p in _run("ip", "netns", "pids", netns).split()}
    if sshd is not None and sshd.poll() is None:
        pids.add(sshd.pid)
    for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            if sshd is not None:
                sshd.poll()  # reap it, or it lingers as a zombie
            pids = {pid for pid in pids if _alive(pid)}
            time.sleep(0.02)
    if sshd is not None:
        sshd.wait(timeout=3)


def _alive(pid: int) -> bool:
    """Whether `pid` is a running process (not a zombie)."""
    try:
        return pid > 0 and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def measure(remote: WanRemote, nbytes: int, iperf_s: int) -> dict[str, object]:
    """Measure the link: ping RTT, iperf3 (if installed), ssh `cat` throughput, linkem's CPU under load."""
    rtts = remote.ping_ms(count=20)
    result: dict[str, object] = {
        "link": dataclasses.asdict(remote.link) | {"queue_bytes": remote.link.queue_bytes},
        "ping_ms": {"min": min(rtts), "avg": sum(rtts) / len(rtts), "max": max(rtts), "n": len(rtts)},
    }
    if shutil.which("iperf3") and iperf_s > 0:
        server = subprocess.Popen(
            remote.netns_command("iperf3", "-s", "-1", "-B", remote.host), stdout=subprocess.DEVNULL
        )
        time.sleep(0.3)
        cpu, start = remote.emulator_cpu_seconds(), time.monotonic()
        out = _run("iperf3", "-J", "-R", "-c", remote.host, "-t", str(iperf_s))
        load = (remote.emulator_cpu_seconds() - cpu) / (time.monotonic() - start)
        server.wait(timeout=5)
        summary = json.loads(out)["end"]
        result["iperf3_reverse"] = {
            "received_mbit_s": summary["sum_received"]["bits_per_second"] / 1e6,
            "retransmits": summary["sum_sent"]["retransmits"],
            "emulator_cpu_fraction": load,
        }
    cpu, start = remote.emulator_cpu_seconds(), time.monotonic()
    rate = remote.ssh_cat_mbytes_per_s(nbytes)
    load = (remote.emulator_cpu_seconds() - cpu) / (time.monotonic() - start)
    result["ssh_cat"] = {"bytes": nbytes, "mbytes_s": rate, "mbit_s": rate * 8, "emulator_cpu_fraction": load}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rtt-ms", type=float, default=LinkSpec.rtt_ms)
    parser.add_argument("--rate-mbit", type=float, default=LinkSpec.rate_mbit)
    parser.add_argument("--queue-bdp", type=float, default=LinkSpec.queue_bdp)
    parser.add_argument("--mtu", type=int, default=LinkSpec.mtu)
    parser.add_argument("--tick-us", type=int, default=LinkSpec.tick_us)
    parser.add_argument("--loss", type=float, default=LinkSpec.loss, help="random packet loss, 0..1")
    parser.add_argument("--user", help="account to log in as (default: current)")
    parser.add_argument(
        "-o",
        dest="sshd_options",
        action="append",
        default=[],
        metavar="KEYWORD=VALUE",
        help="extra sshd_config line, repeatable (e.g. -o MaxStartups=100)",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("up", help="bring the link up, print its details as JSON, wait for Ctrl-C or SIGTERM")
    run = sub.add_parser("run", help="run a command with WAN_* variables set, then tear down")
    run.add_argument("command", nargs=argparse.REMAINDER)
    chk = sub.add_parser("check", help="measure ping, iperf3, ssh cat throughput and emulator CPU")
    chk.add_argument("--bytes", type=int, default=200 << 20)
    chk.add_argument("--iperf-s", type=int, default=10, help="iperf3 seconds (0: skip)")
    sub.add_parser("cleanup", help="remove what runs that died left behind")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)

    if args.action == "cleanup":
        print("\n".join(cleanup_stale()) or "nothing to clean")
        return 0
    # Both unwind through wan_link's teardown (SIGINT even when started in the background, where it is ignored).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    link = LinkSpec(args.rtt_ms, args.rate_mbit, args.queue_bdp, args.mtu, args.tick_us, args.loss)
    options = dict(o.split("=", 1) for o in args.sshd_options)
    try:
        with wan_link(link, user=args.user, sshd_options=options) as remote:
            return _act(remote, args)
    except WanError as e:
        log.error("%s", e)
        return 1


def _act(remote: WanRemote, args: argparse.Namespace) -> int:
    if args.action == "check":
        print(json.dumps(measure(remote, args.bytes, args.iperf_s), indent=2))
        return 0
    env = {
        "WAN_HOST": remote.host,
        "WAN_PORT": str(remote.port),
        "WAN_USER": remote.user,
        "WAN_KEY": str(remote.key_path),
        "WAN_KNOWN_HOSTS": str(remote.known_hosts_path),
        "WAN_NETNS": remote.netns,
        "WAN_SSH": shlex.join(["ssh", *remote.ssh_options()]),  # for `rsync -e "$WAN_SSH"`
    }
    if args.action == "run":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        return subprocess.run(command or ["sh"], env=os.environ | env).returncode
    print(json.dumps(env, indent=2), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
