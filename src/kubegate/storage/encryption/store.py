"""The Store wrapper that encrypts values on their way into the backend and decrypts them on the
way out, chosen by key prefix. Everything above it (watch cache, registries) sees plaintext; the
backend file holds only what the transformers wrote."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..interface import KV, ConflictError, Event, Progress, RangeResult, Store, StoreError, WatchStream
from .transformer import GroupResource, Transformer, TransformerSet, TransformFailure

_ROOT = "/registry/"


class TransformError(StoreError):
    """A stored value could not be decrypted (wrong or missing key, tampered bytes)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f'unable to transform key "{key}": {reason}')
        self.key = key


class _Watch:
    def __init__(self, inner: WatchStream, store: EncryptingStore) -> None:
        self._inner = inner
        self._store = store

    def __aiter__(self) -> _Watch:
        return self

    async def __anext__(self) -> Event | Progress:
        ev = await self._inner.__anext__()
        if isinstance(ev, Progress):
            return ev
        s = self._store
        kv = ev.kv if ev.type == "DELETE" else s.decrypt(ev.kv)  # a tombstone's value is empty
        return Event(ev.type, kv, None if ev.prev_kv is None else s.decrypt(ev.prev_kv))

    def request_progress(self) -> None:
        self._inner.request_progress()

    def close(self) -> None:
        self._inner.close()


class EncryptingStore:
    """`resources` maps each storage key prefix (`/registry/secrets`) to its group resource."""

    def __init__(self, inner: Store, transformers: TransformerSet,
                 resources: Iterable[tuple[str, GroupResource]]) -> None:
        self.inner = inner
        self._resources: dict[str, GroupResource] = {}
        for prefix, gr in resources:
            if not prefix.startswith(_ROOT) or "/" in prefix[len(_ROOT):]:
                raise ValueError(f"storage prefix {prefix!r} is not /registry/<name>")
            self._resources.setdefault(prefix, gr)
        self.set_transformers(transformers)

    def set_transformers(self, transformers: TransformerSet) -> None:
        """Swap the whole table at once (automatic reload): a write uses the old or the new one, never a mix."""
        self.transformers = transformers
        self._by_prefix: dict[str, Transformer] = {p: transformers.for_resource(gr) for p, gr in self._resources.items()}
        self._default = transformers.for_resource(("", "\0"))

    def _transformer(self, key: str) -> Transformer:
        end = key.find("/", len(_ROOT))
        return self._by_prefix.get(key[:end] if end > 0 else key, self._default)

    def encrypt(self, key: str, value: bytes) -> bytes:
        return self._transformer(key).to_storage(value, key.encode())

    def read(self, key: str, value: bytes) -> tuple[bytes, bool]:
        """(plaintext, stale) for one stored value; TransformError if it cannot be read."""
        try:
            return self._transformer(key).from_storage(value, key.encode())
        except TransformFailure as e:
            raise TransformError(key, str(e)) from None

    def decrypt(self, kv: KV) -> KV:
        return KV(kv.key, self.read(kv.key, kv.value)[0], kv.create_revision, kv.mod_revision, kv.lease)

    async def stale(self, key: str) -> bool:
        """True when the stored value was not written by the current writer, so an update that changes
        nothing must still rewrite it (upstream's GuaranteedUpdate on stale data)."""
        kv = await self.inner.get(key)
        return kv is not None and self.read(key, kv.value)[1]

    # -- Store protocol ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def get(self, key: str, revision: int = 0) -> KV | None:
        kv = await self.inner.get(key, revision)
        return None if kv is None else self.decrypt(kv)

    async def range(self, prefix: str, *, start_after: str | None = None, limit: int = 0,
                    revision: int = 0) -> RangeResult:
        res = await self.inner.range(prefix, start_after=start_after, limit=limit, revision=revision)
        return RangeResult([self.decrypt(kv) for kv in res.kvs], res.revision, res.more, res.count)

    async def create(self, key: str, value: bytes, lease: int = 0) -> KV:
        kv = await self.inner.create(key, self.encrypt(key, value), lease)
        return KV(key, value, kv.create_revision, kv.mod_revision, kv.lease)

    async def update(self, key: str, value: bytes, expected_mod_revision: int | None, *,
                     lease: int | None = None) -> KV:
        try:
            kv = await self.inner.update(key, self.encrypt(key, value), expected_mod_revision, lease=lease)
        except ConflictError as e:
            raise ConflictError(key, None if e.current is None else self.decrypt(e.current)) from None
        return KV(key, value, kv.create_revision, kv.mod_revision, kv.lease)

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> KV:
        try:
            return self.decrypt(await self.inner.delete(key, expected_mod_revision))
        except ConflictError as e:
            raise ConflictError(key, None if e.current is None else self.decrypt(e.current)) from None

    async def watch(self, prefix: str, start_revision: int = 0) -> _Watch:
        return _Watch(await self.inner.watch(prefix, start_revision), self)

    async def current_revision(self) -> int:
        return await self.inner.current_revision()

    async def compact(self, revision: int) -> None:
        await self.inner.compact(revision)

    async def grant_lease(self, ttl: int) -> int:
        return await self.inner.grant_lease(ttl)

    async def revoke_lease(self, lease: int) -> None:
        await self.inner.revoke_lease(lease)

    async def keepalive(self, lease: int) -> int:
        return await self.inner.keepalive(lease)

    def __getattr__(self, name: str) -> Any:
        # backend extras (closed, revision, compact_revision, ...) that health checks read
        return getattr(self.inner, name)
