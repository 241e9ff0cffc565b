"""A Puller's parts for tests that drive one pass by hand: the config of one remote, its state DB and
library, and the Puller itself with an opener of the test's choosing."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mediasyncd.config import Config, RemoteConfig, load_config
from mediasyncd.progress import RemoteStatus
from mediasyncd.state import Store
from mediasyncd.transfer.budget import SpaceGate
from mediasyncd.transfer.landing import Library
from mediasyncd.transfer.puller import Opener, Puller
from tests.helpers import write_config


@dataclass
class Parts:
    config: Config
    remote: RemoteConfig
    store: Store
    library: Library

    def puller(self, opener: Opener, pool: ThreadPoolExecutor) -> Puller:
        c, library = self.config, self.library
        return Puller(
            self.remote, c.transfer, library=library, store=self.store, status=RemoteStatus(self.remote.name),
            state_dir=c.daemon.state_dir, executor=pool, landing_lock=asyncio.Lock(),
            space=SpaceGate(library.free_bytes, 0), opener=opener,
        )  # fmt: skip


async def puller_parts(
    tmp_path: Path, table: dict[str, Any], transfer: dict[str, Any] | None = None
) -> Parts:
    """One remote (`table`), a new library and an open state DB under `tmp_path`; close `store` after."""
    config = load_config(
        write_config(tmp_path / "c.toml", tmp_path / "lib", tmp_path / "state", [table], transfer=transfer)
    )
    config.daemon.library.mkdir()
    store = Store(config.daemon.db_path)
    await store.open()
    library = Library(config.daemon.library)
    library.check_available()
    return Parts(config, config.remotes[0], store, library)
