"""`kubegate secrets-encrypt status|rotate|reencrypt`: key rotation for encryption at rest that
cannot corrupt, while the server serves.

Re-encryption works on the SQLite file directly, beside the running server (WAL lets a second
process in): it swaps each value's bytes for the same plaintext under the new key, by compare-and-
swap on key, revision and old bytes, in short transactions. Nothing a client sees changes (no new
revision, no watch event, the watch cache holds the same plaintext), a concurrent write by the
server simply wins, and it runs at store speed, not at one API round trip per object. It starts only
after the server itself has stored an object with the new writer (one no-op PUT through the API,
which the server turns into a rewrite of stale data), so the server can read everything written.
The config moves only by atomic replacement of the file the server reloads
(`--encryption-provider-config-automatic-reload`); the steps and their resumption are in
storage/encryption/rotation.py.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sqlite3
import ssl
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import orjson
import yaml

from kubegate.api.resources import RESOURCES, Resource
from kubegate.pki.certs import PKIError
from kubegate.pki.kubeconfig import current_cluster, embedded_pem, load_kubeconfig
from kubegate.storage.encryption import rotation as plan
from kubegate.storage.encryption.config import ConfigError, build, load, parse
from kubegate.storage.encryption.transformer import (
    GroupResource,
    PrefixTransformers,
    Transformer,
    TransformerSet,
    TransformFailure,
)
from kubegate.storage.interface import prefix_end

STATE_SUFFIX = ".rotation.json"


# what the server's EncryptingStore uses for a storage prefix no served resource owns
_UNSERVED: GroupResource = ("", "\0")


@dataclass(frozen=True)
class Target:
    """One storage prefix a command covers: a served resource, or stored data no resource serves
    (only `*.` and `*.*` cover it, as in the server)."""
    prefix: str                   # /registry/secrets/
    resource: Resource | None
    writer: bytes                 # the prefix the config's writer gives new values
    transformer: Transformer      # reads every key the config lists

    @property
    def label(self) -> str:
        return self.resource.group_resource if self.resource else self.prefix

    def path(self, key: str) -> str:
        r = self.resource
        assert r is not None
        base = f"/api/{r.version}" if not r.group else f"/apis/{r.group}/{r.version}"
        rest = key[len(self.prefix):]
        if r.namespaced:
            ns, _, name = rest.partition("/")
            return f"{base}/namespaces/{ns}/{r.plural}/{name}"
        return f"{base}/{r.plural}/{rest}"


def targets(raw: dict[str, Any], transformers: TransformerSet, entries: list[int],
            stored_prefixes: Iterable[str]) -> list[Target]:
    """The targets of `entries`: every served resource (one per storage prefix, the first served:
    core Events own /registry/events) and every other prefix found in the store."""
    owners: dict[str, Resource] = {}
    for r in RESOURCES:
        if r.persisted:
            owners.setdefault(r.key_prefix + "/", r)
    prefixes = [(p, (r.group, r.plural)) for p, r in owners.items()]
    prefixes += [(p, _UNSERVED) for p in sorted(set(stored_prefixes) - set(owners))]
    out = []
    for prefix, gr in plan.covered(plan.resource_entries(raw), entries, prefixes):
        t = transformers.for_resource(gr)
        out.append(Target(prefix, owners.get(prefix), t.write_prefix if isinstance(t, PrefixTransformers) else b"", t))
    return out


class RawStore:
    """The SQLite file beside the running server (WAL lets another process in): what is really
    stored. Rewrites replace a value's bytes only when key, revision and old bytes still match, in
    one short transaction per batch; revisions, the change log's order and the plaintext stay."""

    def __init__(self, path: Path, *, writable: bool = False) -> None:
        if not path.exists():
            raise plan.RotationError(f"no store at {path}")
        mode = "rw" if writable else "ro"
        self._db = sqlite3.connect(f"file:{path}?mode={mode}", uri=True, isolation_level=None, timeout=10.0)

    def scan(self, prefix: str) -> Iterator[tuple[str, int, bytes]]:
        yield from self._db.execute("SELECT key, mod_rev, value FROM kv WHERE key >= ? AND key < ? ORDER BY key",
                                    (prefix, prefix_end(prefix)))

    def prefixes(self) -> list[str]:
        """Every `/registry/<name>/` that holds a value."""
        return [p for (p,) in self._db.execute(
            "SELECT DISTINCT substr(key, 1, 10 + instr(substr(key, 11), '/')) FROM kv WHERE key LIKE '/registry/%/%'")]

    def fetch(self, keys: Sequence[str]) -> dict[str, tuple[int, bytes]]:
        out: dict[str, tuple[int, bytes]] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            q = f"SELECT key, mod_rev, value FROM kv WHERE key IN ({','.join('?' * len(chunk))})"
            out.update({k: (rev, v) for k, rev, v in self._db.execute(q, chunk)})
        return out

    def history(self, prefix: str) -> list[tuple[int, str, bytes | None, bytes | None]]:
        """(revision, key, value, previous value) of the change log under `prefix`: watches resuming
        from an older revision decrypt these, so they move to the new key too."""
        return self._db.execute("SELECT rev, key, value, prev_value FROM log WHERE key >= ? AND key < ?",
                                (prefix, prefix_end(prefix))).fetchall()

    def replace(self, rows: Sequence[tuple[str, int, bytes, bytes]]) -> None:
        """(key, revision, old bytes, new bytes): compare-and-swap each; a row the server changed
        meanwhile is left as the server wrote it."""
        self._txn("UPDATE kv SET value = ? WHERE key = ? AND mod_rev = ? AND value = ?",
                  [(new, key, rev, old) for key, rev, old, new in rows])

    def replace_history(self, rows: Sequence[tuple[int, bytes | None, bytes | None, bytes | None, bytes | None]]) -> None:
        """(revision, old value, old previous value, new value, new previous value), compare-and-swap."""
        self._txn("UPDATE log SET value = ?, prev_value = ? WHERE rev = ? AND value IS ? AND prev_value IS ?",
                  [(nv, npv, rev, ov, opv) for rev, ov, opv, nv, npv in rows])

    def _txn(self, sql: str, params: list[tuple[Any, ...]]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(sql, params)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()


def _open(t: Target, key: str, value: bytes) -> bytes:
    """The plaintext, or RotationError: a value no listed key opens is never rewritten or retired."""
    try:
        return t.transformer.from_storage(value, key.encode())[0]
    except TransformFailure as e:
        raise plan.RotationError(f'unable to transform key "{key}": {e}') from None


def _seal(t: Target, key: str, plain: bytes) -> bytes:
    try:
        return t.transformer.to_storage(plain, key.encode())
    except TransformFailure as e:  # a KMS writer: its data keys live in the server's plugin session
        raise plan.RotationError(f"{t.label}: cannot write with {plan.writer_label(t.writer)} here ({e}); "
                                 "KMS-encrypted resources are re-encrypted by the server "
                                 "(kubectl get ... -o json | kubectl replace -f -)") from None


# -- status ------------------------------------------------------------------------------------

def status_rows(store: RawStore, ts: list[Target]) -> list[tuple[str, str, int, bool]]:
    """(resource, key label, objects, is the writer) per key in use, and the writer even when unused."""
    rows = []
    for t in ts:
        counts: dict[str, int] = {}
        for _, _, value in store.scan(t.prefix):
            label = plan.key_label(value)
            counts[label] = counts.get(label, 0) + 1
        writer = plan.writer_label(t.writer)
        counts.setdefault(writer, 0)
        for label in sorted(counts, key=lambda lb: (lb != writer, lb)):
            rows.append((t.label, label, counts[label], label == writer))
    return rows


def cmd_status(a: argparse.Namespace) -> int:
    raw, transformers = _config(a.encryption_provider_config)
    entries = plan.select_entries(raw, _resources(a)) if _resources(a) else list(range(len(raw["resources"])))
    store = RawStore(Path(a.data_dir) / "kubegate.db")
    try:
        rows = status_rows(store, targets(raw, transformers, entries, store.prefixes()))
    finally:
        store.close()
    print(f"{'RESOURCE':<28} {'KEY':<40} {'OBJECTS':>8}  WRITER")
    for res, label, n, w in rows:
        print(f"{res:<28} {label:<40} {n:>8}  {'yes' if w else ''}")
    state = _state_path(a.encryption_provider_config)
    if state.exists():
        st = _load_state(state)
        print(f"rotation to key {st.key_name} in progress (phase {st.phase}): run `kubegate secrets-encrypt rotate` "
              "to finish it")
    return 0


# -- the API client ----------------------------------------------------------------------------

class API:
    """The one write the server itself must make: proof that it stores with the new writer."""

    def __init__(self, kubeconfig: Path) -> None:
        kc = load_kubeconfig(kubeconfig)
        cluster = current_cluster(kc) or {}
        self.server = str(cluster.get("server") or "").rstrip("/")
        ca, crt, key = (embedded_pem(kc, f) for f in
                        ("certificate-authority-data", "client-certificate-data", "client-key-data"))
        if not self.server or ca is None or crt is None or key is None:
            raise PKIError(f"{kubeconfig}: needs a server, certificate-authority-data and an embedded client certificate")
        self.ctx = ssl.create_default_context(cadata=ca.decode())
        with tempfile.TemporaryDirectory() as d:  # ssl loads keys from files only; mode 0700, removed at once
            cf, kf = Path(d) / "c", Path(d) / "k"
            cf.write_bytes(crt)
            kf.touch(0o600)
            kf.write_bytes(key)
            self.ctx.load_cert_chain(cf, kf)

    async def put(self, path: str, body: bytes) -> int:
        """PUT one object; its HTTP status (409/404: it changed or went meanwhile, and that is fine)."""
        import aiohttp
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.ctx)) as s:
            async with s.put(self.server + path, data=body, headers={"Content-Type": "application/json"}) as r:
                text = await r.read()
                if r.status not in (200, 404, 409):
                    msg = orjson.loads(text).get("message", "") if text.startswith(b"{") else text[:200]
                    raise plan.RotationError(f"PUT {path}: {r.status} {msg}")
                return r.status


