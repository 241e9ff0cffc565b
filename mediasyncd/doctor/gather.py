"""The doctor's I/O: the facts about this machine (in a thread) and about each remote (through its
Source, all remotes at once), printed section by section in config order as they come in."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import TextIO

from mediasyncd.config import Config, DaemonConfig, RemoteConfig
from mediasyncd.doctor.checks import (
    LocalFacts,
    Reached,
    Unreached,
    exit_code,
    local_checks,
    remote_checks,
    render,
    summary,
)
from mediasyncd.errors import RemoteError
from mediasyncd.sources import open_source

SURVEY_TIMEOUT = 60.0  # for the questions asked once connected (connecting has its own connect_timeout)


async def run_doctor(config: Config, out: TextIO = sys.stdout) -> int:
    """Check this machine and every remote; print one line per check; 1 if any check failed."""
    print(f"{config.path}: config OK ({len(config.remotes)} remote(s))", file=out)
    local = await asyncio.to_thread(local_facts, config.daemon)
    sections = [local_checks(config.daemon, local, len(config.remotes))]
    print(render(sections[0]), file=out, flush=True)
    async with asyncio.TaskGroup() as tg:
        pending = [(r, tg.create_task(remote_facts(r, config.daemon.state_dir))) for r in config.remotes]
        for remote, task in pending:
            sections.append(remote_checks(remote, await task))
            print(render(sections[-1]), file=out, flush=True)
    print(summary(sections), file=out)
    return exit_code(sections)


async def remote_facts(remote: RemoteConfig, state_dir: Path) -> Reached | Unreached:
    """Connect through the daemon's own connect path (its host-key policy and messages) and survey."""
    try:
        source = await open_source(remote, state_dir)
    except RemoteError as exc:  # a refused host key (HostKeyError) too, with its own message
        return Unreached(str(exc))
    try:
        async with asyncio.timeout(SURVEY_TIMEOUT):
            survey = await source.survey(remote.roots)
            free = {r.root: await source.free_space(r.root) for r in survey.roots if r.state == "dir"}
    except RemoteError as exc:
        return Unreached(f"connected, then: {exc}")
    except TimeoutError:
        return Unreached(f"connected, but the remote did not answer within {SURVEY_TIMEOUT:.0f} s")
    finally:
        await source.close()
    return Reached(source.caps, source.shell is not None, survey, free)


def local_facts(daemon: DaemonConfig) -> LocalFacts:
    lib = daemon.library
    exists = lib.is_dir()
    state = daemon.state_dir
    existing = state
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return LocalFacts(
        library_exists=exists,
        library_writable=exists and os.access(lib, os.W_OK | os.X_OK),
        library_mount=_mount_point(lib) if exists else None,
        library_free=shutil.disk_usage(lib).free if exists else None,
        state_dir_exists=state.is_dir(),
        state_dir_writable=existing.is_dir() and os.access(existing, os.W_OK | os.X_OK),
    )


def _mount_point(path: Path) -> Path:
    """The mount point of the filesystem holding `path` (`path` itself when it is one)."""
    here = path
    while not os.path.ismount(here) and here != here.parent:
        here = here.parent
    return here
