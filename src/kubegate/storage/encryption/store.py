"""The Store wrapper that encrypts values on their way into the backend and decrypts them on the
way out, chosen by key prefix. Everything above it (watch cache, registries) sees plaintext; the
backend file holds only what the transformers wrote."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

from kubegate.api import errors

from ..interface import KV, ConflictError, CorruptKV, Event, Progress, RangeResult, Store, StoreError, WatchStream
from .transformer import GroupResource, Transformer, TransformerSet, TransformFailure

_ROOT = "/registry/"
_CORRUPT_OBJ = 7  # upstream storage.ErrCodeCorruptObj


class TransformError(StoreError):
    """A stored value could not be decrypted (wrong or missing key, tampered bytes)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f'unable to transform key "{key}": {reason}')
        self.key = key
        self.reason = reason

    def status(self) -> errors.StatusError:
        """The 500 upstream answers for an object whose stored bytes do not transform (NewCorruptObjError)."""
        return errors.internal(f"StorageError: corrupt object, Code: {_CORRUPT_OBJ}, Key: {self.key}, "
                               f"ResourceVersion: 0, AdditionalErrorMsg: {self.reason}")


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
        kv = ev.kv if ev.type == "DELETE" else await s.readable(ev.kv)  # a tombstone's value is empty
        return Event(ev.type, kv, None if ev.prev_kv is None else await s.readable(ev.prev_kv))

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
        self._pending: dict[str, bytes] = {}  # key -> stored value whose KMS data key could not be fetched
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
        try:
            return self._transformer(key).to_storage(value, key.encode())
        except TransformFailure as e:  # a KMS plugin that is down: the write fails, nothing is stored
            raise errors.internal(str(e)) from None

    def read(self, key: str, value: bytes) -> tuple[bytes, bool]:
        """(plaintext, stale) for one stored value; TransformError if it cannot be read."""
        try:
            return self._transformer(key).from_storage(value, key.encode())
        except TransformFailure as e:
            raise TransformError(key, str(e)) from None

    def decrypt(self, kv: KV) -> KV:
        return KV(kv.key, self.read(kv.key, kv.value)[0], kv.create_revision, kv.mod_revision, kv.lease)

    async def load_keys(self, key: str, value: bytes) -> None:
        """Fetch from its KMS plugin the data key one stored value needs, if not cached (TransformError)."""
        for provider in self.transformers.kms:
            if value.startswith(provider.prefix):
                try:
                    await provider.load(value[len(provider.prefix):])
                except TransformFailure as e:
                    raise TransformError(key, str(e)) from None
                return

    async def decrypt_loaded(self, kv: KV) -> KV:
        await self.load_keys(kv.key, kv.value)
        return self.decrypt(kv)

    async def readable(self, kv: KV) -> KV:
        """The plaintext KV, or a CorruptKV carrying upstream's 500 for this one object, so that lists and
        watches (the watch cache) keep serving every other object."""
        try:
            return await self.decrypt_loaded(kv)
        except TransformError as e:
            if self._kms_prefixed(kv.value):
                self._pending[kv.key] = kv.value  # its data key is fetched again once the plugin answers
            return CorruptKV(kv.key, b"", kv.create_revision, kv.mod_revision, kv.lease, e.status(),
                             lambda: self.decrypt(kv))

    def _kms_prefixed(self, value: bytes) -> bool:
        return any(value.startswith(p.prefix) for p in self.transformers.kms)

    async def stale(self, key: str) -> bool:
        """True when the stored value was not written by the current writer, so an update that changes
        nothing must still rewrite it (upstream's GuaranteedUpdate on stale data)."""
        kv = await self.inner.get(key)
        if kv is None:
            return False
        await self.load_keys(key, kv.value)
        return self.read(key, kv.value)[1]

    # -- KMS plugins ------------------------------------------------------------------------------------

    def kms_health(self) -> str | None:
        """The `kms-providers` check: every KMS provider's last probe (upstream kmsHealthChecker)."""
        errs = [f"kms-provider-{i}: {p.health}" for i, p in enumerate(self.transformers.kms) if p.health]
        return None if not errs else errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"

    async def probe_kms(self) -> None:
        """Probe every KMS provider whose last answer is older than its TTL (20 s healthy, 3 s failing)."""
        due = [p for p in self.transformers.kms if p.due()]
        if due:
            await asyncio.gather(*(p.check() for p in due))
        if self._pending and not self.kms_health():
            for key, value in list(self._pending.items()):
                del self._pending[key]
                with contextlib.suppress(TransformError):  # tampered, not just unfetched: stays that object's error
                    await self.load_keys(key, value)

    async def run_kms_probes(self, interval: float = 1.0) -> None:
        """Background task: keeps seeds fresh (a key ID change rotates them) and health current."""
        while True:
            await asyncio.sleep(interval)
            await self.probe_kms()

    # -- Store protocol ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.inner.start()
        await self.probe_kms()  # prime the write seed inline, as upstream; a plugin still down is retried

    async def close(self) -> None:
        for provider in self.transformers.kms:
            await provider.close()
        await self.inner.close()

    async def get(self, key: str, revision: int = 0) -> KV | None:
        kv = await self.inner.get(key, revision)
        return None if kv is None else await self.decrypt_loaded(kv)

    async def range(self, prefix: str, *, start_after: str | None = None, limit: int = 0,
                    revision: int = 0) -> RangeResult:
        res = await self.inner.range(prefix, start_after=start_after, limit=limit, revision=revision)
        return RangeResult([await self.readable(kv) for kv in res.kvs], res.revision, res.more, res.count)

    async def create(self, key: str, value: bytes, lease: int = 0) -> KV:
        kv = await self.inner.create(key, self.encrypt(key, value), lease)
        return KV(key, value, kv.create_revision, kv.mod_revision, kv.lease)

    async def update(self, key: str, value: bytes, expected_mod_revision: int | None, *,
                     lease: int | None = None) -> KV:
        try:
            kv = await self.inner.update(key, self.encrypt(key, value), expected_mod_revision, lease=lease)
        except ConflictError as e:
            raise ConflictError(key, None if e.current is None else await self.decrypt_loaded(e.current)) from None
        return KV(key, value, kv.create_revision, kv.mod_revision, kv.lease)

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> KV:
        try:
            return await self.readable(await self.inner.delete(key, expected_mod_revision))
        except ConflictError as e:
            raise ConflictError(key, None if e.current is None else await self.decrypt_loaded(e.current)) from None

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
