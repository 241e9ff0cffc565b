"""Install, start and read the remote agent over a source's shell: the I/O half of agent mode.

`launch` installs the agent where the cached copy is missing (through the source's command channel),
starts it on its own channel (`Spawner.spawn`) and waits for its `hello`: from then on every root is
watched, so a listing made after it misses nothing. `AgentLink.batch` returns what the agent said since the
last call, as messages; silence longer than the heartbeat timeout means the agent is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from mediasyncd.errors import RemoteError
from mediasyncd.sources import Source, Spawned, Spawner
from mediasyncd.watchers.agent_protocol import (
    Bad,
    Failed,
    Hello,
    Message,
    check_answer,
    check_command,
    parse_line,
    start_command,
    upload_command,
)

HELLO_TIMEOUT = 30.0  # watching a large tree takes a while (168 directories: 0.14 s)


class AgentUnavailable(Exception):
    """The agent cannot run (`retry` False: not on this remote until it reconnects) or was lost."""

    def __init__(self, reason: str, *, retry: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


def spawner_of(source: Source) -> Spawner | None:
    """The source's way to start the agent: it needs a shell (to install) and `spawn` (to run)."""
    if source.shell is None or not isinstance(source, Spawner):
        return None
    return source


async def install(source: Source, script: bytes) -> None:
    """Make sure the cached copy of `script` is on the remote. Raises AgentUnavailable, RemoteError."""
    shell = source.shell
    if shell is None:
        raise AgentUnavailable("the transport has no shell", retry=False)
    answer = check_answer((await shell.run(check_command(script))).stdout)
    word, _, rest = answer.partition(" ")
    if word == "no-python":
        raise AgentUnavailable("no python3 on the remote", retry=False)
    if word == "old-python":
        raise AgentUnavailable(f"{rest or 'python3'} on the remote; the agent needs 3.8+", retry=False)
    if word == "unsafe-dir":
        raise AgentUnavailable(f"{rest} is not a directory only this user owns", retry=False)
    if word == "cached":
        return
    if word != "upload":
        raise AgentUnavailable(f"unexpected answer to the agent check: {answer!r}")
    result = await shell.run(upload_command(script))
    if check_answer(result.stdout) != "installed":
        error = result.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = error[-1] if error else check_answer(result.stdout) or "no answer"
        raise AgentUnavailable(f"cannot install the agent in the remote's temp dir: {detail}", retry=False)


class AgentLink:
    """A running agent: batches of messages, one batch per read from its channel."""

    def __init__(self, process: Spawned, roots: Sequence[str], timeout: float) -> None:
        self.process = process
        self.roots = roots
        self.timeout = timeout
        self._rest = b""
        self.unread: list[Message] = []  # what came with the hello, for the first batch

    async def batch(self, wait: float) -> list[Message] | None:
        """The messages that arrived within `wait` seconds (None: nothing came). Raises
        AgentUnavailable when the agent's channel ended."""
        if self.unread:
            unread, self.unread = self.unread, []
            return unread
        try:
            async with asyncio.timeout(wait):
                chunk = await self.process.read()
        except TimeoutError:
            return None
        if not chunk:
            tail = self._rest.decode("utf-8", "replace").strip()
            raise AgentUnavailable("the agent exited" + (f": {tail[-200:]}" if tail else ""))
        lines = (self._rest + chunk).split(b"\n")
        self._rest = lines.pop()
        if len(self._rest) > 1 << 16:
            self._rest = b""
            return [Bad("malformed", "a line longer than 64 KiB")]
        return [parse_line(line, self.roots) for line in lines if line.strip()]

    def close(self) -> None:
        self.process.close()


async def launch(
    source: Source, script: bytes, roots: Sequence[str], *, settle: float, heartbeat: float
) -> tuple[AgentLink, Hello]:
    """Install and start the agent; return it once it said hello. Raises AgentUnavailable, RemoteError."""
    spawner = spawner_of(source)
    if spawner is None:
        raise AgentUnavailable("the transport cannot run the agent (no shell)", retry=False)
    await install(source, script)
    process = await spawner.spawn(start_command(script, roots, settle=settle, heartbeat=heartbeat))
    link = AgentLink(process, roots, timeout=3 * heartbeat + 4)
    try:
        async with asyncio.timeout(HELLO_TIMEOUT):
            while True:
                messages = await link.batch(HELLO_TIMEOUT) or []
                for i, msg in enumerate(messages):
                    if isinstance(msg, Hello):
                        link.unread = messages[i + 1 :]
                        return link, msg
                    if isinstance(msg, Failed):
                        raise AgentUnavailable(msg.reason, retry=msg.retry)
                    if isinstance(msg, Bad):
                        raise AgentUnavailable(f"the agent did not start: {msg.detail}")
    except TimeoutError:
        link.close()
        raise AgentUnavailable(f"no hello from the agent within {HELLO_TIMEOUT:.0f}s") from None
    except (AgentUnavailable, RemoteError, asyncio.CancelledError):
        link.close()
        raise
