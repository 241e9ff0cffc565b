"""Fixtures of the sink tests: one real PostgreSQL for the session, a fresh schema per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.postgres import PgServer, find_bin

_schemas = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bin_dir = find_bin()
    if bin_dir is None:
        pytest.fail("PostgreSQL server binaries are missing: run scripts/setup --dev")
    server = PgServer(bin_dir)
    server.init()
    server.start()
    yield server
    server.cleanup()


@dataclass
class Pg:
    server: PgServer
    schema: str

    @property
    def dsn(self) -> str:
        return self.server.dsn

    def query(self, sql: str) -> list[list[str]]:
        out = self.server.psql(f"SET search_path TO {self.schema}; {sql}")
        return [line.split("|") for line in out.splitlines() if line and line != "SET"]


@pytest.fixture
def pg(pg_server: PgServer) -> Iterator[Pg]:
    """A schema of its own in the session's server (which is running when the test starts)."""
    if pg_server.proc is None or pg_server.proc.poll() is not None:
        pg_server.start()
    yield Pg(pg_server, f"t{next(_schemas)}")
    if pg_server.proc is None or pg_server.proc.poll() is not None:
        pg_server.start()
