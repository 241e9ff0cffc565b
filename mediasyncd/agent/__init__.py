"""The remote inotify agent: `mediasyncd_agent.py` is uploaded to a remote and run there, never imported by
the daemon (tests import it to check its pure parts). `script()` gives its bytes for the upload."""

from __future__ import annotations

from importlib.resources import files


def script() -> bytes:
    return files(__package__).joinpath("mediasyncd_agent.py").read_bytes()
