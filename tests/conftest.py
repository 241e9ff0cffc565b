from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediasyncd.logging import configure_logging
from tests.docker_engine import Engine, start_engine
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


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A real dockerd (started once per session, stopped at its end) with the two test images."""
    with start_engine(tmp_path_factory.mktemp("docker")) as engine:
        yield engine


@pytest.fixture(scope="session")
def docker_containers(docker_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One running container per test image ("busybox", "full"), and "python" (the full image with the
    host's python3 bound in), each with the session's temp base dir bound at the same path, so a test's
    files are the container's files."""
    base = tmp_path_factory.getbasetemp()
    made = {
        image: docker_engine.run(f"mediasyncd-test/{image}:1", f"mst-{image}-{os.getpid()}", [base])
        for image in ("busybox", "full")
    }
    made["python"] = docker_engine.run(
        "mediasyncd-test/full:1", f"mst-python-{os.getpid()}", [base], python=True
    )
    return made