class Bar:
    """A progress bar on a terminal; a line a second (and the last) otherwise."""

    def __init__(self, total: int, label: str, out: TextIO) -> None:
        self.total, self.label, self.out, self.done = total, label, out, 0
        self.t0 = self.shown = time.monotonic()

    def add(self, n: int) -> None:
        self.done += n
        now, tty = time.monotonic(), self.out.isatty()
        if not tty and self.done < self.total and now - self.shown < 1.0:
            return
        self.shown = now
        width = 30
        fill = width * self.done // max(self.total, 1)
        rate = self.done / max(now - self.t0, 1e-6)
        end = "\r" if tty and self.done < self.total else "\n"
        self.out.write(f"[{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} {self.label} {rate:,.0f}/s{end}")
        self.out.flush()


async def await_writer(api: API, store: RawStore, t: Target, timeout: float) -> bool:
    """Have the server rewrite one object of `t` until it stores it with `t.writer`: only then may
    this process write values the server must read. False when `t` stores nothing to prove it with."""
    t0 = time.monotonic()
    while True:
        key, rev, value = next(iter(store.scan(t.prefix)), ("", 0, b""))
        if not key:
            return False
        if plan.written_by(value, t.writer):
            return True  # the server, or an earlier run after the server proved it, wrote it
        if time.monotonic() - t0 > timeout:
            raise plan.RotationError(
                f"the server still writes {t.label} with another key than {plan.writer_label(t.writer)} after "
                f"{timeout:g}s: start it with --encryption-provider-config-automatic-reload (or restart it), "
                "then run the command again")
        obj = orjson.loads(_open(t, key, value))
        obj["metadata"]["resourceVersion"] = str(rev)
        await api.put(t.path(key), orjson.dumps(obj))
        row = store.fetch([key]).get(key)
        if row is not None and not plan.written_by(row[1], t.writer):
            await asyncio.sleep(0.25)


