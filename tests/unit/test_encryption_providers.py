"""Providers, prefix chains and the encrypting store over a real SQLite file."""
from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from kubegate.storage.encryption.config import load
from kubegate.storage.encryption.store import EncryptingStore, TransformError
from kubegate.storage.encryption.transformer import PrefixTransformers, TransformerSet
from kubegate.storage.sqlite import SQLiteStore
from tests.fixtures import FIXTURES

AES = FIXTURES / "encryption-config" / "valid-configs" / "aes"
KEY_A = base64.b64encode(b"a" * 32).decode()
KEY_B = base64.b64encode(b"b" * 32).decode()
SECRET = b'{"kind":"Secret","data":{"password":"aHVudGVyMg=="}}'
KEY = "/registry/secrets/default/s1"


def _chain(tmp_path: Path, providers: str, resources: str = "[secrets]") -> TransformerSet:
    f = tmp_path / f"enc{abs(hash(providers))}.yaml"
    f.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
                 f"  - resources: {resources}\n    providers: {providers}\n")
    return load(f)[1]


def _secrets(ts: TransformerSet) -> PrefixTransformers:
    t = ts.for_resource(("", "secrets"))
    assert isinstance(t, PrefixTransformers)
    return t


def _prov(kind: str, name: str, key: str) -> str:
    return f"{{{kind}: {{keys: [{{name: {name}, secret: {key}}}]}}}}"


@pytest.mark.parametrize("kind", ["aescbc", "aesgcm", "secretbox"])
def test_round_trip_with_upstreams_prefix(tmp_path: Path, kind: str) -> None:
    t = _secrets(_chain(tmp_path, f"[{_prov(kind, 'key1', KEY_A)}]"))
    stored = t.to_storage(SECRET, KEY.encode())
    assert stored.startswith(f"k8s:enc:{kind}:v1:key1:".encode())
    assert b"aHVudGVyMg" not in stored
    assert t.from_storage(stored, KEY.encode()) == (SECRET, False)
    assert t.to_storage(SECRET, KEY.encode()) != stored  # fresh nonce/IV every write


