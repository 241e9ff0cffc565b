"""`mediasyncd events status|retry|replay`: usage errors are exit 2 with the reason, a missing state DB
exit 1, and a configured sink that never ran shows as new."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from mediasyncd.state import Store
from tests.helpers import MEDIASYNCD


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MEDIASYNCD, "events", *args, "--config", str(config)], capture_output=True, text=True, timeout=60
    )


def test_sink_actions_usage_and_status(tmp_path: Path) -> None:
    """retry/replay name their missing or unknown sink (exit 2); no state DB is exit 1; then status
    lists the configured sink as new, with no daemon running."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[daemon]\nlibrary = "{tmp_path}"\nstate_dir = "{tmp_path / "state"}"\n\n'
        '[[sinks]]\nname = "db"\ntype = "postgresql"\ndsn = "postgresql://u@127.0.0.1:9/x"\n'
    )
    r = cli(config, "retry")
    assert r.returncode == 2 and "needs --sink NAME" in r.stderr
    r = cli(config, "retry", "--sink", "nope")
    assert r.returncode == 2 and "no sink 'nope'" in r.stderr and "db" in r.stderr
    r = cli(config, "replay", "--sink", "db")
    assert r.returncode == 2 and "--since ID or --all" in r.stderr
    r = cli(config, "status")
    assert r.returncode == 1 and "no state DB" in r.stderr

    async def make_db() -> None:
        store = Store(tmp_path / "state" / "state.db")
        await store.open()
        await store.close()

    asyncio.run(make_db())
    r = cli(config, "status", "--json")
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["daemon_running"] is False
    assert shown["sinks"][0]["name"] == "db" and shown["sinks"][0]["state"] == "new"
    assert "postgresql://" not in r.stdout
    r = cli(config, "retry", "--sink", "db")
    assert r.returncode == 0 and "0 parked event(s) re-queued" in r.stdout
    plain = cli(config, "status")
    assert plain.returncode == 0 and plain.stdout.startswith("db ")
