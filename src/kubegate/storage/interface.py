"""The revisioned key/value store protocol every backend implements.

The shape follows etcd v3 one to one so an etcd backend is a thin adapter:
create/update/delete are Txns comparing mod_revision, `range` is Range with revision and limit,
`watch` is Watch with start_revision and prev_kv, `compact` is Compact, and leases are
LeaseGrant/LeaseRevoke/LeaseKeepAlive.
"""
from __future__ import annotations

import functools

from dataclasses import dataclass
from typing import AsyncIterator, Callable, Literal, NamedTuple, Protocol


@dataclass(frozen=True, slots=True)
class KV:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    lease: int = 0


@dataclass(frozen=True, slots=True)
class CorruptKV(KV):
    """A stored value a store wrapper could not turn back into its bytes (say, tampered ciphertext).
    Caches keep it so that reading this one object raises `error` while every other object is served;
    `retry` tries again (a KMS plugin that was down may be back), returning the readable KV or raising."""

    error: Exception | None = None
    retry: Callable[[], KV] | None = None

    def recover(self) -> KV:
        if self.retry is not None:
            try:
                return self.retry()
            except Exception:
                pass
        raise self.error if self.error is not None else ValueError(f"corrupt value at {self.key}")


@dataclass(frozen=True, slots=True)
class Event:
    """One change. For a DELETE, `kv` is etcd's tombstone (empty value, mod_revision = the delete's
    revision) and `prev_kv` holds the object as it was just before the delete."""

    type: Literal["PUT", "DELETE"]
    kv: KV
    prev_kv: KV | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class Progress:
    """etcd's progress notification: every matching event up to `revision` has been delivered."""

    revision: int


class RangeResult(NamedTuple):
    kvs: list[KV]
    revision: int   # the store revision the read was served at
    more: bool      # keys remain after the last returned one
    count: int      # keys in the requested range, ignoring limit (etcd's Range count)


class StoreError(Exception):
    pass


class KeyExistsError(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key already exists: {key}")
        self.key = key


class KeyNotFoundError(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class LeaseNotFoundError(StoreError):
    def __init__(self, lease: int) -> None:
        super().__init__(f"lease not found: {lease}")
        self.lease = lease


class ConflictError(StoreError):
    """A compare-and-swap lost: `current` is what the key holds now (None if it is gone)."""

    def __init__(self, key: str, current: KV | None) -> None:
        super().__init__(f"mod_revision mismatch for {key}")
        self.key = key
        self.current = current


class CompactedError(StoreError):
    """The requested revision is no longer kept; the API turns this into 410 Gone."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__(f"required revision has been compacted (compacted up to {compact_revision})")
        self.compact_revision = compact_revision


class FutureRevisionError(StoreError):
    def __init__(self, revision: int, current: int) -> None:
        super().__init__(f"required revision {revision} is a future revision (current {current})")
        self.revision = revision
        self.current = current


class StoreClosedError(StoreError):
    def __init__(self) -> None:
        super().__init__("store is closed")


class WatchStream(Protocol):
    """Async iterator of Events in revision order; yields a Progress only after request_progress()."""

    def __aiter__(self) -> AsyncIterator[Event | Progress]: ...

    async def __anext__(self) -> Event | Progress: ...

    def request_progress(self) -> None: ...

    def close(self) -> None: ...


class Store(Protocol):
    """Semantics shared by every backend:

    - one cluster-wide revision, +1 per changed key; it is each object's resourceVersion;
    - `revision=0` reads the current state; older revisions down to the compact revision stay
      readable (CompactedError below it, FutureRevisionError above the current one);
    - `update`/`delete` compare mod_revision when `expected_mod_revision` is given
      (KeyNotFoundError if the key is gone, ConflictError carrying the current KV on mismatch);
    - `delete` returns the deleted value stamped with the delete's revision;
    - `watch` yields events with revision >= start_revision (0: from now), history included, and
      raises CompactedError when start_revision <= the compact revision;
    - revoking or expiring a lease deletes every key attached to it.
    """

    async def start(self) -> None: ...

    async def get(self, key: str, revision: int = 0) -> KV | None: ...

    async def range(
        self, prefix: str, *, start_after: str | None = None, limit: int = 0, revision: int = 0
    ) -> RangeResult: ...

    async def create(self, key: str, value: bytes, lease: int = 0) -> KV: ...

    async def update(
        self, key: str, value: bytes, expected_mod_revision: int | None, *, lease: int | None = None
    ) -> KV: ...

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> KV: ...

    async def watch(self, prefix: str, start_revision: int = 0) -> WatchStream: ...

    async def current_revision(self) -> int: ...

    async def compact(self, revision: int) -> None: ...

    async def grant_lease(self, ttl: int) -> int: ...

    async def revoke_lease(self, lease: int) -> None: ...

    async def keepalive(self, lease: int) -> int: ...

    async def close(self) -> None: ...


@functools.lru_cache(maxsize=4096)  # every cached list and count asks again for the same prefixes
def prefix_end(prefix: str) -> str | None:
    """The smallest key greater than every key starting with `prefix` (etcd's WithPrefix range end);
    None when the prefix is unbounded above."""
    p = prefix.rstrip(chr(0x10FFFF))
    if not p:
        return None
    return p[:-1] + chr(ord(p[-1]) + 1)
