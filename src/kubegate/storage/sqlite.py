"""The embedded SQLite backend: one file, one writer, a change log that watches resume from.

All SQL runs synchronously on the event-loop thread: each statement takes microseconds, and a single
thread gives us the single writer for free. Transactions never span an `await`.
"""
from __future__ import annotations

import asyncio
import heapq
import logging
import secrets
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

from .interface import (
    KV,
    CompactedError,
    ConflictError,
    Event,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    LeaseNotFoundError,
    Progress,
    RangeResult,
    StoreClosedError,
    prefix_end,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

_PUT, _DELETE = 0, 1

# kv is a rowid table: in a WITHOUT ROWID table a row of more than ~1,000 bytes (most objects, a
# pod with its service-account volume already) spills into overflow pages, which made every write
# ~40% dearer. Data directories made with the older layout are converted when opened (_migrate).
_KV_TABLE = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY, create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL,
    lease INTEGER NOT NULL, value BLOB NOT NULL
);"""
_SCHEMA = _KV_TABLE + """
CREATE INDEX IF NOT EXISTS kv_lease ON kv(lease) WHERE lease != 0;
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER PRIMARY KEY, key TEXT NOT NULL, type INTEGER NOT NULL,
    value BLOB, create_rev INTEGER, lease INTEGER,
    prev_value BLOB, prev_create_rev INTEGER, prev_mod_rev INTEGER, prev_lease INTEGER,
    ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta VALUES ('rev', 0), ('compact_rev', 0);