def reencrypt_objects(store: RawStore, t: Target, batch: int, out: TextIO) -> int:
    """Rewrite every stored object of `t` not written by its writer, batch by batch, and check each
    one reads back to the same plaintext. Returns how many were rewritten."""
    done = 0
    while True:
        pending = [(k, rev, v) for k, rev, v in store.scan(t.prefix) if not plan.written_by(v, t.writer)]
        if not pending:
            return done
        bar = Bar(len(pending), t.label, out)
        moved = 0
        for i in range(0, len(pending), batch):
            rows, plain = [], {}
            for key, rev, value in pending[i:i + batch]:
                plain[key] = _open(t, key, value)
                rows.append((key, rev, value, _seal(t, key, plain[key])))
            store.replace(rows)
            now = store.fetch(list(plain))
            for key, _, _, new in rows:
                row = now.get(key)
                if row is None or (plan.written_by(row[1], t.writer)
                                   and (row[1] != new or _open(t, key, new) == plain[key])):
                    moved += 1  # gone, rewritten by the server meanwhile, or ours and reads back the same
                elif row[1] == new:
                    raise plan.RotationError(f'key "{key}" does not read back after re-encryption')
            bar.add(len(rows))
        done += moved
        if not moved:
            raise plan.RotationError(f"{t.label}: objects keep being written with an old key")


