"""pytest fixtures for a real OpenSSH sshd; ``tests/conftest.py`` imports them by name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sshd import SshServer, start_sshd


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshServer]:
    """A real sshd on a free loopback port; keys, config and log in ``tmp_path / "sshd"``."""
    with start_sshd(tmp_path / "sshd") as server:
        yield server


@pytest.fixture
def sshd_sftp_only(tmp_path: Path) -> Iterator[SshServer]:
    """A real sshd that serves SFTP only (``ForceCommand internal-sftp``): no shell, no exec."""
    with start_sshd(tmp_path / "sshd-sftp-only", sftp_only=True) as server:
        yield server
