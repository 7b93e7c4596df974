"""The SQLite store: revisions, CAS, ranges, watch, compaction, leases, durability."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from kubegate.storage import (
    KV,
    CompactedError,
    ConflictError,
    Event,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    LeaseNotFoundError,
    Progress,
    SQLiteStore,
    StoreClosedError,
)
from kubegate.storage.interface import prefix_end
from kubegate.storage.sqlite import compaction_target

T = TypeVar("T")
P = "/registry/pods/"


def run(tmp_path: Path, body: Callable[[SQLiteStore], Awaitable[T]], **opts: float) -> T:
    async def main() -> T:
        store = SQLiteStore(str(tmp_path / "state.db"), **opts)  # type: ignore[arg-type]
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


async def next_event(stream: object, timeout: float = 2.0) -> Event | Progress:
    return await asyncio.wait_for(stream.__anext__(), timeout)  # type: ignore[attr-defined]


def test_prefix_end() -> None:
    assert prefix_end("/registry/pods/") == "/registry/pods0"
    assert prefix_end("") is None


def test_revisions_increase_by_one_per_write(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> None:
        assert await s.current_revision() == 0
        a = await s.create(P + "ns/a", b"1")
        assert (a.create_revision, a.mod_revision) == (1, 1)
        b = await s.create(P + "ns/b", b"1")
        assert b.mod_revision == 2
        a2 = await s.update(P + "ns/a", b"2", 1)
        assert (a2.create_revision, a2.mod_revision, a2.value) == (1, 3, b"2")
        d = await s.delete(P + "ns/b")
        # the deleted value, stamped with the delete's revision (as upstream returns it)
        assert (d.value, d.create_revision, d.mod_revision) == (b"1", 2, 4)
        assert await s.current_revision() == 4
        assert await s.get(P + "ns/b") is None
        assert await s.get(P + "ns/a") == KV(P + "ns/a", b"2", 1, 3, 0)

    run(tmp_path, body)


def test_create_update_delete_errors(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> None:
        await s.create("/k", b"v")
        with pytest.raises(KeyExistsError):
            await s.create("/k", b"w")
        with pytest.raises(KeyNotFoundError):
            await s.update("/missing", b"v", None)
        with pytest.raises(KeyNotFoundError):
            await s.delete("/missing")
        with pytest.raises(ConflictError) as e:
            await s.update("/k", b"w", 99)
        assert e.value.current == KV("/k", b"v", 1, 1, 0)
        with pytest.raises(ConflictError):
            await s.delete("/k", 99)
        # failed writes do not consume revisions
        assert await s.current_revision() == 1
        assert (await s.update("/k", b"w", None)).mod_revision == 2
        assert (await s.delete("/k", 2)).mod_revision == 3

    run(tmp_path, body)


def test_range_limit_start_after_and_count(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> None:
        for ns in ("a", "b"):
            for i in range(5):
                await s.create(f"{P}{ns}/p{i}", f"{ns}{i}".encode())
        await s.create("/registry/podtemplates/a/x", b"other")
        full = await s.range(P)
        assert [kv.key for kv in full.kvs][:2] == [P + "a/p0", P + "a/p1"]
        assert (len(full.kvs), full.more, full.count, full.revision) == (10, False, 10, 11)
        page = await s.range(P, limit=3)
        assert [kv.key for kv in page.kvs] == [P + "a/p0", P + "a/p1", P + "a/p2"]
        assert (page.more, page.count) == (True, 10)
        page2 = await s.range(P, start_after=page.kvs[-1].key, limit=3)
        assert [kv.key for kv in page2.kvs] == [P + "a/p3", P + "a/p4", P + "b/p0"]
        assert page2.count == 7
        ns_b = await s.range(P + "b/")
        assert [kv.value for kv in ns_b.kvs] == [b"b0", b"b1", b"b2", b"b3", b"b4"]
        last = await s.range(P, start_after=P + "b/p3", limit=1)
        assert ([kv.key for kv in last.kvs], last.more) == ([P + "b/p4"], False)

    run(tmp_path, body)


def test_range_and_get_at_past_revision(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> None:
        await s.create(P + "a", b"a1")             # 1
        await s.create(P + "b", b"b1")             # 2
        await s.create(P + "c", b"c1")             # 3
        await s.update(P + "a", b"a2", None)       # 4
        await s.delete(P + "b")                    # 5
        await s.create(P + "d", b"d1")             # 6
        at3 = await s.range(P, revision=3)
        assert [(kv.key, kv.value, kv.mod_revision) for kv in at3.kvs] == [
            (P + "a", b"a1", 1), (P + "b", b"b1", 2), (P + "c", b"c1", 3)]
        assert (at3.revision, at3.count) == (3, 3)
        paged = await s.range(P, revision=3, limit=2)
        assert ([kv.key for kv in paged.kvs], paged.more, paged.count) == ([P + "a", P + "b"], True, 3)
        rest = await s.range(P, revision=3, start_after=P + "b", limit=2)
        assert ([kv.key for kv in rest.kvs], rest.more) == ([P + "c"], False)
        now = await s.range(P)
        assert [kv.key for kv in now.kvs] == [P + "a", P + "c", P + "d"]
        assert (await s.get(P + "a", revision=3)) == KV(P + "a", b"a1", 1, 1, 0)
        assert await s.get(P + "b", revision=4) == KV(P + "b", b"b1", 2, 2, 0)
        assert await s.get(P + "b", revision=5) is None
        assert await s.get(P + "d", revision=5) is None
        with pytest.raises(FutureRevisionError):
            await s.range(P, revision=7)
        await s.compact(4)
        assert [kv.key for kv in (await s.range(P, revision=4)).kvs] == [P + "a", P + "b", P + "c"]
        with pytest.raises(CompactedError) as e:
            await s.range(P, revision=3)
        assert e.value.compact_revision == 4

    run(tmp_path, body)


def test_watch_history_then_live_in_order(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> None:
        await s.create(P + "a", b"1")
        await s.create("/registry/secrets/x", b"s")
        await s.update(P + "a", b"2", None)
        w = await s.watch(P, 1)
        e1, e2 = await next_event(w), await next_event(w)
        assert isinstance(e1, Event) and isinstance(e2, Event)
        assert (e1.type, e1.revision, e1.prev_kv) == ("PUT", 1, None)
        assert (e2.type, e2.revision, e2.kv.value, e2.prev_kv) == ("PUT", 3, b"2", KV(P + "a", b"1", 1, 1, 0))
        await s.delete(P + "a")
        e3 = await next_event(w)
        assert isinstance(e3, Event)
        assert (e3.type, e3.revision, e3.kv.value) == ("DELETE", 4, b"")
        assert e3.prev_kv == KV(P + "a", b"2", 1, 3, 0)
        w.close()
        with pytest.raises(StopAsyncIteration):
            await next_event(w)

    run(tmp_path, body)


def test_watch_from_log_after_ring_and_reopen(tmp_path: Path) -> None:
    async def write(s: SQLiteStore) -> None:
        for i in range(30):
            await s.create(f"{P}k{i:02}", b"v")

    run(tmp_path, write, ring_size=4)

    async def read(s: SQLiteStore) -> list[int]:
        assert await s.current_revision() == 30       # reopen keeps the revision
        w = await s.watch(P, 5)
        revs = [(await next_event(w)).revision for _ in range(26)]
        await s.create(P + "live", b"v")
        revs.append((await next_event(w)).revision)
        return revs

    assert run(tmp_path, read, ring_size=4) == list(range(5, 32))


def test_watch_only_future_and_prefix_filter(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> None:
        await s.create(P + "old", b"v")
        w = await s.watch(P + "ns1/")
        await s.create(P + "ns2/x", b"v")
        await s.create(P + "ns1/y", b"v")
        ev = await next_event(w)
        assert isinstance(ev, Event) and (ev.kv.key, ev.revision) == (P + "ns1/y", 3)

    run(tmp_path, body)


def test_watch_progress_reports_caught_up_revision(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> None:
        w = await s.watch(P)
        await s.create("/registry/secrets/a", b"v")
        await s.create("/registry/secrets/b", b"v")
        w.request_progress()
        assert await next_event(w) == Progress(2)

    run(tmp_path, body)


def test_slow_watcher_catches_up_after_buffer_overflow(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> None:
        w = await s.watch(P, 1)
        await s.create(P + "first", b"v")
        assert (await next_event(w)).revision == 1
        for i in range(40):
            await s.create(f"{P}k{i:02}", b"v")
        assert [(await next_event(w)).revision for _ in range(40)] == list(range(2, 42))

    run(tmp_path, body, ring_size=8, watch_buffer=8)


def test_watch_after_compaction_raises(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> None:
        for i in range(5):
            await s.create(f"{P}k{i}", b"v")
        await s.compact(3)
        with pytest.raises(CompactedError) as e:
            await s.watch(P, 3)
        assert e.value.compact_revision == 3
        w = await s.watch(P, 4)
        assert (await next_event(w)).revision == 4
        with pytest.raises(CompactedError):
            await s.compact(2)

    run(tmp_path, body)


def test_lagging_watcher_gets_compacted(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> None:
        for i in range(10):
            await s.create(f"{P}k{i}", b"v")
        w = await s.watch(P, 2)
        await s.compact(5)
        with pytest.raises(CompactedError):
            await next_event(w)

    run(tmp_path, body, ring_size=2)


def test_compaction_target_keeps_whichever_is_more() -> None:
    # 20,000 revisions, last 10,000 kept by count; time window reaches further back -> keeps more
    assert compaction_target(20_000, 0, 10_000, 5_000) == 5_000
    # time window is shorter than 10,000 revisions -> count wins
    assert compaction_target(20_000, 0, 10_000, 19_990) == 10_000
    # never moves backwards
    assert compaction_target(20_000, 12_000, 10_000, 19_990) == 12_000


def test_compact_history_bounds_log_and_keeps_data(tmp_path: Path) -> None:
    clock = [1000.0]

    async def body(s: SQLiteStore) -> None:
        for i in range(50):
            await s.create(f"{P}k{i:02}", b"v")
        for i in range(50):
            await s.update(f"{P}k{i:02}", b"w", None)
        clock[0] += 100                      # all of that is older than the 60 s window
        for i in range(10):
            await s.update(f"{P}k{i:02}", b"x", None)
        # count bound keeps the last 30 revisions; the time bound keeps only 10: keep 30
        assert await s.compact_history() == 80
        assert s._db.execute("SELECT MIN(rev), COUNT(*) FROM log").fetchone() == (81, 30)
        data = await s.range(P)
        assert data.count == 50 and data.revision == 110
        assert [kv.value for kv in data.kvs[:11]] == [b"x"] * 10 + [b"w"]
        with pytest.raises(CompactedError):
            await s.watch(P, 80)
        assert (await next_event(await s.watch(P, 81))).revision == 81
        wal = Path(str(tmp_path / "state.db") + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0   # checkpointed and truncated

    run(tmp_path, body, keep_revisions=30, keep_seconds=60, compact_batch=7, clock=lambda: clock[0])


def test_background_compaction_runs(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> int:
        await s.start()
        for i in range(20):
            await s.create(f"{P}k{i}", b"v")
        for _ in range(100):
            if s.compact_revision:
                break
            await asyncio.sleep(0.01)
        return s.compact_revision

    assert run(tmp_path, body, keep_revisions=5, keep_seconds=0, compact_interval=0.02) == 15


def test_leases_revoke_keepalive_and_expiry(tmp_path: Path) -> None:
    clock = [0.0]

    async def body(s: SQLiteStore) -> None:
        lease = await s.grant_lease(10)
        kv = await s.create(P + "leased", b"v", lease)
        assert kv.lease == lease
        await s.create(P + "plain", b"v")
        with pytest.raises(LeaseNotFoundError):
            await s.create(P + "bad", b"v", 12345)
        w = await s.watch(P)
        clock[0] = 8
        assert await s.keepalive(lease) == 10
        clock[0] = 15                         # 7 s after the keepalive: still alive
        s.expire_leases()
        assert await s.get(P + "leased") is not None
        clock[0] = 18.5
        assert s.expire_leases() is None
        assert await s.get(P + "leased") is None
        ev = await next_event(w)
        assert isinstance(ev, Event) and (ev.type, ev.kv.key) == ("DELETE", P + "leased")
        with pytest.raises(LeaseNotFoundError):
            await s.keepalive(lease)
        other = await s.grant_lease(5)
        await s.update(P + "plain", b"w", None, lease=other)
        await s.revoke_lease(other)
        assert (await s.range(P)).count == 0
        with pytest.raises(LeaseNotFoundError):
            await s.revoke_lease(other)

    run(tmp_path, body, clock=lambda: clock[0])


def test_lease_expires_in_background(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> KV | None:
        await s.start()
        lease = await s.grant_lease(1)
        await s.create("/k", b"v", lease)
        await asyncio.sleep(1.3)
        return await s.get("/k")

    assert run(tmp_path, body, lease_check_interval=0.1) is None


def test_closed_store_rejects_and_ends_watches(tmp_path: Path) -> None:
    async def main() -> None:
        s = SQLiteStore(str(tmp_path / "state.db"))
        w = await s.watch(P)
        pending = asyncio.ensure_future(w.__anext__())
        await asyncio.sleep(0)
        await s.close()
        with pytest.raises(StoreClosedError):
            await asyncio.wait_for(pending, 1)
        with pytest.raises(StoreClosedError):
            await s.create("/k", b"v")

    asyncio.run(main())


_CHILD = textwrap.dedent("""
    import asyncio, sys
    from kubegate.storage import SQLiteStore

    async def main():
        s = SQLiteStore(sys.argv[1])
        i = 0
        while True:
            kv = await s.create(f"/registry/pods/ns/p{i}", b"x" * 100)
            print(kv.mod_revision, flush=True)
            i += 1

    asyncio.run(main())
