"""KMS v2: the wire codecs, the provider against the bundled plugin over a real unix socket (seed reuse,
rotation on key ID change, restart, plugin down or slow, expiry), and tamper handling in the store and
the watch cache."""
from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable
from pathlib import Path

import grpc
import pytest

from kubegate.api.errors import StatusError
from kubegate.kmsplugin import keys as plugin_keys
from kubegate.kmsplugin.server import KMSPlugin, start
from kubegate.protobuf.wire import WireError
from kubegate.storage.cache import WatchCache
from kubegate.storage.encryption import kms_api as api
from kubegate.storage.encryption import kmsv2
from kubegate.storage.encryption.config import load
from kubegate.storage.encryption.kmsv2 import KMSv2Provider, cache_key
from kubegate.storage.encryption.store import EncryptingStore
from kubegate.storage.encryption.transformer import TransformFailure
from kubegate.storage.interface import CorruptKV
from kubegate.storage.sqlite import SQLiteStore

KEY = "/registry/secrets/default/s1"
SECRET = b'{"kind":"Secret","data":{"password":"aHVudGVyMg=="}}'
RESOURCES = [("/registry/secrets", ("", "secrets"))]


def _run(coro: Awaitable[None]) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


# --- codecs -----------------------------------------------------------------------------------------

def test_encrypted_object_matches_protoc_layout() -> None:
    o = api.EncryptedObject(b"\x01\x02", "k1", b"\xaa", {"x.example.com": b"v"}, api.HKDF_SHA256_XNONCE_AES_GCM_SEED)
    entry = b"\x0a\x0dx.example.com\x12\x01v"
    want = b"\x0a\x02\x01\x02" + b"\x12\x02k1" + b"\x1a\x01\xaa" + b"\x22" + bytes([len(entry)]) + entry + b"\x28\x01"
    assert o.encode() == want
    assert api.EncryptedObject.decode(want) == o
    # proto3 leaves the default enum value out; decoding it back gives AES_GCM_KEY
    plain = api.EncryptedObject(b"d", "k", b"s", {}, api.AES_GCM_KEY)
    assert b"\x28" not in plain.encode() and api.EncryptedObject.decode(plain.encode()) == plain


@pytest.mark.parametrize("msg", [
    api.StatusResponse("v2", "ok", "key-1"), api.EncryptRequest(b"seed", "uid-1"),
    api.EncryptResponse(b"ct", "key-1", {"a.b": b"c"}), api.DecryptRequest(b"ct", "uid", "key-1", {"a.b": b"c"}),
    api.DecryptResponse(b"plain"),
])
def test_rpc_messages_round_trip(msg: object) -> None:
    assert type(msg).decode(msg.encode()) == msg  # type: ignore[attr-defined]


def test_malformed_bytes_give_gos_message() -> None:
    with pytest.raises(WireError, match="^proto: cannot parse invalid wire-format data$"):
        api.EncryptedObject.decode(b"\x0a\x05ab")
    with pytest.raises(WireError):
        api.EncryptedObject.decode(b"\x10\x01")  # keyID with a varint wire type


def test_cache_key_is_upstreams_length_prefixed_layout() -> None:
    o = api.EncryptedObject(b"d", "kid", b"src", {"b.io": b"2", "a.io": b"1"})
    assert cache_key(o) == (b"\x00\x00\x00\x01" + b"\x00\x03src" + b"\x00\x03kid" + b"\x00\x00\x00\x02"
                            + b"\x00\x04a.io\x00\x011" + b"\x00\x04b.io\x00\x012")


def test_validation_messages() -> None:
    ok = api.EncryptedObject(b"d", "kid", b"src")
    assert kmsv2.validate(ok) is None
    assert kmsv2.validate(api.EncryptedObject(b"", "kid", b"src")) == "encrypted data is empty"
    assert kmsv2.validate(api.EncryptedObject(b"d", "", b"src")) == "failed to validate key id: keyID is empty"
    assert kmsv2.validate(api.EncryptedObject(b"d", "k", b"")) == \
        "failed to validate encrypted DEK source: encrypted DEK source is empty"
    assert kmsv2.validate(api.EncryptedObject(b"d", "k", b"s", {}, 7)) == "unknown encryptedDEKSourceType: 7"
    assert "annotations" in (kmsv2.validate(api.EncryptedObject(b"d", "k", b"s", {"nodots": b""})) or "")


# --- the provider against the plugin ------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def _plugin(tmp_path: Path, servicer: type[KMSPlugin] = KMSPlugin) -> tuple[grpc.aio.Server, Path, Path]:
    sock, key_file = tmp_path / "kms.sock", tmp_path / "keys"
    if not key_file.exists():
        plugin_keys.create(key_file)
    if servicer is KMSPlugin:
        server = await start(sock, key_file)
    else:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers([servicer(plugin_keys.KeyFile(key_file)).handler()])
        server.add_insecure_port(f"unix://{sock}")
        await server.start()
    return server, sock, key_file


def _provider(sock: Path, clock: Clock, timeout: float = 3.0) -> KMSv2Provider:
    return KMSv2Provider("p1", f"unix://{sock}", timeout, clock=clock)