@pytest.mark.parametrize("kind", ["aescbc", "aesgcm", "secretbox"])
def test_tampered_ciphertext_is_an_error(tmp_path: Path, kind: str) -> None:
    t = _secrets(_chain(tmp_path, f"[{_prov(kind, 'key1', KEY_A)}]"))
    stored = bytearray(t.to_storage(SECRET, KEY.encode()))
    if kind == "aescbc":
        stored[-1] ^= 0xFF  # CBC carries no MAC: the last block's padding is what breaks
    else:
        stored[len(stored) // 2 + 10] ^= 0x01
    with pytest.raises(Exception) as e:
        t.from_storage(bytes(stored), KEY.encode())
    assert str(e.value) in ("invalid padding on input", "cipher: message authentication failed",
                            "attempted to decrypt an invalid value")
    with pytest.raises(Exception, match="shorter than the required size"):
        t.from_storage(f"k8s:enc:{kind}:v1:key1:".encode() + b"x", KEY.encode())


def test_gcm_binds_the_storage_key(tmp_path: Path) -> None:
    t = _secrets(_chain(tmp_path, f"[{_prov('aesgcm', 'key1', KEY_A)}]"))
    stored = t.to_storage(SECRET, KEY.encode())
    with pytest.raises(Exception, match="message authentication failed"):
        t.from_storage(stored, b"/registry/secrets/default/other")


def test_first_provider_writes_all_read_and_older_ones_are_stale(tmp_path: Path) -> None:
    old = _secrets(_chain(tmp_path, f"[{_prov('aescbc', 'a', KEY_A)}]"))
    new = _secrets(_chain(tmp_path, f"[{_prov('secretbox', 'b', KEY_B)}, {_prov('aescbc', 'a', KEY_A)}, {{identity: {{}}}}]"))
    by_old = old.to_storage(SECRET, KEY.encode())
    assert new.from_storage(by_old, KEY.encode()) == (SECRET, True)
    assert new.from_storage(SECRET, KEY.encode()) == (SECRET, True)  # plaintext through identity
    assert new.from_storage(new.to_storage(SECRET, KEY.encode()), KEY.encode()) == (SECRET, False)
    with pytest.raises(Exception, match="no matching prefix found"):
        old.from_storage(new.to_storage(SECRET, KEY.encode()), KEY.encode())


def test_identity_refuses_encrypted_bytes(tmp_path: Path) -> None:
    enc = _secrets(_chain(tmp_path, f"[{_prov('aescbc', 'a', KEY_A)}]"))
    plain = _chain(tmp_path, "[{identity: {}}]", "[configmaps]")
    stored = enc.to_storage(SECRET, KEY.encode())
    with pytest.raises(Exception, match="identity transformer tried to read encrypted data"):
        plain.for_resource(("", "secrets")).from_storage(stored, KEY.encode())


def test_key_rotation_pair_fixtures_read_each_other() -> None:
    """upstream's aes-cbc-multiple-keys(.json|-reversed.json) and -providers pairs"""
    for stem, first, second in (("aes-cbc-multiple-keys", b"A:", b"B:"), ("aes-cbc-multiple-providers", b"1:", b"2:")):
        a = load(AES / f"{stem}.json")[1].for_resource(("", "ignored"))
        b = load(AES / f"{stem}-reversed.json")[1].for_resource(("", "ignored"))
        wa, wb = a.to_storage(SECRET, b"ctx"), b.to_storage(SECRET, b"ctx")
        assert wa.startswith(b"k8s:enc:aescbc:v1:" + first) and wb.startswith(b"k8s:enc:aescbc:v1:" + second)
        assert b.from_storage(wa, b"other")[0] == SECRET and a.from_storage(wb, b"ctx")[0] == SECRET


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.new_event_loop().run_until_complete(coro)


def test_store_keeps_only_ciphertext_on_disk_and_plaintext_above(tmp_path: Path) -> None:
    ts = _chain(tmp_path, f"[{_prov('aesgcm', 'k', KEY_A)}]")

    async def body() -> None:
        backend = SQLiteStore(str(tmp_path / "db"))
        store = EncryptingStore(backend, ts, [("/registry/secrets", ("", "secrets")),
                                              ("/registry/configmaps", ("", "configmaps"))])
        watch = await store.watch("/registry/secrets/")
        created = await store.create(KEY, SECRET)
        assert created.value == SECRET
        ev = await watch.__anext__()
        assert ev.kv.value == SECRET
        assert (await store.get(KEY)).value == SECRET  # type: ignore[union-attr]
        assert (await store.range("/registry/secrets/")).kvs[0].value == SECRET
        raw = await backend.get(KEY)
        assert raw is not None and raw.value.startswith(b"k8s:enc:aesgcm:v1:k:")
        await store.create("/registry/configmaps/default/c", b'{"plain":1}')
        assert (await backend.get("/registry/configmaps/default/c")).value == b'{"plain":1}'  # type: ignore[union-attr]
        assert not await store.stale(KEY)
        deleted = await store.delete(KEY)
        assert deleted.value == SECRET
        ev = await watch.__anext__()
        assert ev.type == "DELETE" and ev.prev_kv is not None and ev.prev_kv.value == SECRET
        await store.close()

    _run(body())
    assert b"aHVudGVyMg" not in (tmp_path / "db").read_bytes()
    wal = tmp_path / "db-wal"
    assert not wal.exists() or b"aHVudGVyMg" not in wal.read_bytes()


def test_store_reports_undecryptable_values_and_staleness(tmp_path: Path) -> None:
    old = _chain(tmp_path, f"[{_prov('aescbc', 'a', KEY_A)}]")
    new = _chain(tmp_path, f"[{_prov('secretbox', 'b', KEY_B)}, {_prov('aescbc', 'a', KEY_A)}]")
    lost = _chain(tmp_path, f"[{_prov('secretbox', 'b', KEY_B)}]")
    resources = [("/registry/secrets", ("", "secrets"))]

    async def body() -> None:
        store = EncryptingStore(SQLiteStore(str(tmp_path / "db")), old, resources)
        await store.create(KEY, SECRET)
        await store.create("/registry/secrets/default/old", SECRET)
        store.set_transformers(new)
        assert (await store.get(KEY)).value == SECRET  # type: ignore[union-attr]
        assert await store.stale(KEY)
        kv = await store.update(KEY, SECRET, None)
        assert kv.value == SECRET and not await store.stale(KEY)
        store.set_transformers(old)
        with pytest.raises(TransformError, match='unable to transform key "/registry/secrets/default/s1": '
                                                 'no matching prefix found'):
            await store.get(KEY)
        store.set_transformers(lost)
        # a list keeps going: the undecryptable object is carried as a CorruptKV with upstream's 500
        kvs = (await store.range("/registry/secrets/")).kvs
        assert [type(kv).__name__ for kv in kvs] == ["CorruptKV", "KV"]
        assert kvs[0].key == "/registry/secrets/default/old" and kvs[1].value == SECRET
        assert "no matching prefix found" in str(kvs[0].error)
        await store.close()

    _run(body())


def test_non_registry_prefix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        EncryptingStore(SQLiteStore(str(tmp_path / "db")), _chain(tmp_path, "[{identity: {}}]"),
                        [("/registry/a/b", ("", "x"))])


def test_automatic_reload_swaps_valid_configs_and_keeps_the_old_on_a_bad_edit(tmp_path: Path) -> None:
    from kubegate.storage.encryption.config import load as load_config
    from kubegate.storage.encryption.reload import ConfigReloader

    f = tmp_path / "enc.yaml"
    head = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n"
    f.write_text(head + f"    providers: [{_prov('aescbc', 'a', KEY_A)}]\n")
    cfg, ts = load_config(f)
    store = EncryptingStore(SQLiteStore(str(tmp_path / "db")), ts, [("/registry/secrets", ("", "secrets"))])
    reloader = ConfigReloader(str(f), store, cfg.content_hash)
    assert not reloader.check()
    f.write_text(head + f"    providers: [{_prov('secretbox', 'b', KEY_B)}, {_prov('aescbc', 'a', KEY_A)}]\n")
    assert reloader.check()
    assert store.encrypt(KEY, SECRET).startswith(b"k8s:enc:secretbox:v1:b:")
    f.write_text(head + "    providers: [{aesgcm: {keys: []}}]\n")
    assert not reloader.check()
    assert store.encrypt(KEY, SECRET).startswith(b"k8s:enc:secretbox:v1:b:")
    _run(store.close())
