"""Pool workers that end with the process that made the pool, even when it is killed with SIGKILL.

The workers are children of multiprocessing's forkserver, not of the daemon. Each holds both ends of its
call-queue pipe, so after a kill -9 of the daemon it never reads EOF and waits forever; it also holds
the forkserver's "alive" pipe, so the forkserver (which exits when every holder of that pipe is gone)
waits for it; and the resource tracker (which exits at EOF on a pipe they all hold) waits for both.
A worker that exits with the daemon ends the whole chain, and the tools it runs (`deathsig`) end with it.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from multiprocessing.process import BaseProcess


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored for the block (in the main thread; elsewhere nothing changes). A process started
    meanwhile inherits the ignored signal across exec, and the multiprocessing forkserver hands that on
    to every worker it forks, from the fork on: none of them takes a terminal's Ctrl-C, not even while
    it imports, before its initializer runs. (A blocked signal would not do: `_posixsubprocess` clears
    the child's signal mask.) A Ctrl-C within the block itself, a few milliseconds, is lost."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def exit_with_parent() -> None:
    """Pool initializer: this worker exits as soon as the process that created it has exited, and it
    ignores SIGINT. A terminal's Ctrl-C goes to the whole foreground process group: the daemon stops
    its pool itself, and a worker that took the signal would print a KeyboardInterrupt traceback (the
    tools it runs inherit the ignored signal, so an exiftool is not cut mid-file either)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        watch = threading.Thread(target=_exit_after, args=(parent,), name="exit-with-parent", daemon=True)
        watch.start()


def _exit_after(parent: BaseProcess) -> None:
    # Returns once the parent's end of the sentinel pipe is closed: when it exited, however it died,
    # even before this thread started. Exit at once: nobody is left to take a result.
    parent.join()
    os._exit(1)


@functools.cache
def _setpriv() -> str | None:
    return shutil.which("setpriv")


def deathsig(command: list[str]) -> list[str]:
    """`command` killed when the thread that started it ends (util-linux `setpriv --pdeathsig KILL`),
    where setpriv is there: an ffprobe of a worker that exits with a killed daemon does not run on."""
    setpriv = _setpriv()
    if setpriv is None or shutil.which(command[0]) is None:
        return command  # a missing tool still raises FileNotFoundError, as callers expect
    return [setpriv, "--pdeathsig", "KILL", "--", *command]