def test_seed_is_reused_rotated_on_key_change_and_reloaded_after_restart(tmp_path: Path) -> None:
    async def body() -> None:
        server, sock, key_file = await _plugin(tmp_path)
        clock = Clock()
        p = _provider(sock, clock)
        assert await p.check() is None and p.health is None
        a, b = p.to_storage(SECRET, KEY.encode()), p.to_storage(SECRET, KEY.encode())
        oa, ob = api.EncryptedObject.decode(a), api.EncryptedObject.decode(b)
        assert oa.key_id == "key-1" and oa.encrypted_dek_source == ob.encrypted_dek_source  # one seed, reused
        assert oa.encrypted_data != ob.encrypted_data and SECRET not in a
        assert p.from_storage(a, KEY.encode()) == (SECRET, False)
        with pytest.raises(TransformFailure, match="cipher: message authentication failed"):
            p.from_storage(a, b"/registry/secrets/default/other")  # the storage key is authenticated

        with key_file.open("a") as f:
            f.write(plugin_keys.new_key_line("key-2"))
        clock.now += 30
        assert p.due() and await p.check() is None
        c = p.to_storage(SECRET, KEY.encode())
        oc = api.EncryptedObject.decode(c)
        assert oc.key_id == "key-2" and oc.encrypted_dek_source != oa.encrypted_dek_source
        assert p.from_storage(a, KEY.encode()) == (SECRET, True)  # old key ID: stale, rewrite on update

        fresh = _provider(sock, clock)  # a restarted server: no seeds cached
        with pytest.raises(TransformFailure, match="not available"):
            fresh.from_storage(a, KEY.encode())
        await fresh.load(a)
        assert fresh.from_storage(a, KEY.encode())[0] == SECRET
        await p.close()
        await fresh.close()
        await server.stop(None)

    _run(body())


def test_plugin_down_then_back(tmp_path: Path) -> None:
    async def body() -> None:
        clock = Clock()
        p = _provider(tmp_path / "kms.sock", clock)
        err = await p.check()
        assert err is not None and err.startswith(
            "failed to perform status section of the healthz check for KMS Provider p1, error: "
            "rpc error: code = Unavailable desc = ")
        with pytest.raises(TransformFailure, match="^got unexpected nil transformer$"):
            p.to_storage(SECRET, KEY.encode())
        assert not p.due()
        clock.now += kmsv2.HEALTHZ_NEGATIVE_TTL
        server, _, _ = await _plugin(tmp_path)
        assert p.due()
        for _ in range(100):  # the channel redials within its (short) reconnect backoff
            if await p.check() is None:
                break
            await asyncio.sleep(0.05)
        assert p.health is None
        stored = p.to_storage(SECRET, KEY.encode())

        await server.stop(None)
        clock.now += kmsv2.HEALTHZ_POSITIVE_TTL
        assert (await p.check() or "").startswith("failed to perform status section")
        # writes coast on the current seed for three minutes from the last good Status, then fail
        clock.now += kmsv2.WRITE_DEK_MAX_TTL - kmsv2.HEALTHZ_POSITIVE_TTL - 1
        p.to_storage(SECRET, KEY.encode())
        clock.now += 2
        with pytest.raises(TransformFailure, match=r'^encryptedDEKSource with keyID hash "sha256:[0-9a-f]{64}" '
                                                   r"expired at \S+Z \(current time is \S+Z\)$"):
            p.to_storage(SECRET, KEY.encode())
        assert p.from_storage(stored, KEY.encode())[0] == SECRET  # reads of cached seeds go on
        await p.close()

    _run(body())


class SlowPlugin(KMSPlugin):
    async def status(self, request: bytes, context: grpc.aio.ServicerContext) -> api.StatusResponse:
        await asyncio.sleep(2)
        return await super().status(request, context)


def test_slow_plugin_hits_the_configured_timeout(tmp_path: Path) -> None:
    async def body() -> None:
        server, sock, _ = await _plugin(tmp_path, SlowPlugin)
        p = _provider(sock, Clock(), timeout=0.2)
        err = await p.check()
        assert err is not None and "rpc error: code = DeadlineExceeded desc = Deadline Exceeded" in err
        await p.close()
        await server.stop(None)

    _run(body())


class BadStatusPlugin(KMSPlugin):
    async def status(self, request: bytes, context: grpc.aio.ServicerContext) -> api.StatusResponse:
        return api.StatusResponse("v1", "sick", "")


def test_unhealthy_status_aggregates_upstreams_reasons(tmp_path: Path) -> None:
    async def body() -> None:
        server, sock, _ = await _plugin(tmp_path, BadStatusPlugin)
        p = _provider(sock, Clock())
        assert await p.check() == (
            'kmsv2 Provider p1 is not healthy, error: [got unexpected healthz status: sick, expected KMSv2 API '
            'version v2, got v1, got invalid KMSv2 KeyID hash "": keyID is empty]')
        await p.close()
        await server.stop(None)

    _run(body())


# --- through the store and the watch cache ------------------------------------------------------------

