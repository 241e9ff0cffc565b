"""Commands framed by random sentinels on one long-lived shell, whatever carries it (an SSH channel, a
`docker exec -i … sh` process). Pure framing plus one reader over any byte stream.

Each command runs as `{ script; } </dev/null`, then prints a sentinel line with its exit status on stdout
and a sentinel line on stderr, so the reader knows where its output ends without closing the shell.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass
from typing import Protocol

from mediasyncd.errors import RemoteError

SENTINEL_SPAN = 64  # a sentinel line is shorter: the search resumes this far back, across chunk edges
READ_CHUNK = 1 << 20  # output is consumed as it comes: a listing can be far larger than any window
PROBE_OK = b"mediasyncd-ok\n"
IDLE_TIMEOUT = 300.0  # a command whose shell sends nothing this long is taken as hung (a wedged container)
STDERR_KEPT = 16 << 20  # a command's stderr kept (its start): more is read past, its memory is bounded


class ShellHung(RemoteError):
    """The shell sent nothing for IDLE_TIMEOUT seconds: it is closed, and the remote reconnects."""


class AnswerTooLong(RemoteError):
    """More came before the end pattern than the answer may hold (`read_through`'s `most`)."""


class Readable(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


@dataclass(frozen=True)
class Framed:
    """One command ready to write, and the patterns that end its stdout and stderr."""

    data: bytes
    stdout_end: re.Pattern[bytes]
    stderr_end: re.Pattern[bytes]


def frame(script: str) -> Framed:
    token = "__mediasyncd_" + secrets.token_hex(8)
    data = f"{{ {script}\n}} </dev/null; printf '\\n{token} %d\\n' $?; printf '{token}\\n' >&2\n".encode()
    return Framed(
        data, re.compile(rb"\n" + token.encode() + rb" (\d+)\n"), re.compile(token.encode() + rb"\n")
    )


async def read_through(
    stream: Readable,
    end: re.Pattern[bytes],
    idle: float | None = None,
    most: int | None = None,
    keep: int | None = None,
) -> tuple[bytes, bytes | None]:
    """Read `stream` until `end` matches; return what came before it and the pattern's first group.
    Raises asyncio.IncompleteReadError when the stream ends first (the shell is gone), ShellHung when
    nothing arrives for `idle` seconds (default IDLE_TIMEOUT; a long command that prints nothing, like
    one SHA-256 of a large file, must finish within it), and AnswerTooLong when more than `most` bytes
    came without the end (an answer whose size is known: a remote that sends without end is not kept).
    `keep`: of a longer answer its first `keep` bytes are returned, and what came in the read that held
    the end; the rest is read past (a command's stderr: a remote's flood of messages)."""
    limit = IDLE_TIMEOUT if idle is None else idle
    buf = bytearray()
    while True:
        try:
            async with asyncio.timeout(limit):
                chunk = await stream.read(READ_CHUNK)
        except TimeoutError:
            raise ShellHung(f"the shell stopped answering: nothing for {limit:.0f} s") from None
        if not chunk:
            raise asyncio.IncompleteReadError(bytes(buf), None)
        searched = len(buf)
        buf += chunk
        match = end.search(buf, max(0, searched - SENTINEL_SPAN))
        if match is not None:  # nothing follows it: the shell waits for the next command
            return bytes(buf[: match.start()]), match.group(1) if end.groups else None
        if most is not None and len(buf) > most:
            raise AnswerTooLong(f"more than {most} bytes without the end of the answer")
        if keep is not None and len(buf) > keep + SENTINEL_SPAN:
            del buf[keep : len(buf) - SENTINEL_SPAN]  # the end may begin in what is left
