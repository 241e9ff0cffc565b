"""What the remote agent says, as typed messages, and the commands that install and start it. Pure.

The agent (`mediasyncd/agent/mediasyncd_agent.py`) writes JSON lines; `parse_line` turns one into a
message, and anything it cannot trust (not JSON, an unknown type, a path with `..`, an absolute path,
control characters, a root it was not given) into `Bad`, with a kind for logging once per kind.

Install: one command checks for python3 >= 3.8 and a cached copy with the right SHA-256 in
`${XDG_RUNTIME_DIR:-/tmp}/mediasyncd-<uid>/` (a 0700 directory the user owns); only when it is missing, a
second one uploads it (base64 through the command channel, checked again before the rename).
"""

from __future__ import annotations

import hashlib
import json
import math
import shlex
from base64 import b64encode
from collections.abc import Sequence
from dataclasses import dataclass

from mediasyncd.errors import UnsafePathError
from mediasyncd.paths import decode_rel
from mediasyncd.sources import RemoteEntry

AGENT_DIR = '"${XDG_RUNTIME_DIR:-/tmp}/mediasyncd-$(id -u)"'
MIN_PYTHON = (3, 8)
MAX_LINE = 1 << 16  # longer lines are not the agent's


@dataclass(frozen=True)
class Hello:
    pid: int
    version: str
    python: str
    missing: tuple[int, ...]


@dataclass(frozen=True)
class FileDone:
    entry: RemoteEntry
    found: bool  # listed in a new directory and settled by the agent, not seen closing


@dataclass(frozen=True)
class Heartbeat:
    pass


@dataclass(frozen=True)
class Rescan:
    reason: str


@dataclass(frozen=True)
class Failed:
    reason: str
    fatal: bool
    retry: bool


@dataclass(frozen=True)
class Bad:
    kind: str  # "malformed", "unsafe path", "unknown root", "unknown message"
    detail: str


Message = Hello | FileDone | Heartbeat | Rescan | Failed | Bad


def parse_line(line: bytes, roots: Sequence[str]) -> Message:
    """One line from the agent (without its newline)."""
    if len(line) > MAX_LINE:
        return Bad("malformed", f"line of {len(line)} bytes")
    try:
        msg = json.loads(line)
    except ValueError:
        return Bad("malformed", _shown(line))
    if not isinstance(msg, dict):
        return Bad("malformed", _shown(line))
    kind = msg.get("t")
    try:
        if kind == "file":
            return _file(msg, roots)
        if kind == "hb":
            return Heartbeat()
        if kind == "rescan":
            return Rescan(str(msg.get("reason", "")))
        if kind == "hello":
            missing = tuple(int(i) for i in msg.get("missing", ()))
            return Hello(int(msg["pid"]), str(msg["v"]), str(msg.get("python", "")), missing)
        if kind == "error":
            return Failed(str(msg.get("reason", "")), bool(msg.get("fatal")), bool(msg.get("retry", True)))
    except (KeyError, TypeError, ValueError):
        return Bad("malformed", _shown(line))
    return Bad("unknown message", _shown(line))


def _file(msg: dict[str, object], roots: Sequence[str]) -> FileDone | Bad:
    root, path, size, mtime = msg.get("root"), msg.get("path"), msg.get("size"), msg.get("mtime")
    if not isinstance(root, int) or not 0 <= root < len(roots):
        return Bad("unknown root", repr(root))
    if not isinstance(path, str):
        return Bad("malformed", repr(msg))
    if (
        not isinstance(size, int)
        or size < 0
        or not isinstance(mtime, int | float)
        or not math.isfinite(mtime)
    ):
        return Bad("malformed", repr(msg))
    try:
        rel = decode_rel(path.encode("utf-8", "surrogateescape"))
    except (UnsafePathError, UnicodeEncodeError) as exc:
        return Bad("unsafe path", f"{path!a}: {exc}")
    return FileDone(RemoteEntry(roots[root], rel, size, float(mtime)), bool(msg.get("found")))


def _shown(line: bytes) -> str:
    return line[:200].decode("utf-8", "backslashreplace")


# ------------------------------------------------------------------------------------------ commands


def digest(script: bytes) -> str:
    return hashlib.sha256(script).hexdigest()


def agent_path(script: bytes) -> str:
    """The cached copy's path on the remote (a shell word: the directory is expanded there)."""
    return f"{AGENT_DIR}/mediasyncd-agent-{digest(script)[:8]}.py"


_HASH = "import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())"
_VERSION = f"import sys; sys.exit(sys.version_info < {MIN_PYTHON!r})"
_WRITE = (
    "import base64,hashlib,os,sys\n"
    "data = base64.b64decode(sys.stdin.read())\n"
    "if hashlib.sha256(data).hexdigest() != sys.argv[2]:\n"
    "    print('agent corrupt'); sys.exit(0)\n"
    "tmp = '%s.%d' % (sys.argv[1], os.getpid())\n"
    "with open(tmp, 'wb') as f:\n"
    "    f.write(data)\n"
    "os.chmod(tmp, 0o700); os.rename(tmp, sys.argv[1]); print('agent installed')\n"
    "d, me = os.path.split(sys.argv[1])\n"
    "for name in os.listdir(d):  # earlier versions: their running agents have read them already\n"
    "    if name.startswith('mediasyncd-agent-') and name.endswith('.py') and name != me:\n"
    "        os.unlink(os.path.join(d, name))\n"
)


def check_command(script: bytes) -> str:
    """Prints one `agent <word> …` line: `no-python`, `old-python <version>`, `unsafe-dir <dir>`,
    `cached` or `upload`. Never exits the shell it runs in."""
    py = shlex.quote
    return (
        f"d={AGENT_DIR}; f={agent_path(script)}; "
        "if ! command -v python3 >/dev/null 2>&1; then echo 'agent no-python'; "
        f'elif ! python3 -c {py(_VERSION)} 2>/dev/null; then echo "agent old-python $(python3 -V 2>&1)"; '
        'elif { [ -e "$d" ] || [ -L "$d" ]; } && { [ -L "$d" ] || [ ! -d "$d" ] || [ ! -O "$d" ]; }; then '
        'echo "agent unsafe-dir $d"; '
        f'elif [ -f "$f" ] && [ "$(python3 -c {py(_HASH)} "$f" 2>/dev/null)" = {digest(script)} ]; then '
        "echo 'agent cached'; "
        "else echo 'agent upload'; fi"
    )


def upload_command(script: bytes) -> str:
    """Writes the script to its cached path (checked against its SHA-256, renamed into place) and removes
    earlier versions: prints `agent installed`, `agent corrupt`, or an error on stderr."""
    encoded = b64encode(script).decode("ascii")
    return (
        f"d={AGENT_DIR}; f={agent_path(script)}; "
        '(umask 077; mkdir -p "$d") && chmod 700 "$d" && '
        f"printf '%s' '{encoded}' | python3 -c {shlex.quote(_WRITE)} \"$f\" {digest(script)}"
    )


def start_command(script: bytes, roots: Sequence[str], *, settle: float, heartbeat: float) -> str:
    """The agent as its own process (`exec`: its parent is the channel's, which it watches); stderr goes
    to stdout so a traceback reaches the daemon's log."""
    quoted = " ".join(shlex.quote(r) for r in roots)
    return (
        f"exec python3 -u {agent_path(script)} --settle {settle:g} --heartbeat {heartbeat:g} -- {quoted} 2>&1"
    )


def check_answer(stdout: bytes) -> str:
    """The word after `agent ` in a check or upload command's output, with what follows it."""
    for line in stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("agent "):
            return line[len("agent ") :].strip()
    return ""
