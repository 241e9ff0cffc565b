"""The state DB's one connection on its own thread: open (with the migrations) and close, queries and
transactions run there, consumers of the event log told of each commit, and a full disk told apart."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from mediasyncd.errors import StateDiskFull, StateUnavailable
from mediasyncd.state.connection import migrate, open_connection

if TYPE_CHECKING:
    from mediasyncd.state.catalog import Catalog

P = ParamSpec("P")
T = TypeVar("T")
C = ParamSpec("C")


class StateThread:
    """The state DB's one connection, on its own thread: open (with the migrations) and close, queries
    and transactions run there, and consumers of the event log are told of each commit that wrote."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-db")
        self._conn: sqlite3.Connection | None = None
        self._followers: set[asyncio.Event] = set()
        self._catalog: Catalog | None = None

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        await self._run(self._open)

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._close)
        self._executor.shutdown(wait=True)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = open_connection(self.path)
            migrate(conn)
        except sqlite3.Error as exc:
            raise StateUnavailable(
                f"cannot open the state DB {self.path}: {exc}{_space_hint(self.path)}"
            ) from None
        self._conn = conn

    def _close(self) -> None:
        assert self._conn is not None
        self._conn.close()
        self._conn = None

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: _stays_here(fn(*args, **kwargs)))

    async def catalog(
        self, method: Callable[Concatenate[Catalog, C], T], *args: C.args, **kwargs: C.kwargs
    ) -> T:
        """Run a method of the media pipeline's `Catalog` on the store's connection and thread."""

        def call() -> T:
            if self._catalog is None:
                # Imported here: the catalog and its search (~7 ms of imports) serve the media pipeline
                # and the library's views; a `sync --once` with the pipeline off never needs them.
                from mediasyncd.state.catalog import Catalog

                self._catalog = Catalog(self.conn)
            return method(self._catalog, *args, **kwargs)

        return await self._run(call)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run the query `fn` on the store's thread: for the state package's own modules only (its
        typed ledgers, e.g. `state.purge`); nothing outside the package writes SQL."""
        return await self._run(lambda: fn(self.conn))

    async def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in one transaction on the store's thread (for the state package's own modules only);
        consumers of the log are told of what it wrote."""
        return await self._write(fn)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in one transaction on the store's thread; consumers are told of new events."""
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._in_tx, fn)
        future.add_done_callback(lambda _: self._wake_followers())  # even when the caller is cancelled
        return await future

    def _wake_followers(self) -> None:
        for follower in self._followers:
            follower.set()

    def follow(self) -> asyncio.Event:
        """An event of the caller's own, set after every commit that may have written events."""
        follower = asyncio.Event()
        self._followers.add(follower)
        return follower

    def unfollow(self, follower: asyncio.Event) -> None:
        self._followers.discard(follower)

    def _in_tx(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        c = self.conn
        try:
            c.execute("BEGIN IMMEDIATE")
            result = _stays_here(fn(c))
            c.execute("COMMIT")
        except BaseException as exc:
            # SQLite may have rolled back already (a COMMIT that met a full disk): a second ROLLBACK would
            # raise "no transaction is active" and hide the error that matters.
            if c.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    c.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and _disk_full(exc, self.path):
                raise StateDiskFull(
                    f"state DB disk full ({self.path.parent}): {exc}; work waits until there is space"
                ) from None
            raise
        return result

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("state DB is not open")
        return self._conn

    def _tx(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> None:
        def run(c: sqlite3.Connection) -> None:
            for sql, params in statements:
                c.execute(sql, params)

        self._in_tx(run)


def _stays_here(result: T) -> T:
    """Refuse a cursor as a result: handed to the event loop's thread, it would be reset and freed
    there, beside this thread's use of the same cached statement (scheduled purges of many remotes at
    once failed with "bad parameter or other API misuse")."""
    if isinstance(result, sqlite3.Cursor):
        result.close()
        raise TypeError("a sqlite3.Cursor must not leave the state DB's thread: return rows, not the cursor")
    return result


def _disk_full(exc: sqlite3.OperationalError, path: Path) -> bool:
    """SQLITE_FULL, or an I/O error on a filesystem with (almost) no space left."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == sqlite3.SQLITE_FULL or "disk is full" in str(exc):
        return True
    return code == sqlite3.SQLITE_IOERR and _free(path) < FULL_BELOW


def _space_hint(path: Path) -> str:
    free = _free(path)
    return f" (its filesystem has {free} bytes free: is the disk full?)" if free < FULL_BELOW else ""


def _free(path: Path) -> int:
    try:
        return shutil.disk_usage(path.parent).free
    except OSError:
        return 1 << 62


FULL_BELOW = 1 << 20  # free bytes under which an SQLite I/O error is taken for a full disk
