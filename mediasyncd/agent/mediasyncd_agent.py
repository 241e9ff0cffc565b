"""mediasyncd-agent: streams "file complete" events for the given roots as JSON lines on stdout.

Uploaded and run by mediasyncd over a remote's shell channel; stdlib only, Python 3.8+, Linux inotify
through ctypes. A file is complete when it is closed after writing (IN_CLOSE_WRITE) or moved into place
(IN_MOVED_TO), never when it is created. A new directory is watched first and listed second, so nothing
written into it is missed; files the listing finds are reported once their size and mtime held still for
`--settle` seconds (or a close-write reports them sooner), as are files whose attributes (mtime) change. A queue overflow, an unknown watch or a root
that went away asks the daemon for a full listing (`rescan`); hitting the watch or instance limit is fatal.

The agent never outlives its channel: it exits at EOF on stdin, when a write to stdout fails, and when its
parent changes (the sshd session died). Messages, one JSON object a line, key `t` for the type:
  hello {v, pid, python, roots, missing}   every root watched (or missing): a listing now misses nothing
  file  {root, path, size, mtime[, found]}  a complete regular file; `root` indexes the roots
  hb    {ts}                               heartbeat, every `--heartbeat` seconds
  rescan {reason}                          events may have been lost: list everything
  error {reason, fatal, retry}             fatal: the agent exits right after it; retry: it may work later
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import select
import stat
import struct
import sys
import time

VERSION = "1"
NAME = "mediasyncd-agent"

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_UNMOUNT = 0x2000
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = 0o2000000

WATCH_MASK = (
    IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_TO
    | IN_MOVED_FROM
    | IN_CREATE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
)
HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (struct inotify_event)
READ_SIZE = 1 << 16
# Mounts where inotify sees only what this machine writes: changes made elsewhere never show.
BLIND_FS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse", "fuseblk", "sshfs", "ceph", "glusterfs")

# ------------------------------------------------------------------------------------------ pure parts


def decode_events(buf: bytes) -> list[tuple[int, int, int, bytes]]:
    """The events in a raw inotify read buffer: (wd, mask, cookie, name without its NUL padding)."""
    events: list[tuple[int, int, int, bytes]] = []
    offset = 0
    while offset + HEADER.size <= len(buf):
        wd, mask, cookie, length = HEADER.unpack_from(buf, offset)
        start = offset + HEADER.size
        name = buf[start : start + length].split(b"\0", 1)[0]
        events.append((wd, mask, cookie, name))
        offset = start + length
    return events


def message(kind: str, **fields: object) -> bytes:
    """One protocol line. Names that are not UTF-8 travel as surrogate escapes (\\udcXX)."""
    body: dict[str, object] = {"t": kind}
    body.update(fields)
    return (json.dumps(body, separators=(",", ":")) + "\n").encode("ascii")


def file_message(root: int, rel: bytes, st: os.stat_result, found: bool = False) -> bytes:
    fields: dict[str, object] = {
        "root": root,
        "path": os.fsdecode(rel),
        "size": st.st_size,
        "mtime": st.st_mtime,
    }
    if found:
        fields["found"] = True
    return message("file", **fields)


def join(rel: bytes, name: bytes) -> bytes:
    return rel + b"/" + name if rel else name


def blind_fstype(path: str, mountinfo: str) -> str | None:
    """The filesystem type under `path` if inotify cannot see changes made elsewhere on it."""
    best, fstype = "", ""
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5:
            continue
        point = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, fstype = point, right.split()[0] if right.split() else ""
    if fstype in BLIND_FS or fstype.startswith("fuse."):
        return fstype
    return None


# ------------------------------------------------------------------------------------------ inotify


class Inotify:
    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)  # the C library the interpreter runs on
        self._add = libc.inotify_add_watch
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self._rm = libc.inotify_rm_watch
        self._rm.argtypes = [ctypes.c_int, ctypes.c_int]
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, "inotify_init1: " + os.strerror(err))
        self.fd = fd

    def add(self, path: bytes, mask: int) -> int:
        wd = self._add(self.fd, path, mask)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), os.fsdecode(path))
        return int(wd)

    def remove(self, wd: int) -> None:
        self._rm(self.fd, wd)

    def read(self) -> bytes:
        chunks = []
        while True:
            try:
                data = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


class Fatal(Exception):
    pass


class Lost(Exception):
    """The channel is gone (stdout closed, stdin at EOF, parent changed)."""


# ------------------------------------------------------------------------------------------ the agent


class Agent:
    def __init__(self, roots: list[bytes], settle: float, out: int = 1) -> None:
        self.roots = roots
        self.settle = settle
        self.out = out
        self.ino = Inotify()
        self.wds: dict[int, tuple[int, bytes]] = {}  # wd -> (root index, directory relative to the root)
        self.dirs: dict[tuple[int, bytes], int] = {}
        self.found: dict[tuple[int, bytes], tuple[int, float, float]] = {}  # listed, not yet complete
        self.missing: set[int] = set()
        self.retired: set[int] = set()  # watches removed here: their queued events mean nothing
        self.pending: list[bytes] = []
        self.rescan: str | None = None

    # -------------------------------------------------------------------------------- watching

    def start(self) -> None:
        for i in range(len(self.roots)):
            self.watch_root(i, report=False)
        self.emit(message("hello", v=VERSION, pid=os.getpid(), python=sys.version.split()[0],
                          roots=[os.fsdecode(r) for r in self.roots], missing=sorted(self.missing)))  # fmt: skip

    def watch_root(self, i: int, report: bool) -> None:
        root = self.roots[i]
        if not os.path.isdir(root):
            self.missing.add(i)
            return
        self.missing.discard(i)
        self.watch_tree(i, b"", report)

    def watch_tree(self, i: int, rel: bytes, report: bool) -> None:
        """Watch `rel` and every directory below it: each is watched before it is listed, so a file
        written into it is either listed or seen closing."""
        stack = [rel]
        while stack:
            d = stack.pop()
            path = join(self.roots[i], d) if d else self.roots[i]
            try:
                wd = self.ino.add(path, WATCH_MASK | (IN_DONT_FOLLOW if d else 0))
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EMFILE):
                    self.rescan = "inotify limit reached"
                    raise Fatal(f"inotify watch limit reached ({errno.errorcode[exc.errno]}) at {exc.filename}: "
                                "raise fs.inotify.max_user_watches on the host") from None  # fmt: skip
                continue  # vanished, or not a directory any more
            old = self.wds.get(wd)
            if old is not None and old != (i, d):
                self.dirs.pop(old, None)
            self.wds[wd] = (i, d)
            self.dirs[(i, d)] = wd
            try:
                entries = list(os.scandir(path))
            except OSError:
                continue
            for entry in entries:
                name = join(d, os.fsencode(entry.name))
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(name)
                    elif report and entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        self.found[(i, name)] = (st.st_size, st.st_mtime, time.monotonic())
                except OSError:
                    continue

    def forget_tree(self, i: int, rel: bytes) -> None:
        prefix = rel + b"/"
        for key in [k for k in self.dirs if k[0] == i and (k[1] == rel or k[1].startswith(prefix))]:
            wd = self.dirs.pop(key)
            self.wds.pop(wd, None)
            self.retired.add(wd)
            self.ino.remove(wd)

    def rewatch_all(self) -> None:
        for i in range(len(self.roots)):
            self.watch_root(i, report=False)

    # -------------------------------------------------------------------------------- events

    def handle(self, events: list[tuple[int, int, int, bytes]]) -> None:
        moved_out: dict[int, tuple[int, bytes]] = {}  # a directory renamed away, by cookie
        for wd, mask, cookie, name in events:
            if mask & IN_Q_OVERFLOW:
                self.rescan = "inotify queue overflow"
                continue
            where = self.wds.get(wd)
            if where is None:
                if wd in self.retired:
                    if mask & IN_IGNORED:
                        self.retired.discard(wd)
                elif not mask & IN_IGNORED:
                    self.rescan = "event for an unknown watch"
                continue
            i, d = where
            if mask & IN_IGNORED:
                self.wds.pop(wd, None)
                if self.dirs.get(where) == wd:
                    del self.dirs[where]
                if not d:  # a root went away: it is watched again once it is back
                    self.missing.add(i)
                    self.rescan = "root removed"
                continue
            if not name:
                continue  # DELETE_SELF / MOVE_SELF: the parent's events or IN_IGNORED say what matters
            rel = join(d, name)
            if mask & IN_ISDIR:
                if mask & (IN_CREATE | IN_MOVED_TO):
                    moved_out.pop(cookie, None)  # renamed within the tree: its watches are kept
                    self.watch_tree(i, rel, report=True)
                elif mask & IN_MOVED_FROM:
                    moved_out[cookie] = (i, rel)
                continue
            if mask & (IN_CLOSE_WRITE | IN_MOVED_TO):
                self.found.pop((i, rel), None)
                try:
                    st = os.lstat(join(self.roots[i], rel))
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    self.emit(file_message(i, rel, st))
            elif mask & IN_ATTRIB:  # an mtime set after the close (touch, utime): again once it settles
                try:
                    st = os.lstat(join(self.roots[i], rel))
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    self.found[(i, rel)] = (st.st_size, st.st_mtime, time.monotonic())
        for i, rel in moved_out.values():  # renamed out of the tree: no longer watched
            self.forget_tree(i, rel)

    def tick(self, now: float) -> None:
        """Found files that held still for `settle`, and roots that came back."""
        for key, (size, mtime, since) in list(self.found.items()):
            i, rel = key
            try:
                st = os.lstat(join(self.roots[i], rel))
            except OSError:
                del self.found[key]
                continue
            if not stat.S_ISREG(st.st_mode):
                del self.found[key]
            elif (st.st_size, st.st_mtime) != (size, mtime):
                self.found[key] = (st.st_size, st.st_mtime, now)
            elif now - since >= self.settle or time.time() - st.st_mtime >= self.settle:
                del self.found[key]
                self.emit(file_message(i, rel, st, found=True))
        for i in sorted(self.missing):
            if os.path.isdir(self.roots[i]):
                self.watch_root(i, report=True)

    # -------------------------------------------------------------------------------- output

    def emit(self, line: bytes) -> None:
        self.pending.append(line)

    def flush(self) -> None:
        if self.rescan is not None:
            self.pending.append(message("rescan", reason=self.rescan))
            self.rescan = None
        data = b"".join(self.pending)
        self.pending = []
        while data:
            try:
                written = os.write(self.out, data)
            except OSError:  # EPIPE: the channel is gone
                raise Lost() from None
            data = data[written:]


def main(argv: list[str]) -> int:
    settle, heartbeat = 5.0, 2.0
    roots: list[bytes] = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--settle" and args:
            settle = float(args.pop(0))
        elif arg == "--heartbeat" and args:
            heartbeat = float(args.pop(0))
        elif arg == "--":
            roots.extend(os.fsencode(a) for a in args)
            break
        else:
            roots.append(os.fsencode(arg))
    out = sys.stdout.fileno()
    parent = os.getppid()
    try:
        agent = Agent(roots, settle, out)
    except OSError as exc:
        os.write(
            out, message("error", reason=f"inotify unavailable: {exc.strerror}", fatal=True, retry=False)
        )
        return 2
    try:
        with open("/proc/self/mountinfo") as f:
            mounts = f.read()
    except OSError:
        mounts = ""
    for root in roots:
        blind = blind_fstype(os.path.realpath(os.fsdecode(root)), mounts)
        if blind:
            reason = f"inotify does not see changes made elsewhere on {blind} ({os.fsdecode(root)})"
            os.write(out, message("error", reason=reason, fatal=True, retry=False))
            return 2
    poller = select.poll()
    poller.register(agent.ino.fd, select.POLLIN)
    poller.register(0, select.POLLIN)
    try:
        try:
            agent.start()
            agent.flush()
            beat = time.monotonic() + heartbeat
            while True:
                now = time.monotonic()
                wait = beat - now
                if agent.found or agent.missing:
                    wait = min(wait, 0.25)
                for fd, flags in poller.poll(max(wait, 0.0) * 1000):
                    if fd == 0:
                        if flags & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                            raise Lost()
                        if not os.read(0, 65536):
                            raise Lost()
                    else:
                        agent.handle(decode_events(agent.ino.read()))
                if agent.rescan is not None:  # overflow: watch what the lost events created, then ask
                    agent.rewatch_all()
                now = time.monotonic()
                agent.tick(now)
                if now >= beat:
                    if os.getppid() != parent:
                        raise Lost()
                    agent.emit(message("hb", ts=round(time.time(), 3)))
                    beat = now + heartbeat
                agent.flush()
        except Fatal as exc:
            agent.emit(message("error", reason=str(exc), fatal=True, retry=True))
            agent.flush()
            return 3
    except Lost:
        return 0
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
