from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediasyncd.logging import configure_logging
from tests.sshd import SshServer, start_sshd
from tests.sshd_fixtures import sshd, sshd_sftp_only  # noqa: F401

SFTP_SERVER = "/usr/lib/openssh/sftp-server"


@pytest.fixture(autouse=True)
def _plain_logs() -> None:
    """Logs as JSON lines to stdout, as under systemd, so tests can read them with capsys."""
    configure_logging("info", stream=sys.stdout, json=True)


@pytest.fixture
def sshd_logged(tmp_path: Path) -> Iterator[SshServer]:
    """A real sshd whose SFTP server logs every open and close (with bytes read) to `sftp.log`."""
    home = tmp_path / "sshd-logged"
    home.mkdir()
    wrapper = home / "sftp-logged"
    wrapper.write_text(f"#!/bin/sh\nexec {SFTP_SERVER} -e -l INFO 2>>{home / 'sftp.log'}\n")
    wrapper.chmod(0o755)
    with start_sshd(home, extra_config=f"Subsystem sftp {wrapper}") as server:
        yield server