""")


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    db = str(tmp_path / "state.db")
    child = subprocess.Popen([sys.executable, "-c", _CHILD, db], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    acked = 0
    for line in child.stdout:
        acked = int(line)
        if acked >= 300:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()

    async def check(s: SQLiteStore) -> None:
        rev = await s.current_revision()
        assert rev >= acked
        res = await s.range("/registry/pods/ns/")
        assert res.count == rev
        assert await s.get(f"/registry/pods/ns/p{acked - 1}") is not None
        assert (await s.create("/after", b"v")).mod_revision == rev + 1

    run(tmp_path, check)


def test_first_layout_kv_table_is_converted_when_opened(tmp_path: Path) -> None:
    """Data directories written with the WITHOUT ROWID kv table open with every key, lease and
    revision intact, and the table becomes a rowid one (large values stay in the row's page)."""
    import sqlite3

    from kubegate.storage import sqlite as sqlite_store

    path = tmp_path / "state.db"
    old_kv = sqlite_store._KV_TABLE.rstrip(";") + " WITHOUT ROWID;"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(old_kv + sqlite_store._SCHEMA.replace(sqlite_store._KV_TABLE, ""))
    db.execute("INSERT INTO kv VALUES (?, 1, 1, 0, ?)", (P + "ns/a", b"x" * 3000))
    db.execute("INSERT INTO kv VALUES (?, 2, 2, 0, ?)", (P + "ns/b", b"2"))
    db.execute("UPDATE meta SET value = 2 WHERE name = 'rev'")
    db.close()

    async def body(s: SQLiteStore) -> None:
        assert await s.current_revision() == 2
        assert await s.get(P + "ns/a") == KV(P + "ns/a", b"x" * 3000, 1, 1, 0)
        assert [kv.key for kv in (await s.range(P)).kvs] == [P + "ns/a", P + "ns/b"]
        assert (await s.create(P + "ns/c", b"3")).mod_revision == 3

    run(tmp_path, body)
    sql = sqlite3.connect(path).execute("SELECT group_concat(sql) FROM sqlite_master").fetchone()[0]
    assert "WITHOUT ROWID" not in sql.split("CREATE TABLE meta")[0] and "kv_without_rowid" not in sql
    assert "kv_lease" in sql