def reencrypt_history(store: RawStore, t: Target, out: TextIO) -> int:
    """Move the change log's values under `t` to the writer; entries no listed key opens (written
    under a key removed before) are reported and left, as nothing can read them anyway."""
    rows, unreadable = [], 0
    for rev, key, value, prev in store.history(t.prefix):
        new: list[bytes | None] = []
        for v in (value, prev):
            if v is None or plan.written_by(v, t.writer):
                new.append(v)
                continue
            try:
                plain = t.transformer.from_storage(v, key.encode())[0]
            except TransformFailure:
                unreadable += 1
                new.append(v)
                continue
            new.append(_seal(t, key, plain))
        if new != [value, prev]:
            rows.append((rev, value, prev, new[0], new[1]))
    for i in range(0, len(rows), 500):
        store.replace_history(rows[i:i + 500])
    if unreadable:
        out.write(f"warning: {unreadable} history entries of {t.label} no listed key opens\n")
    return len(rows)


async def reencrypt(api: API, store: RawStore, ts: list[Target], *, batch: int, reload_timeout: float,
                    out: TextIO) -> int:
    """Every covered object and history entry onto its writer, once the server writes with it.
    Data no served resource owns moves only to a writer proven on a served resource."""
    total, proven = 0, set()
    for t in sorted(ts, key=lambda t: t.resource is None):
        t0 = time.monotonic()
        if t.resource is not None:
            if await await_writer(api, store, t, reload_timeout):
                proven.add(t.writer)
        elif t.writer not in proven and any(not plan.written_by(v, t.writer) for _, _, v in store.scan(t.prefix)):
            raise plan.RotationError(f"{t.prefix}: no served resource shows the server writing with "
                                     f"{plan.writer_label(t.writer)}; restart the server with this config and run "
                                     "the command again")
        t1 = time.monotonic()
        n = reencrypt_objects(store, t, batch, out)
        h = reencrypt_history(store, t, out)
        dt = time.monotonic() - t1
        total += n
        if n or h:
            out.write(f"{t.label}: {n} objects and {h} history entries re-encrypted and verified in {dt:.2f}s "
                      f"({n / max(dt, 1e-6):,.0f} objects/s; {t1 - t0:.2f}s waiting for the server's writer)\n")
    return total