def _config(tmp_path: Path, sock: Path) -> Path:
    f = tmp_path / "enc.yaml"
    f.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
                 "  - resources: [secrets]\n    providers:\n"
                 f"      - kms: {{apiVersion: v2, name: p1, endpoint: 'unix://{sock}', timeout: 2s}}\n"
                 "      - identity: {}\n")
    return f


def test_store_writes_kms_prefix_and_restart_reads_through_plugin(tmp_path: Path) -> None:
    async def body() -> None:
        server, sock, _ = await _plugin(tmp_path)
        db = str(tmp_path / "db")
        store = EncryptingStore(SQLiteStore(db), load(_config(tmp_path, sock))[1], RESOURCES)
        await store.start()
        assert store.kms_health() is None
        await store.create(KEY, SECRET)
        raw = await store.inner.get(KEY)
        assert raw is not None and raw.value.startswith(b"k8s:enc:kms:v2:p1:") and b"aHVudGVy" not in raw.value
        await store.close()

        again = EncryptingStore(SQLiteStore(db), load(_config(tmp_path, sock))[1], RESOURCES)
        await again.start()
        assert (await again.get(KEY)).value == SECRET  # type: ignore[union-attr]
        await again.close()
        await server.stop(None)

    _run(body())


def test_write_with_plugin_down_is_upstreams_500_and_health_names_the_provider(tmp_path: Path) -> None:
    async def body() -> None:
        store = EncryptingStore(SQLiteStore(str(tmp_path / "db")), load(_config(tmp_path, tmp_path / "none.sock"))[1],
                                RESOURCES)
        await store.start()
        assert (store.kms_health() or "").startswith("kms-provider-0: failed to perform status section")
        with pytest.raises(StatusError) as e:
            await store.create(KEY, SECRET)
        assert e.value.code == 500 and e.value.message == "Internal error occurred: got unexpected nil transformer"
        assert await store.inner.get(KEY) is None
        await store.close()

    _run(body())


def test_tampered_value_is_one_objects_500_and_the_cache_serves_the_rest(tmp_path: Path) -> None:
    async def body() -> None:
        server, sock, _ = await _plugin(tmp_path)
        store = EncryptingStore(SQLiteStore(str(tmp_path / "db")), load(_config(tmp_path, sock))[1], RESOURCES)
        await store.start()
        await store.create(KEY, SECRET)
        await store.create("/registry/secrets/default/s2", SECRET)
        raw = await store.inner.get(KEY)
        assert raw is not None
        body_bytes = bytearray(raw.value)
        body_bytes[len(b"k8s:enc:kms:v2:p1:") + 40] ^= 0x01  # flip one bit of encryptedData in the backend file
        await store.inner.update(KEY, bytes(body_bytes), None)

        cache = WatchCache(store, "/registry/secrets/", lambda kv: kv.value)
        await cache.start()
        bad, good = cache.get(KEY), cache.get("/registry/secrets/default/s2")
        assert bad is not None and good is not None and isinstance(bad.kv, CorruptKV)
        assert good.object == SECRET
        with pytest.raises(StatusError) as e:
            bad.object
        assert e.value.code == 500 and e.value.reason == "InternalError"
        assert e.value.message == ("Internal error occurred: StorageError: corrupt object, Code: 7, Key: "
                                   f"{KEY}, ResourceVersion: 0, AdditionalErrorMsg: cipher: message authentication "
                                   "failed")
        # a tampered write arriving through the watch is kept per object too
        await store.inner.update("/registry/secrets/default/s2", b"k8s:enc:kms:v2:p1:" + base64.b64encode(b"x"), None)
        await cache.wait_for_revision(await store.current_revision(), timeout=5)
        s2 = cache.get("/registry/secrets/default/s2")
        assert s2 is not None and isinstance(s2.kv, CorruptKV)
        with pytest.raises(StatusError, match="proto: cannot parse invalid wire-format data"):
            s2.object
        await cache.stop()
        await store.close()
        await server.stop(None)

    _run(body())


def test_key_file_errors(tmp_path: Path) -> None:
    f = tmp_path / "k"
    f.write_text("a " + base64.b64encode(b"x" * 16).decode() + "\n")
    with pytest.raises(plugin_keys.KeyFileError, match="must be 32 bytes, got 16"):
        plugin_keys.KeyFile(f).ring()
    f.write_text(plugin_keys.new_key_line("a") + plugin_keys.new_key_line("a"))
    with pytest.raises(plugin_keys.KeyFileError, match="duplicate key ID 'a'"):
        plugin_keys.KeyFile(f).ring()
    f.write_text(plugin_keys.new_key_line("a") + plugin_keys.new_key_line("b"))
    ring = plugin_keys.KeyFile(f).ring()
    key_id, ct = ring.encrypt(b"seed")
    assert key_id == "b" and ring.decrypt("b", ct) == b"seed"
    with pytest.raises(plugin_keys.UnknownKey):
        ring.decrypt("a", ct)  # the key ID is authenticated with the ciphertext
    plugin_keys.create(tmp_path / "new")
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o600

