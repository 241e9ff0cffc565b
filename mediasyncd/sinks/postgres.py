"""The PostgreSQL sink (asyncpg): creates and migrates its schema, then one transaction per batch — the
batch COPYed into staging tables, `mediasyncd_events` inserted from there (a re-delivered id changes
nothing) and `mediasyncd_files` upserted (one row per file key per batch).

SQLSTATE classes 22 (data exception) and 23 (integrity) reject the batch (the courier finds the poison
event); every other failure is an outage: the connection is dropped and made again on the next try.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from mediasyncd.config_sinks import SinkConfig
from mediasyncd.sinks.base import Envelope, EventRejected, SinkUnavailable
from mediasyncd.sinks.pg_rows import (
    EVENT_COLUMNS,
    FILE_COLUMNS,
    MIGRATIONS,
    STAGING,
    VERSION_TABLE,
    event_row,
    file_row,
    insert_events_sql,
    merge_file_rows,
    upsert_files_sql,
)

CONNECT_TIMEOUT = 15.0
COMMAND_TIMEOUT = 120.0
REJECTED_CLASSES = ("22", "23")


class PostgresSink:
    def __init__(self, config: SinkConfig) -> None:
        if config.dsn is None:
            raise ValueError("a postgresql sink needs a dsn")
        self.dsn = config.dsn
        self.schema = config.schema
        self.conn: asyncpg.Connection | None = None
        self._insert = insert_events_sql(self.schema)
        self._upsert = upsert_files_sql(self.schema)

    async def open(self) -> None:
        await self._connection()

    async def deliver(self, events: Sequence[Envelope]) -> None:
        conn = await self._connection()
        events_rows = [event_row(e) for e in events]
        file_rows = [row for row in map(file_row, events) if row is not None]
        try:
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "mediasyncd_batch_events", records=events_rows, columns=EVENT_COLUMNS
                )
                await conn.execute(self._insert)
                if file_rows:
                    await conn.copy_records_to_table(
                        "mediasyncd_batch_files", records=merge_file_rows(file_rows), columns=FILE_COLUMNS
                    )
                    await conn.execute(self._upsert)
        except asyncpg.PostgresError as exc:
            state = str(getattr(exc, "sqlstate", "") or "")
            if state[:2] in REJECTED_CLASSES:
                raise EventRejected(f"PostgreSQL refused the data ({state}): {exc}") from None
            await self._drop()
            raise SinkUnavailable(f"PostgreSQL error ({state}): {exc}") from None
        except (OSError, asyncpg.InterfaceError, TimeoutError) as exc:
            await self._drop()
            raise SinkUnavailable(f"PostgreSQL connection lost: {type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        await self._drop()

    async def _connection(self) -> asyncpg.Connection:
        if self.conn is not None and not self.conn.is_closed():
            return self.conn
        try:
            conn = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT, command_timeout=COMMAND_TIMEOUT)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise SinkUnavailable(f"cannot connect to PostgreSQL: {type(exc).__name__}: {exc}") from None
        try:
            await self._migrate(conn)
            await conn.execute(STAGING)
        except BaseException:
            conn.terminate()
            raise
        self.conn = conn
        return conn

    async def _migrate(self, conn: asyncpg.Connection) -> None:
        """Create the schema's tables, or bring them up to date, once per connection; concurrent daemons
        wait for each other (an advisory lock per schema)."""
        s = self.schema
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"mediasyncd:{s}")
                exists = await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", s)
                if not exists:
                    await conn.execute(f'CREATE SCHEMA "{s}"')
                await conn.execute(VERSION_TABLE.format(s=s))
                version = await conn.fetchval(f"SELECT max(version) FROM {s}.mediasyncd_schema") or 0
                for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                    await conn.execute(script.format(s=s))
                    await conn.execute(f"INSERT INTO {s}.mediasyncd_schema (version) VALUES ($1)", number)
        except asyncpg.PostgresError as exc:
            raise SinkUnavailable(f"cannot create or migrate the tables in schema {s!r}: {exc}") from None

    async def _drop(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=5)
            except Exception:
                conn.terminate()
