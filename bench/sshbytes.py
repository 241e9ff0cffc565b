"""Bulk bytes over SSH, each way alone: asyncssh's channel (ciphers, windows, packet sizes) against the
OpenSSH client writing into a pipe, with and without hashing and writing the bytes here.

    sudo .venv/bin/python -m bench.sshbytes --mb 400 --repeat 3

Each variant runs in a fresh Python process against the loopback sshd (tests/sshd.py, OpenSSH's
`sftp-server`); the variants are interleaved, each repetition in a rotated order, and the medians are
printed. Timed from just before the first byte is asked for (asyncssh: after connecting; the OpenSSH
client: including its own connection, shown on its own as `ssh true`) to the last byte handled:
wall time, local CPU (user + system of this process and its children, i.e. `ssh`), and machine CPU
(busy time of all CPUs in /proc/stat: both ends, sshd and the remote `cat` included).

Variants: `asyncssh-cat` reads `cat FILE` over an exec channel; `asyncssh-sftp` is mediasyncd's own
SFTP pull (`sftp_pull`: pipelined reads, hashed and written into a partial); `ssh-cat` is
`ssh … cat FILE >/dev/null`; `rsync` is `rsync -a -e ssh` of the file; `ssh-pipe` is the same into a pipe that this process reads in 1 MiB
chunks, hashes and writes. `+hash` hashes and writes to a file in a thread as the real path does.
The asyncssh variants receive as mediasyncd does (sources/ssh/receive.py), unless named "asyncssh's
parser (sliced)": asyncssh's own packet parser, fed one packet's worth at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _machine_busy() -> float:
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class _Meter:
    def __enter__(self) -> _Meter:
        self.wall, self.cpu, self.busy = time.perf_counter(), _cpu(), _machine_busy()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = _cpu() - self.cpu
        self.busy = _machine_busy() - self.busy


class _Sink:
    """Hash and write in a thread, in order, as PartialWriter does for a large file."""

    def __init__(self, path: Path | None) -> None:
        self.hasher = hashlib.sha256()
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) if path else None

    def write(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.hasher.update(chunk)
            if self.fd is not None:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(self.fd, view) :]

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)


def ssh_argv(ep: dict[str, Any], cipher: str | None, command: str) -> list[str]:
    argv = ["ssh", "-F", "/dev/null", "-i", ep["key"], "-p", str(ep["port"]), "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={ep['known_hosts']}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "Compression=no"]  # fmt: skip
    if cipher:
        argv += ["-c", cipher]
    return [*argv, f"{ep['user']}@{ep['host']}", command]


async def _asyncssh_variant(v: dict[str, Any], ep: dict[str, Any], out: Path) -> dict[str, float]:
    import asyncssh

    from mediasyncd.sources.ssh.receive import receive_fast, slice_received

    class Client(asyncssh.SSHClient):
        def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
            receive = v.get("receive", "fast")  # "fast": mediasyncd's; "slice": asyncssh's parser, sliced
            if receive == "fast":
                receive_fast(conn)
            elif receive == "slice":
                slice_received(conn)

    conn, _ = await asyncssh.create_connection(
        Client, ep["host"], ep["port"], username=ep["user"], client_keys=[ep["key"]],
        known_hosts=ep["known_hosts"], encryption_algs=[v["cipher"]], compression_algs=None, agent_path=None,
    )  # fmt: skip
    executor = ThreadPoolExecutor(2)
    loop = asyncio.get_running_loop()
    try:
        if v["kind"] == "asyncssh-sftp":
            from mediasyncd.sources.ssh.sftp import sftp_pull

            sftp = await conn.start_sftp_client()
            with _Meter() as m:
                await sftp_pull(sftp, ep["file"], out, size=ep["size"], mtime=ep["mtime"], executor=executor,
                                check_attrs=False, block_size=v.get("block", 0),
                                max_requests=v.get("requests", 64))  # fmt: skip
            got = ep["size"]
        else:
            sink = _Sink(out) if v.get("hash") else None
            with _Meter() as m:
                proc = await conn.create_process(
                    f"cat {ep['file']}", encoding=None, window=v.get("window", 2 << 20),
                    max_pktsize=v.get("pktsize", 32768),
                )  # fmt: skip
                got = 0
                pending: asyncio.Future[None] | None = None
                while chunk := await proc.stdout.read(v.get("read", CHUNK)):
                    got += len(chunk)
                    if sink is not None:
                        if pending is not None:
                            await pending
                        pending = loop.run_in_executor(executor, sink.write, [chunk])
                if pending is not None:
                    await pending
                if sink is not None:
                    sink.close()
                proc.close()
    finally:
        conn.close()
        await conn.wait_closed()
    return {"wall": m.wall, "cpu": m.cpu, "busy": m.busy, "bytes": got}


def _ssh_variant(v: dict[str, Any], ep: dict[str, Any], out: Path) -> dict[str, float]:
    if v["kind"] == "rsync":  # the reference: rsync -a over OpenSSH's default cipher, as bench.ab runs it
        shell = " ".join(ssh_argv(ep, None, "")[:-2])
        with _Meter() as m:
            subprocess.run(["rsync", "-a", "-e", shell, f"{ep['user']}@{ep['host']}:{ep['file']}", str(out)],
                           stdin=subprocess.DEVNULL, check=True)  # fmt: skip
        return {"wall": m.wall, "cpu": m.cpu, "busy": m.busy, "bytes": ep["size"]}
    command = "true" if v["kind"] == "ssh-true" else f"cat {ep['file']}"
    argv = ssh_argv(ep, v.get("cipher"), command)
    got = 0
    with _Meter() as m:
        if v["kind"] in ("ssh-cat", "ssh-true"):
            subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
            got = ep["size"] if v["kind"] == "ssh-cat" else 0
        else:
            sink = _Sink(out if v.get("hash", True) else None)
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, bufsize=0)
            assert proc.stdout is not None
            fd = proc.stdout.fileno()
            if v.get("pipe_size"):
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, v["pipe_size"])
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            while True:
                n = 0
                while n < CHUNK:  # fill a whole chunk: a pipe gives at most 64 KiB per read
                    r = os.readv(fd, [view[n:]])
                    if not r:
                        break
                    n += r
                if not n:
                    break
                got += n
                if v.get("hash", True):
                    sink.write([view[:n]])  # type: ignore[list-item]
                if n < CHUNK:
                    break
            proc.wait()
            sink.close()
    return {"wall": m.wall, "cpu": m.cpu, "busy": m.busy, "bytes": got}


def _floor_variant(v: dict[str, Any], ep: dict[str, Any], out: Path) -> dict[str, float]:
    """No SSH: what hashing, writing and flushing the same bytes cost here."""
    with open(ep["file"], "rb") as fh:
        data = [fh.read(CHUNK) for _ in range(ep["size"] // CHUNK)]
    sink = _Sink(out if v["kind"] != "sha256" else None)
    with _Meter() as m:
        if v["kind"] == "sha256":
            sink.write(data)
        else:  # write only, then flush to disk as landing does (syncfs)
            fd = sink.fd
            assert fd is not None
            for chunk in data:
                os.write(fd, chunk)
            os.syncfs(fd) if hasattr(os, "syncfs") else os.fsync(fd)
    sink.close()
    return {"wall": m.wall, "cpu": m.cpu, "busy": m.busy, "bytes": ep["size"]}


def child(argv: Sequence[str]) -> None:
    v, ep, out = json.loads(argv[0]), json.loads(argv[1]), Path(argv[2])
    if v["kind"] in ("sha256", "write+flush"):
        result = _floor_variant(v, ep, out)
    elif v["kind"].startswith("asyncssh"):
        result = asyncio.run(_asyncssh_variant(v, ep, out))
    else:
        result = _ssh_variant(v, ep, out)
    print(json.dumps(result))


VARIANTS: list[dict[str, Any]] = [
    {"name": "rsync -a -e ssh (default cipher)", "kind": "rsync"},
    {"name": "ssh true (connect only), aes128-gcm", "kind": "ssh-true", "cipher": "aes128-gcm@openssh.com"},
    {"name": "ssh cat >/dev/null, default cipher", "kind": "ssh-cat"},
    {"name": "ssh cat >/dev/null, aes128-gcm", "kind": "ssh-cat", "cipher": "aes128-gcm@openssh.com"},
    {"name": "ssh cat | hash+write, aes128-gcm", "kind": "ssh-pipe", "cipher": "aes128-gcm@openssh.com"},
    {
        "name": "ssh cat | read only, aes128-gcm",
        "kind": "ssh-pipe",
        "cipher": "aes128-gcm@openssh.com",
        "hash": False,
    },
    {
        "name": "ssh cat | hash+write, aes128-gcm, 1 MiB pipe",
        "kind": "ssh-pipe",
        "cipher": "aes128-gcm@openssh.com",
        "pipe_size": 1 << 20,
    },
    {"name": "ssh cat | hash+write, chacha20", "kind": "ssh-pipe", "cipher": "chacha20-poly1305@openssh.com"},
    {"name": "asyncssh cat, aes128-gcm", "kind": "asyncssh-cat", "cipher": "aes128-gcm@openssh.com"},
    {
        "name": "asyncssh cat, aes128-gcm, asyncssh's parser (sliced)",
        "kind": "asyncssh-cat",
        "cipher": "aes128-gcm@openssh.com",
        "receive": "slice",
    },
    {"name": "asyncssh cat, chacha20", "kind": "asyncssh-cat", "cipher": "chacha20-poly1305@openssh.com"},
    {"name": "asyncssh cat, aes128-ctr", "kind": "asyncssh-cat", "cipher": "aes128-ctr"},
    {"name": "asyncssh cat, aes256-ctr", "kind": "asyncssh-cat", "cipher": "aes256-ctr"},
    {
        "name": "asyncssh cat, aes128-gcm, window 8M pkt 256K",
        "kind": "asyncssh-cat",
        "cipher": "aes128-gcm@openssh.com",
        "window": 8 << 20,
        "pktsize": 256 << 10,
    },
    {
        "name": "asyncssh cat, aes128-gcm, window 8M",
        "kind": "asyncssh-cat",
        "cipher": "aes128-gcm@openssh.com",
        "window": 8 << 20,
    },
    {
        "name": "asyncssh cat, aes128-gcm, pkt 64K",
        "kind": "asyncssh-cat",
        "cipher": "aes128-gcm@openssh.com",
        "pktsize": 64 << 10,
    },
    {
        "name": "asyncssh cat | hash+write, aes128-gcm",
        "kind": "asyncssh-cat",
        "cipher": "aes128-gcm@openssh.com",
        "hash": True,
    },
    {
        "name": "asyncssh cat | hash+write, aes128-gcm, window 8M pkt 256K",
        "kind": "asyncssh-cat",
        "cipher": "aes128-gcm@openssh.com",
        "hash": True,
        "window": 8 << 20,
        "pktsize": 256 << 10,
    },
    {
        "name": "asyncssh SFTP (sftp_pull), aes128-gcm",
        "kind": "asyncssh-sftp",
        "cipher": "aes128-gcm@openssh.com",
    },
    {
        "name": "asyncssh SFTP (sftp_pull), aes128-gcm, 16 requests",
        "kind": "asyncssh-sftp",
        "cipher": "aes128-gcm@openssh.com",
        "requests": 16,
    },
    {
        "name": "asyncssh SFTP (sftp_pull), aes128-gcm, 128 requests",
        "kind": "asyncssh-sftp",
        "cipher": "aes128-gcm@openssh.com",
        "requests": 128,
    },
    {"name": "floor: SHA-256 alone (no SSH)", "kind": "sha256"},
    {"name": "floor: write + syncfs alone (no SSH)", "kind": "write+flush"},
]


@contextlib.contextmanager
def _server(work: Path) -> Iterator[dict[str, Any]]:
    from bench.endpoints import SFTP_SERVER, SSHD_OPTIONS
    from tests.sshd import start_sshd

    extra = f"Subsystem sftp {SFTP_SERVER}\n" + "".join(f"{k} {v}\n" for k, v in SSHD_OPTIONS.items())
    with start_sshd(work / "sshd", extra_config=extra) as e:
        yield {"host": e.host, "port": e.port, "user": e.user, "key": str(e.client_key),
               "known_hosts": str(e.known_hosts), "pid": e.pid}  # fmt: skip


def _sshd_cpu(pid: int) -> float:
    """CPU-s of the sshd and every session it has reaped (the remote end: sshd, cat, sftp-server)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mb", type=int, default=400)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only", action="append", default=[], help="run the variants whose name contains this")
    p.add_argument("--scratch", type=Path, default=Path("/var/tmp/mediasyncd-bench"))
    args = p.parse_args(argv)
    variants = [v for v in VARIANTS if not args.only or any(o in v["name"] for o in args.only)]
    args.scratch.mkdir(parents=True, exist_ok=True)
    source = args.scratch / f"sshbytes-{args.mb}M"
    if not source.exists() or source.stat().st_size != args.mb << 20:
        with source.open("wb") as fh:
            for _ in range(args.mb):
                fh.write(os.urandom(1 << 20))
    subprocess.run(["cat", str(source)], stdout=subprocess.DEVNULL, check=True)  # into the page cache
    results: dict[str, list[dict[str, float]]] = {}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="sshbytes-", dir=args.scratch) as tmp, _server(Path(tmp)) as ep:
        st = source.stat()
        ep.update(file=str(source), size=st.st_size, mtime=st.st_mtime)
        out = Path(tmp) / "out"
        for rep in range(args.repeat):
            order = variants[rep % len(variants) :] + variants[: rep % len(variants)]
            for v in order:
                out.unlink(missing_ok=True)
                remote = _sshd_cpu(ep["pid"])
                done = subprocess.run(
                    [sys.executable, "-m", "bench.sshbytes", "--child", json.dumps(v), json.dumps(ep), str(out)],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                r = json.loads(done.stdout)
                time.sleep(0.3)  # the session is reaped by sshd
                r["remote"] = _sshd_cpu(ep["pid"]) - remote
                results.setdefault(v["name"], []).append(r)
                print(f"#{rep + 1} {v['name']}: {r['wall']:.2f} s, local {r['cpu']:.2f} CPU-s, "
                      f"remote {r['remote']:.2f} CPU-s, machine {r['busy']:.2f} CPU-s", flush=True)  # fmt: skip
    print(f"\n{args.mb} MiB over the loopback sshd, medians of {args.repeat}; load average {load:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after")  # fmt: skip
    print("| variant | wall s | MB/s | local CPU-s | remote CPU-s | machine CPU-s | local CPU-s/GB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, runs in results.items():
        wall = statistics.median(r["wall"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        busy = statistics.median(r["busy"] for r in runs)
        remote = statistics.median(r["remote"] for r in runs)
        size = runs[0]["bytes"]
        rate = f"{size / wall / 1e6:.0f}" if size else "—"
        per_gb = f"{cpu / (size / 1e9):.2f}" if size else "—"
        print(f"| {name} | {wall:.2f} | {rate} | {cpu:.2f} | {remote:.2f} | {busy:.2f} | {per_gb} |")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        raise SystemExit(0)
    raise SystemExit(main())
