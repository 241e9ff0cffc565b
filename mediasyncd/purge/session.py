"""A purge run with its own SSH connection: connect, purge one remote, close (CLI and scheduler alike).

A `--local-only` run applies only the library's local retention and opens no connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from mediasyncd.config import Config, RemoteConfig
from mediasyncd.errors import RemoteError
from mediasyncd.purge.runner import RunOptions, RunReport, purge_remote
from mediasyncd.purge.store import PurgeLedger
from mediasyncd.transfer.remote import RemoteHost
from mediasyncd.transfer.ssh import connect

CLOSE_TIMEOUT = 5.0


async def open_host(remote: RemoteConfig, state_dir: Path) -> RemoteHost:
    """One SSH connection with its SFTP session and command channel."""
    conn = await connect(remote, state_dir)
    try:
        return await RemoteHost.open(conn)
    except BaseException:
        conn.close()
        raise


async def close_host(host: RemoteHost) -> None:
    with contextlib.suppress(Exception):  # a broken connection must not mask the run's own outcome
        await asyncio.wait_for(host.close(), CLOSE_TIMEOUT)


async def purge_once(
    config: Config, remote: RemoteConfig, ledger: PurgeLedger, options: RunOptions
) -> RunReport:
    """Connect to `remote` and purge it (with the library's local retention first); a failure to
    connect is recorded as a failed run. `options.local_only` runs the local retention alone."""
    library, naming = config.daemon.library, config.pipeline.xmp_naming
    if options.local_only:
        return await purge_remote(remote, None, ledger, library, options, xmp_naming=naming)
    try:
        host = await open_host(remote, config.daemon.state_dir)
    except RemoteError as exc:
        if options.record:
            run_id = await ledger.start_run(remote.name, options.source, options.dry_run)
            await ledger.finish_run(run_id, error=str(exc))
        raise
    try:
        return await purge_remote(remote, host, ledger, library, options, xmp_naming=naming)
    finally:
        await close_host(host)