CREATE TABLE IF NOT EXISTS leases (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL, expires REAL NOT NULL);
"""

_LOG_COLS = "rev, key, type, value, create_rev, lease, prev_value, prev_create_rev, prev_mod_rev, prev_lease"


def compaction_target(current_rev: int, compact_rev: int, keep_revisions: int, last_rev_before_window: int) -> int:
    """The revision to compact up to: history is kept for the last `keep_revisions` revisions or for
    the time window, whichever keeps more. `last_rev_before_window` is the newest revision written
    before the window opened (0 if none). Returns `compact_rev` when there is nothing to do."""
    return max(compact_rev, min(current_rev - keep_revisions, last_rev_before_window))


def _bounds(prefix: str, start_after: str | None) -> tuple[str, list[str | int]]:
    """SQL condition and parameters for keys under `prefix` strictly after `start_after`."""
    if start_after is not None and start_after >= prefix:
        cond, params = "key > ?", [start_after]
    else:
        cond, params = "key >= ?", [prefix]
    end = prefix_end(prefix)
    if end is not None:
        cond += " AND key < ?"
        params.append(end)
    return cond, params


def _kv(row: tuple[str, int, int, int, bytes]) -> KV:
    return KV(row[0], row[4], row[1], row[2], row[3])


def _event(row: tuple[Any, ...]) -> Event:
    rev, key, typ, value, create_rev, lease, pvalue, pcreate, pmod, please = row
    prev = KV(key, pvalue, pcreate, pmod, please) if pmod is not None else None
    if typ == _PUT:
        return Event("PUT", KV(key, value, create_rev, rev, lease), prev)
    return Event("DELETE", KV(key, b"", 0, rev, 0), prev)


def _migrate(db: sqlite3.Connection) -> None:
    """Converts a WITHOUT ROWID kv table (the first layout) to the rowid one, in one transaction."""
    row = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'kv'").fetchone()
    if row is None or "WITHOUT ROWID" not in row[0].upper():
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("DROP INDEX IF EXISTS kv_lease")
        db.execute("ALTER TABLE kv RENAME TO kv_without_rowid")
        db.execute(_KV_TABLE)
        db.execute("INSERT INTO kv SELECT key, create_rev, mod_rev, lease, value FROM kv_without_rowid ORDER BY key")
        db.execute("DROP TABLE kv_without_rowid")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


class _Txn:
    """Writes inside one SQLite transaction; every change takes the next revision."""

    def __init__(self, db: sqlite3.Connection, rev: int, now: float) -> None:
        self.db = db
        self.rev = rev
        self.now = now
        self.events: list[Event] = []

    def current(self, key: str) -> KV | None:
        row = self.db.execute(
            "SELECT key, create_rev, mod_rev, lease, value FROM kv WHERE key = ?", (key,)
        ).fetchone()
        return _kv(row) if row else None

    def require_lease(self, lease: int) -> None:
        if lease and self.db.execute("SELECT 1 FROM leases WHERE id = ?", (lease,)).fetchone() is None:
            raise LeaseNotFoundError(lease)

    def put(self, key: str, value: bytes, lease: int, prev: KV | None) -> KV:
        self.rev += 1
        kv = KV(key, value, prev.create_revision if prev else self.rev, self.rev, lease)
        self.db.execute(
            "INSERT OR REPLACE INTO kv (key, create_rev, mod_rev, lease, value) VALUES (?, ?, ?, ?, ?)",
            (key, kv.create_revision, kv.mod_revision, lease, value),
        )
        self._log(_PUT, kv, prev)
        self.events.append(Event("PUT", kv, prev))
        return kv

    def delete(self, prev: KV) -> KV:
        self.rev += 1
        self.db.execute("DELETE FROM kv WHERE key = ?", (prev.key,))
        tomb = KV(prev.key, b"", 0, self.rev, 0)
        self._log(_DELETE, tomb, prev)
        self.events.append(Event("DELETE", tomb, prev))
        # upstream decodes a deleted object at the delete's revision
        return KV(prev.key, prev.value, prev.create_revision, self.rev, prev.lease)

    def _log(self, typ: int, kv: KV, prev: KV | None) -> None:
        self.db.execute(
            f"INSERT INTO log ({_LOG_COLS}, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                kv.mod_revision, kv.key, typ,
                kv.value if typ == _PUT else None, kv.create_revision, kv.lease,
                prev.value if prev else None, prev.create_revision if prev else None,
                prev.mod_revision if prev else None, prev.lease if prev else None,
                self.now,
            ),
        )


class SQLiteWatch:
    """A watch on one prefix. Live events are pushed by the store after each commit; a watcher that
    starts in the past (or falls too far behind) catches up from the in-memory ring, then the log."""

    def __init__(self, store: SQLiteStore, prefix: str, start_revision: int) -> None:
        self._store = store
        self._prefix = prefix
        self._next = start_revision    # next revision to fetch while catching up
        self._buffer: deque[Event] = deque()
        self._live = False
        self._progress = False
        self._closed = False
        self._wake = asyncio.Event()

    def __aiter__(self) -> SQLiteWatch:
        return self

    async def __anext__(self) -> Event | Progress:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._buffer:
                return self._buffer.popleft()
            store = self._store
            if store.closed:
                raise StoreClosedError()
            if not self._live:
                try:
                    self._catch_up()
                except CompactedError:
                    self.close()
                    raise
                continue
            if self._progress:
                self._progress = False
                return Progress(store.revision)
            self._wake.clear()
            await self._wake.wait()

    def request_progress(self) -> None:
        self._progress = True
        self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._store._watchers.discard(self)
        self._wake.set()

    def _offer(self, ev: Event) -> None:
        if not self._live or not ev.kv.key.startswith(self._prefix):
            return
        self._buffer.append(ev)
        if len(self._buffer) > self._store._watch_buffer:
            # a slow reader: drop the backlog and re-read it from the ring/log when it asks again
            self._next = self._buffer[0].revision
            self._buffer.clear()
            self._live = False
        self._wake.set()

    def _catch_up(self) -> None:
        store = self._store
        if self._next <= store.compact_revision:
            raise CompactedError(store.compact_revision)
        ring = store._ring
        first = ring[0].revision if ring else store.revision + 1
        if self._next >= first:
            self._buffer.extend(
                ev for ev in islice(ring, self._next - first, None) if ev.kv.key.startswith(self._prefix)
            )
            self._next = store.revision + 1
            self._live = True
            return
        batch = store._log_events(self._prefix, self._next, first)
        self._buffer.extend(batch)
        self._next = batch[-1].revision + 1 if len(batch) == store._log_batch else first


class SQLiteStore:
    def __init__(
        self,
        path: str,
        *,
        keep_revisions: int = 10_000,
        keep_seconds: float = 300.0,
        compact_interval: float = 60.0,
        compact_batch: int = 1000,
        ring_size: int = 4096,
        watch_buffer: int = 10_000,
        lease_check_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        db = sqlite3.connect(path, isolation_level=None)
        if db.execute("PRAGMA page_count").fetchone()[0] == 0:
            # only settable before the first table exists; lets a shrunken history give pages back
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        db.execute("PRAGMA journal_mode = WAL")
        # WAL + NORMAL: a committed write is in the OS page cache, so it survives the process dying
        db.execute("PRAGMA synchronous = NORMAL")
        _migrate(db)
        db.executescript(_SCHEMA)
        meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
        self._db = db
        self._rev: int = meta["rev"]
        self._compact_rev: int = meta["compact_rev"]
        self._keep_revisions = keep_revisions
        self._keep_seconds = keep_seconds
        self._compact_interval = compact_interval
        self._compact_batch = compact_batch
        self._log_batch = 1000
        self._watch_buffer = max(watch_buffer, ring_size)
        self._lease_check_interval = lease_check_interval
        self._clock = clock
        self._ring: deque[Event] = deque(maxlen=ring_size)
        self._watchers: set[SQLiteWatch] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    # -- state ------------------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        return self._rev

    @property
    def compact_revision(self) -> int:
        return self._compact_rev

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError()

    def _read_revision(self, revision: int) -> int:
        self._check_open()
        if revision == 0 or revision == self._rev:
            return self._rev
        if revision > self._rev:
            raise FutureRevisionError(revision, self._rev)
        if revision < self._compact_rev:
            raise CompactedError(self._compact_rev)
        return revision

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        self._check_open()
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._compact_loop()), asyncio.create_task(self._lease_loop())]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for w in list(self._watchers):
            w._wake.set()
        self._watchers.clear()
        self._db.close()

    # -- reads ------------------------------------------------------------------------------------

    async def current_revision(self) -> int:
        self._check_open()
        return self._rev

    async def get(self, key: str, revision: int = 0) -> KV | None:
        rev = self._read_revision(revision)
        if rev < self._rev:
            row = self._db.execute(
                "SELECT prev_value, prev_create_rev, prev_mod_rev, prev_lease FROM log "
                "WHERE rev > ? AND key = ? ORDER BY rev LIMIT 1",
                (rev, key),
            ).fetchone()
            if row is not None:
                return KV(key, row[0], row[1], row[2], row[3]) if row[2] is not None else None
        row = self._db.execute(
            "SELECT key, create_rev, mod_rev, lease, value FROM kv WHERE key = ?", (key,)
        ).fetchone()
        return _kv(row) if row else None

    async def range(
        self, prefix: str, *, start_after: str | None = None, limit: int = 0, revision: int = 0
    ) -> RangeResult:
        rev = self._read_revision(revision)
        cond, params = _bounds(prefix, start_after)
        cursor = self._db.execute(
            f"SELECT key, create_rev, mod_rev, lease, value FROM kv WHERE {cond} ORDER BY key", params
        )
        current: Iterator[KV] = map(_kv, cursor)
        extra = 0
        if rev < self._rev:
            current, extra = self._at_revision(current, rev, cond, params)
        kvs = list(islice(current, limit + 1)) if limit > 0 else list(current)
        cursor.close()  # a half-read cursor would pin a WAL snapshot and block checkpoints
        more = limit > 0 and len(kvs) > limit
        if more:
            kvs.pop()
            total = self._db.execute(f"SELECT COUNT(*) FROM kv WHERE {cond}", params).fetchone()[0] + extra
        else:
            total = len(kvs)
        return RangeResult(kvs, rev, more, total)

    def _at_revision(self, current: Iterable[KV], rev: int, cond: str, params: list[str | int]) -> tuple[Iterator[KV], int]:
        """Rewind a current-table scan to `rev` using the log rows written after it. Returns the
        merged scan and how many more keys existed at `rev` than exist now in this range."""
        then: dict[str, KV | None] = {}
        exists_now: dict[str, bool] = {}
        for key, typ, pvalue, pcreate, pmod, please in self._db.execute(
            "SELECT key, type, prev_value, prev_create_rev, prev_mod_rev, prev_lease FROM log "
            f"WHERE rev > ? AND {cond} ORDER BY rev",
            [rev, *params],
        ):
            if key not in then:
                then[key] = KV(key, pvalue, pcreate, pmod, please) if pmod is not None else None
            exists_now[key] = typ == _PUT
        extra = sum(kv is not None for kv in then.values()) - sum(exists_now.values())
        old = sorted((kv for kv in then.values() if kv is not None), key=lambda kv: kv.key)
        unchanged = (kv for kv in current if kv.key not in then)
        return heapq.merge(unchanged, old, key=lambda kv: kv.key), extra

    def _log_events(self, prefix: str, from_rev: int, before_rev: int) -> list[Event]:
        cond, params = _bounds(prefix, None)
        rows = self._db.execute(
            f"SELECT {_LOG_COLS} FROM log WHERE rev >= ? AND rev < ? AND {cond} ORDER BY rev LIMIT ?",
            [from_rev, before_rev, *params, self._log_batch],
        ).fetchall()
        return [_event(r) for r in rows]

    # -- writes -----------------------------------------------------------------------------------

    def _write(self, body: Callable[[_Txn], T]) -> T:
        self._check_open()
        db = self._db
        txn = _Txn(db, self._rev, self._clock())
        db.execute("BEGIN IMMEDIATE")
        try:
            result = body(txn)
            if txn.events:
                db.execute("UPDATE meta SET value = ? WHERE name = 'rev'", (txn.rev,))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if txn.events:
            self._rev = txn.rev
            self._publish(txn.events)
        return result

    def _publish(self, events: list[Event]) -> None:
        for ev in events:
            self._ring.append(ev)
            for w in self._watchers:
                w._offer(ev)

    async def create(self, key: str, value: bytes, lease: int = 0) -> KV:
        def body(t: _Txn) -> KV:
            if t.current(key) is not None:
                raise KeyExistsError(key)
            t.require_lease(lease)
            return t.put(key, value, lease, None)

        return self._write(body)

    async def update(
        self, key: str, value: bytes, expected_mod_revision: int | None, *, lease: int | None = None
    ) -> KV:
        """Compare-and-swap put. `lease=None` keeps the key's lease (etcd's IgnoreLease)."""

        def body(t: _Txn) -> KV:
            cur = t.current(key)
            if cur is None:
                raise KeyNotFoundError(key)
            if expected_mod_revision is not None and cur.mod_revision != expected_mod_revision:
                raise ConflictError(key, cur)
            if lease is not None:
                t.require_lease(lease)
            return t.put(key, value, cur.lease if lease is None else lease, cur)

        return self._write(body)

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> KV:
        """Returns the deleted value with mod_revision set to the delete's revision."""

        def body(t: _Txn) -> KV:
            cur = t.current(key)
            if cur is None:
                raise KeyNotFoundError(key)
            if expected_mod_revision is not None and cur.mod_revision != expected_mod_revision:
                raise ConflictError(key, cur)
            return t.delete(cur)

        return self._write(body)

    async def watch(self, prefix: str, start_revision: int = 0) -> SQLiteWatch:
        """Events with revision >= start_revision (0: only future events)."""
        self._check_open()
        start = start_revision or self._rev + 1
        if start <= self._compact_rev:
            raise CompactedError(self._compact_rev)
        w = SQLiteWatch(self, prefix, start)
        self._watchers.add(w)
        return w

    # -- leases -----------------------------------------------------------------------------------

    async def grant_lease(self, ttl: int) -> int:
        if ttl < 1:
            raise ValueError("lease TTL must be at least 1 second")
        lease = secrets.randbits(62) + 1

        def body(t: _Txn) -> int:
            t.db.execute("INSERT INTO leases (id, ttl, expires) VALUES (?, ?, ?)", (lease, ttl, t.now + ttl))
            return lease

        return self._write(body)

    async def keepalive(self, lease: int) -> int:
        """Restarts the lease's TTL and returns it."""

        def body(t: _Txn) -> int:
            row = t.db.execute("SELECT ttl FROM leases WHERE id = ?", (lease,)).fetchone()
            if row is None:
                raise LeaseNotFoundError(lease)
            t.db.execute("UPDATE leases SET expires = ? WHERE id = ?", (t.now + row[0], lease))
            return int(row[0])

        return self._write(body)

    async def revoke_lease(self, lease: int) -> None:
        self._revoke(lease)

    def _revoke(self, lease: int) -> None:
        def body(t: _Txn) -> None:
            if t.db.execute("DELETE FROM leases WHERE id = ?", (lease,)).rowcount == 0:
                raise LeaseNotFoundError(lease)
            rows = t.db.execute(
                "SELECT key, create_rev, mod_rev, lease, value FROM kv WHERE lease = ? ORDER BY key", (lease,)
            ).fetchall()
            for row in rows:
                t.delete(_kv(row))

        self._write(body)

    def expire_leases(self) -> float | None:
        """Revokes every lease past its expiry; returns the next expiry time, if any."""
        now = self._clock()
        for (lease,) in self._db.execute("SELECT id FROM leases WHERE expires <= ?", (now,)).fetchall():
            self._revoke(lease)
        nxt = self._db.execute("SELECT MIN(expires) FROM leases").fetchone()[0]
        return float(nxt) if nxt is not None else None

    async def _lease_loop(self) -> None:
        while not self._closed:
            try:
                nxt = self.expire_leases()
            except (sqlite3.Error, StoreClosedError):
                log.exception("lease expiry failed")
                nxt = None
            wait = self._lease_check_interval if nxt is None else nxt - self._clock()
            await asyncio.sleep(min(max(wait, 0.01), self._lease_check_interval))

    # -- compaction -------------------------------------------------------------------------------

    async def compact(self, revision: int) -> None:
        """Forget history up to and including `revision` (reads at `revision` itself still work)."""
        self._check_open()
        if revision > self._rev:
            raise FutureRevisionError(revision, self._rev)
        if revision <= self._compact_rev:
            raise CompactedError(self._compact_rev)

        def body(t: _Txn) -> None:
            t.db.execute("UPDATE meta SET value = ? WHERE name = 'compact_rev'", (revision,))

        self._write(body)
        self._compact_rev = revision
        await self._drop_log(revision)

    async def _drop_log(self, upto: int) -> None:
        """Delete log rows in small transactions, yielding to the loop between them."""
        lo = self._db.execute("SELECT MIN(rev) FROM log").fetchone()[0]
        while lo is not None and lo <= upto and not self._closed:
            hi = min(lo + self._compact_batch - 1, upto)
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM log WHERE rev BETWEEN ? AND ?", (lo, hi))
            self._db.execute("COMMIT")
            lo = hi + 1
            await asyncio.sleep(0)

    def _last_rev_before(self, cutoff: float, lo: int, hi: int) -> int:
        """Newest revision in [lo, hi] logged before `cutoff` (lo - 1 if none). The log holds one
        row per revision above the compact revision and timestamps grow with revisions, so bisect."""
        found = lo - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            row = self._db.execute("SELECT ts FROM log WHERE rev = ?", (mid,)).fetchone()
            if row is not None and row[0] < cutoff:
                found, lo = mid, mid + 1
            else:
                hi = mid - 1
        return found

    async def compact_history(self) -> int:
        """One retention pass: compact to the configured window, then keep the files small.
        Returns the compact revision afterwards."""
        self._check_open()
        by_count = self._rev - self._keep_revisions
        if by_count > self._compact_rev:
            by_time = self._last_rev_before(self._clock() - self._keep_seconds, self._compact_rev + 1, by_count)
            target = compaction_target(self._rev, self._compact_rev, self._keep_revisions, by_time)
            if target > self._compact_rev:
                await self.compact(target)
        if not self._closed:
            self._checkpoint()
        return self._compact_rev

    def _checkpoint(self) -> None:
        db = self._db
        free, pages = db.execute("PRAGMA freelist_count").fetchone()[0], db.execute("PRAGMA page_count").fetchone()[0]
        if free * 2 > pages:
            # most of the file is free after a large compaction: give it back (steady state reuses pages)
            db.execute("PRAGMA incremental_vacuum").fetchall()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    async def _compact_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(self._compact_interval)
            try:
                await self.compact_history()
            except (sqlite3.Error, StoreClosedError):
                # keep the loop alive: the next pass retries from wherever this one stopped
                log.exception("storage compaction failed")