def unreadable(store: RawStore, ts: list[Target]) -> list[str]:
    """Stored keys the targets' transformers cannot read: checked under the retiring config before
    it is written, so retiring never makes an object unreadable."""
    bad = []
    for t in ts:
        for key, _, value in store.scan(t.prefix):
            try:
                t.transformer.from_storage(value, key.encode())
            except TransformFailure:
                bad.append(key)
    return bad


def remaining(store: RawStore, ts: list[Target]) -> dict[str, int]:
    """Objects per resource not yet written by the writer."""
    counts = {t.label: sum(1 for _, _, v in store.scan(t.prefix) if not plan.written_by(v, t.writer))
              for t in ts}
    return {k: n for k, n in counts.items() if n}


# -- files -------------------------------------------------------------------------------------

def atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` so a crash leaves either the old or the new content, never a torn file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError:
        os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _state_path(config: str) -> Path:
    return Path(config + STATE_SUFFIX)


def _load_state(path: Path) -> plan.RotationState:
    try:
        return plan.RotationState.from_json(orjson.loads(path.read_bytes()))
    except orjson.JSONDecodeError as e:
        raise plan.RotationError(f"rotation state {path} is damaged: {e}") from None


def _save_state(path: Path, state: plan.RotationState) -> None:
    atomic_write(path, orjson.dumps(state.to_json()), 0o600)


def _config(path: str) -> tuple[dict[str, Any], TransformerSet]:
    _, transformers = load(path)  # validates exactly as the server does
    raw = yaml.safe_load(Path(path).read_bytes())
    return raw, transformers


def _resources(a: argparse.Namespace) -> list[str]:
    return [r.strip() for item in (a.resources or []) for r in item.split(",") if r.strip()]


# -- rotate / reencrypt ------------------------------------------------------------------------

def _new_state(a: argparse.Namespace, cfg_path: Path) -> plan.RotationState:
    original = cfg_path.read_bytes()
    raw, _ = _config(str(cfg_path))
    entries = plan.select_entries(raw, _resources(a))
    if not entries:
        raise plan.RotationError("no encrypted resources to rotate (name them with --resources to start encrypting)")
    name = "key-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    secrets = {i: base64.b64encode(os.urandom(32)).decode() for i in entries}
    with_new, retired = plan.rotation_configs(raw, entries, name, secrets, a.provider)
    return plan.RotationState(plan.PLANNED, name, entries, original.decode(),
                              plan.dump_config(with_new).decode(), plan.dump_config(retired).decode())


def _run(a: argparse.Namespace, config: bytes, entries: list[int], retiring: bytes | None = None) -> int:
    """Re-encrypt what `entries` of `config` cover and check it all reads under `retiring` (when given)."""
    raw, transformers = yaml.safe_load(config), build(parse(config, a.encryption_provider_config))
    store = RawStore(Path(a.data_dir) / "kubegate.db", writable=True)
    try:
        api = API(Path(a.kubeconfig or Path(a.data_dir) / "admin.conf"))
        ts = targets(raw, transformers, entries, store.prefixes())
        t0 = time.monotonic()
        n = asyncio.run(reencrypt(api, store, ts, batch=a.batch_size, reload_timeout=a.reload_timeout,
                                  out=sys.stderr))
        left = remaining(store, ts)
        if left:
            raise plan.RotationError("objects still on an old key: " + ", ".join(f"{k} {v}" for k, v in left.items()))
        if retiring is not None:
            bad = unreadable(store, targets(yaml.safe_load(retiring), build(parse(retiring, "retiring config")),
                                            entries, store.prefixes()))
            if bad:
                raise plan.RotationError(f"{len(bad)} objects would not read without the old keys, e.g. {bad[0]}")
    finally:
        store.close()
    print(f"re-encrypted and verified {n} objects in {time.monotonic() - t0:.1f}s")
    return n


def cmd_rotate(a: argparse.Namespace) -> int:
    cfg_path = Path(a.encryption_provider_config)
    state_path = _state_path(str(cfg_path))
    if state_path.exists():
        state = _load_state(state_path)
        print(f"resuming the rotation to key {state.key_name} (phase {state.phase})")
    else:
        state = _new_state(a, cfg_path)
        _save_state(state_path, state)  # the new key exists on disk before any config names it
    mode = cfg_path.stat().st_mode & 0o777
    action = plan.next_action(state, cfg_path.read_bytes())
    if action == plan.WRITE_WITH_NEW:
        atomic_write(cfg_path, state.with_new.encode(), mode)
        print(f"added key {state.key_name} as the writer in {cfg_path}")
        action = plan.REENCRYPT
    if action == plan.REENCRYPT:
        state.phase = plan.WRITER
        _save_state(state_path, state)
        _run(a, cfg_path.read_bytes(), state.entries, state.retired.encode())
        state.phase = plan.VERIFIED
        _save_state(state_path, state)
        action = plan.WRITE_RETIRED
    if action == plan.WRITE_RETIRED:
        atomic_write(cfg_path, state.retired.encode(), mode)
    state_path.unlink()
    print(f"rotation complete: every object uses key {state.key_name}; the old keys are retired from {cfg_path}")
    return 0


def cmd_reencrypt(a: argparse.Namespace) -> int:
    if _state_path(a.encryption_provider_config).exists():
        raise plan.RotationError("a rotation is in progress: finish it with `kubegate secrets-encrypt rotate`")
    raw, _ = _config(a.encryption_provider_config)
    entries = plan.select_entries(raw, _resources(a)) if _resources(a) else list(range(len(raw["resources"])))
    _run(a, Path(a.encryption_provider_config).read_bytes(), entries)
    return 0


def _guard(fn: Any) -> Any:
    def run(a: argparse.Namespace) -> int:
        try:
            return int(fn(a))
        except (plan.RotationError, ConfigError, PKIError, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        except Exception as e:  # aiohttp connection errors: the server is not reachable
            if type(e).__module__.startswith("aiohttp"):
                print(f"error: cannot reach the server: {e}", file=sys.stderr)
                return 1
            raise
    return run


def add_commands(sub: Any) -> None:
    p = sub.add_parser("secrets-encrypt", help="show, rotate and re-apply the keys of encryption at rest")
    cmds = p.add_subparsers(dest="action", required=True)
    for name, fn, help_ in (
        ("status", cmd_status, "objects per key, per resource"),
        ("rotate", cmd_rotate, "add a new key as the writer, re-encrypt and verify everything, retire the old key "
                               "(resumes an interrupted rotation)"),
        ("reencrypt", cmd_reencrypt, "rewrite every object not written by the config's current writer"),
    ):
        c = cmds.add_parser(name, help=help_)
        c.add_argument("--data-dir", type=Path, required=True, help="the server's data directory")
        c.add_argument("--encryption-provider-config", required=True,
                       help="the server's EncryptionConfiguration (rotate rewrites it atomically)")
        c.add_argument("--resources", action="append", default=[],
                       help="resources to cover, comma-separated or repeated (default: every encrypted resource)")
        if name != "status":
            c.add_argument("--kubeconfig", default="", help="credentials for the writes (default DIR/admin.conf)")
            c.add_argument("--batch-size", type=int, default=200,
                           help="objects per transaction (the server waits for the store while one commits)")
            c.add_argument("--reload-timeout", type=float, default=60.0,
                           help="seconds to wait for the server to take up a new writer")
        if name == "rotate":
            c.add_argument("--provider", choices=plan.KEYED, default=None,
                           help="type of the new key (default: the current writer's; aescbc for plaintext)")
        c.set_defaults(func=_guard(fn))
