"""A purge run with its own connection to the source: open, purge one remote, close (CLI and scheduler
alike).

A `--local-only` run applies only the library's local retention and opens no connection.
"""

from __future__ import annotations

from mediasyncd.config import Config, RemoteConfig
from mediasyncd.errors import RemoteError
from mediasyncd.purge.runner import RunOptions, RunReport, purge_remote
from mediasyncd.sources import open_source
from mediasyncd.state.purge import PurgeLedger


async def purge_once(
    config: Config, remote: RemoteConfig, ledger: PurgeLedger, options: RunOptions
) -> RunReport:
    """Connect to `remote` and purge it (with the library's local retention first); a failure to
    connect is recorded as a failed run. `options.local_only` runs the local retention alone."""
    library = config.daemon.library
    if options.local_only:
        return await purge_remote(remote, None, ledger, library, options)
    try:
        source = await open_source(remote, config.daemon.state_dir)
    except RemoteError as exc:
        if options.record:
            run_id = await ledger.start_run(remote.name, options.source, options.dry_run)
            await ledger.finish_run(run_id, error=str(exc))
        raise
    try:
        return await purge_remote(remote, source, ledger, library, options)
    finally:
        await source.close()
