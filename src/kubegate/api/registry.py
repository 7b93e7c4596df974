"""The generic registry: API semantics over the revisioned store for one resource.

This is where upstream's genericregistry.Store behaviour lives: uid and timestamps on create,
resourceVersion from the store's revision, optimistic concurrency, generation, status
subresources, finalizers and graceful deletion, dry run. Reads come from the watch cache.
"""
from __future__ import annotations

import base64
import copy
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import orjson

from kubegate.api import errors
from kubegate.api.objects import generate_name, meta, new_uid, now_rfc3339
from kubegate.api.resources import Resource
from kubegate.storage.cache import WatchCache
from kubegate.storage.interface import (
    KV, CompactedError, ConflictError, KeyExistsError, KeyNotFoundError, Store,
)

# Kinds whose DELETE answers with the object rather than a Status (upstream ReturnDeletedObject).
_RETURNS_DELETED_OBJECT = {"pods", "services"}
# Kinds whose metadata.generation follows spec changes.
_NO_GENERATION = {"configmaps", "secrets", "serviceaccounts", "events", "leases", "roles", "clusterroles",
                  "rolebindings", "clusterrolebindings", "namespaces", "nodes", "limitranges"}
_NOT_SPEC = {"metadata", "status", "apiVersion", "kind"}


def kept(data: bytes) -> bytes:
    """`data` in a bytes object of its own size. orjson.dumps returns its whole write buffer (8 KiB for
    any smaller object); what the watch cache keeps for every object (the stored value, the API JSON)
    would otherwise hold five times its length."""
    return memoryview(data).tobytes()


class Decoded:
    """One decoding of a stored object version, serialized at most once for the readers sharing it."""

    __slots__ = ("obj", "_json")

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self._json: bytes | None = None

    def json(self) -> bytes:
        if self._json is None:
            self._json = kept(orjson.dumps(self.obj))
        return self._json


def decode_kv(kv: KV) -> Decoded:
    obj = orjson.loads(kv.value)
    obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
    return Decoded(obj)


def encode_obj(obj: dict[str, Any]) -> bytes:
    m = obj.get("metadata") or {}
    if "resourceVersion" in m:
        obj = dict(obj)
        obj["metadata"] = {k: v for k, v in m.items() if k != "resourceVersion"}
    return kept(orjson.dumps(obj))


@dataclass
class ListResult:
    items: list[Decoded]
    resource_version: int
    continue_token: str = ""
    remaining: int | None = None


Hook = Callable[[Resource, dict[str, Any], dict[str, Any] | None], None]
# Validating admission for one write: (object to store or None for a delete, stored object or None),
# called after the object's validation and before the store, raising the plugin's StatusError.
AdmitHook = Callable[[dict[str, Any] | None, dict[str, Any] | None], Awaitable[None]]


_NAME_GENERATION_ATTEMPTS = 8


class ResourceRegistry:
    """CRUD with upstream semantics for one resource over a shared store and cache set."""

    def __init__(self, resource: Resource, store: Store, cache: WatchCache,
                 prepare: Hook, validate: Hook) -> None:
        self.resource = resource
        self.store = store
        self.cache = cache
        self._prepare = prepare      # defaulting (mutates)
        self._validate = validate    # raises StatusError 422
        # Consumers that must see a write before it is acknowledged (the RBAC index, the node graph,
        # the revocation set) each wait here for its revision.
        self.after_write: list[Callable[[int], Awaitable[None]]] = []
        # Whether the stored value at a key predates the current encryption writer (set when encrypting).
        self.stale: Callable[[str], Awaitable[bool]] | None = None
        # A resource served from another one's storage (events.k8s.io from core events)
        # converts on the way out (view) and in (to_storage).
        self.view: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.to_storage: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        # A resource whose write paths change only their part of it (the CSR strategies): prepares the
        # merged object for (subresource) and returns the causes that path's update rules find.
        self.update_strategy: Callable[[dict[str, Any], dict[str, Any], str, str], list[errors.Cause]] | None = None

    def present(self, d: Decoded) -> Decoded:
        return d if self.view is None else Decoded(self.view(d.obj))

    def _encode(self, obj: dict[str, Any]) -> bytes:
        return encode_obj(obj if self.to_storage is None else self.to_storage(obj))

    # -- reads -------------------------------------------------------------------------------

    async def get(self, namespace: str | None, name: str) -> Decoded:
        entry = self.cache.get(self.resource.key(namespace, name))
        if entry is None:
            raise errors.not_found(self.resource.plural, name, self.resource.group)
        return self.present(entry.object)

    def get_cached(self, namespace: str | None, name: str) -> Decoded | None:
        entry = self.cache.get(self.resource.key(namespace, name))
        return None if entry is None else self.present(entry.object)

    async def list(self, namespace: str | None, *, limit: int = 0, continue_token: str = "",
                   match: Callable[[dict[str, Any]], bool] | None = None,
                   resource_version: str = "", rv_match: str = "") -> ListResult:
        prefix = self.resource.list_prefix(namespace)
        start_after: str | None = None
        revision = 0
        if continue_token:
            revision, start_after = _decode_continue(continue_token, prefix)
        elif resource_version and rv_match == "Exact":
            revision = _parse_rv(resource_version)
        if revision:
            return await self._list_at(prefix, revision, start_after, limit, match)
        await self.cache.wait_for_revision(await self.store.current_revision())
        items: list[Decoded] = []
        entries, rev, _ = self.cache.list(prefix)
        last_key = ""
        count = 0
        for e in entries:
            d = self.present(e.object)
            if match is not None and not match(d.obj):
                continue
            if limit and len(items) >= limit:
                count += 1
                continue
            items.append(d)
            last_key = e.kv.key
        token = _encode_continue(rev, last_key[len(prefix) - 1:]) if limit and count else ""
        return ListResult(items, rev, token, count if token else None)

    async def _list_at(self, prefix: str, revision: int, start_after: str | None, limit: int,
                       match: Callable[[dict[str, Any]], bool] | None) -> ListResult:
        try:
            res = await self.store.range(prefix, start_after=start_after, revision=revision)
        except CompactedError:
            if start_after is None:
                raise errors.gone("The resourceVersion for the provided list is too old.") from None
            err = errors.gone(_CONTINUE_EXPIRED)
            err.list_continue = _encode_continue(-1, start_after[len(prefix) - 1:])
            raise err from None
        items = []
        last_key = ""
        remaining = 0
        for kv in res.kvs:
            d = self.present(decode_kv(kv))
            if match is not None and not match(d.obj):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                continue
            items.append(d)
            last_key = kv.key
        token = _encode_continue(revision, last_key[len(prefix) - 1:]) if limit and remaining else ""
        return ListResult(items, revision, token, remaining if token else None)

    # -- writes ------------------------------------------------------------------------------

    async def create(self, obj: dict[str, Any], *, namespace: str | None, dry_run: bool = False,
                     admit: AdmitHook | None = None) -> Decoded:
        m = meta(obj)
        if m.get("name") or not m.get("generateName"):
            return await self._create(obj, namespace=namespace, dry_run=dry_run, admit=admit)
        # A generated name may collide: upstream (RetryGenerateName) tries up to 8 fresh names.
        for _ in range(_NAME_GENERATION_ATTEMPTS - 1):
            try:
                return await self._create(copy.deepcopy(obj), namespace=namespace, dry_run=dry_run, admit=admit)
            except errors.StatusError as e:
                if e.reason != "AlreadyExists":
                    raise
        return await self._create(obj, namespace=namespace, dry_run=dry_run, admit=admit)

    async def _create(self, obj: dict[str, Any], *, namespace: str | None, dry_run: bool,
                      admit: AdmitHook | None) -> Decoded:
        r = self.resource
        m = meta(obj)
        if r.namespaced:
            m["namespace"] = namespace
        else:
            m.pop("namespace", None)
        if not m.get("name") and m.get("generateName"):
            m["name"] = generate_name(m["generateName"])
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            m.pop(k, None)
        m["uid"] = new_uid()
        m["creationTimestamp"] = now_rfc3339()
        if r.has_status:
            obj.pop("status", None)
        if r.plural not in _NO_GENERATION:
            m["generation"] = 1
        if r.plural == "namespaces":
            # Only on create: the finalizer may be removed later through /finalize.
            fins = obj.setdefault("spec", {}).setdefault("finalizers", [])
            if "kubernetes" not in fins:
                fins.append("kubernetes")
        self._prepare(r, obj, None)
        self._validate(r, obj, None)
        if admit is not None:
            await admit(obj, None)
        key = r.key(namespace, m["name"])
        if dry_run:
            if self.cache.get(key) is not None:
                raise errors.already_exists(r.plural, m["name"], r.group)
            return Decoded(obj)
        try:
            kv = await self.store.create(key, self._encode(obj))
        except KeyExistsError:
            raise errors.already_exists(r.plural, m["name"], r.group) from None
        return await self._after_write(kv)

    async def update(self, obj: dict[str, Any], *, namespace: str | None, name: str,
                     subresource: str = "", dry_run: bool = False,
                     old: Decoded | None = None, admit: AdmitHook | None = None) -> Decoded:
        """PUT semantics: optimistic concurrency on metadata.resourceVersion when given."""
        r = self.resource
        current = old or await self.get(namespace, name)
        cur = current.obj
        m = meta(obj)
        want_rv = m.get("resourceVersion") or ""
        if want_rv and want_rv != cur["metadata"]["resourceVersion"]:
            raise errors.conflict(r.plural, name, _MODIFIED, r.group)
        new = self._merge_for_update(obj, cur, subresource)
        if self.update_strategy is not None:
            causes = self.update_strategy(new, cur, subresource, now_rfc3339())
            if causes:
                raise errors.invalid(r.kind, name, causes, r.group)
        self._prepare(r, new, cur)
        if subresource != "binding":  # upstream's BindingREST writes spec.nodeName past the pod update rules
            self._validate(r, new, cur)
        if admit is not None:
            await admit(new, cur)
        return await self._write(new, cur, namespace, name, dry_run)

    def _merge_for_update(self, obj: dict[str, Any], cur: dict[str, Any], subresource: str) -> dict[str, Any]:
        r = self.resource
        if subresource in ("status", "approval"):
            # Status-like subresources change only their part of the object.
            new = copy.deepcopy(cur)
            new["status"] = copy.deepcopy(obj.get("status", {}))
            if subresource == "approval":
                new["status"] = dict(cur.get("status") or {})
                conds = (obj.get("status") or {}).get("conditions")
                if conds is not None:
                    new["status"]["conditions"] = conds
            return new
        if subresource == "finalize":
            new = copy.deepcopy(cur)
            new.setdefault("spec", {})["finalizers"] = list((obj.get("spec") or {}).get("finalizers") or [])
            return new
        new = obj
        m = meta(new)
        cm = cur["metadata"]
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if k in cm:
                m[k] = cm[k]
            else:
                m.pop(k, None)
        if r.namespaced:
            m["namespace"] = cm.get("namespace")
        if r.plural == "namespaces":
            # spec.finalizers changes only through the finalize subresource
            new.setdefault("spec", {})["finalizers"] = copy.deepcopy((cur.get("spec") or {}).get("finalizers", []))
        if r.has_status and subresource == "":
            if "status" in cur:
                new["status"] = copy.deepcopy(cur["status"])
            else:
                new.pop("status", None)
        if r.plural not in _NO_GENERATION and _spec_changed(new, cur):
            m["generation"] = int(cm.get("generation") or 0) + 1
        return new

    async def _write(self, new: dict[str, Any], cur: dict[str, Any], namespace: str | None, name: str,
                     dry_run: bool) -> Decoded:
        r = self.resource
        key = r.key(namespace, name)
        cm = cur["metadata"]
        new["metadata"]["resourceVersion"] = cm["resourceVersion"]
        if new == cur and not (self.stale is not None and not dry_run and await self.stale(key)):
            # A no-op update writes nothing and keeps the resourceVersion, as upstream, unless the stored
            # value was not written by the current encryption writer (upstream rewrites stale data).
            return Decoded(cur)
        if dry_run:
            return Decoded(new)
        if new["metadata"].get("deletionTimestamp") and not _pending_finalizers(r, new):
            return await self._delete_now(key, int(cm["resourceVersion"]), new)
        try:
            kv = await self.store.update(key, self._encode(new), int(cm["resourceVersion"]))
        except ConflictError:
            raise errors.conflict(r.plural, name, _MODIFIED, r.group) from None
        except KeyNotFoundError:
            raise errors.not_found(r.plural, name, r.group) from None
        return await self._after_write(kv)

    async def guaranteed_update(self, namespace: str | None, name: str,
                                mutate: Callable[[dict[str, Any]], dict[str, Any]],
                                *, subresource: str = "", dry_run: bool = False,
                                admit: AdmitHook | None = None) -> Decoded:
        """Read-modify-write that retries on conflict (PATCH and controllers use it)."""
        for _ in range(16):
            current = await self.get(namespace, name)
            new = mutate(copy.deepcopy(current.obj))
            want_rv = (new.get("metadata") or {}).get("resourceVersion")
            if want_rv and want_rv != current.obj["metadata"]["resourceVersion"]:
                raise errors.conflict(self.resource.plural, name, _MODIFIED, self.resource.group)
            new["metadata"]["resourceVersion"] = current.obj["metadata"]["resourceVersion"]
            try:
                return await self.update(new, namespace=namespace, name=name, subresource=subresource,
                                         dry_run=dry_run, old=current, admit=admit)
            except errors.StatusError as e:
                if e.reason != "Conflict" or want_rv:
                    raise
        raise errors.conflict(self.resource.plural, name, _MODIFIED, self.resource.group)

    async def delete(self, namespace: str | None, name: str, *, options: dict[str, Any] | None = None,
                     dry_run: bool = False, admit: AdmitHook | None = None) -> tuple[Decoded, bool]:
        """Returns (object, deleted_now). Objects with finalizers are only marked for deletion."""
        r = self.resource
        options = options or {}
        current = await self.get(namespace, name)
        cur = current.obj
        cm = cur["metadata"]
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != cm.get("uid"):
            raise errors.conflict(
                r.plural, name,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {cm.get('uid')}",
                r.group)
        if pre.get("resourceVersion") and pre["resourceVersion"] != cm.get("resourceVersion"):
            raise errors.conflict(
                r.plural, name,
                "Precondition failed: ResourceVersion in precondition: "
                f"{pre['resourceVersion']}, ResourceVersion in object meta: {cm.get('resourceVersion')}",
                r.group)
        if admit is not None:
            await admit(None, cur)
        finalizers = list(cm.get("finalizers") or [])
        policy = options.get("propagationPolicy") or ""
        if options.get("orphanDependents") is True:
            policy = "Orphan"
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        elif policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        if finalizers or _pending_finalizers(r, cur):
            if cm.get("deletionTimestamp"):
                return current, False
            new = copy.deepcopy(cur)
            nm = new["metadata"]
            nm["deletionTimestamp"] = now_rfc3339()
            nm["deletionGracePeriodSeconds"] = 0
            if finalizers:
                nm["finalizers"] = finalizers
            if r.plural == "namespaces":
                new.setdefault("status", {})["phase"] = "Terminating"
            if dry_run:
                return Decoded(new), False
            try:
                kv = await self.store.update(r.key(namespace, name), self._encode(new), int(cm["resourceVersion"]))
            except ConflictError:
                raise errors.conflict(r.plural, name, _MODIFIED, r.group) from None
            return await self._after_write(kv), False
        if dry_run:
            return current, True
        return await self._delete_now(r.key(namespace, name), int(cm["resourceVersion"]), cur), True

    async def _delete_now(self, key: str, rev: int, obj: dict[str, Any]) -> Decoded:
        try:
            gone = await self.store.delete(key, rev)
        except ConflictError:
            raise errors.conflict(self.resource.plural, obj["metadata"]["name"], _MODIFIED,
                                  self.resource.group) from None
        except KeyNotFoundError:
            raise errors.not_found(self.resource.plural, obj["metadata"]["name"], self.resource.group) from None
        await self.cache.wait_for_revision(gone.mod_revision)
        for wait in self.after_write:
            await wait(gone.mod_revision)
        return Decoded(obj)

    def delete_status(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """The body of a successful immediate DELETE: the object, or upstream's Success Status."""
        if self.resource.plural in _RETURNS_DELETED_OBJECT:
            return None
        m = obj["metadata"]
        details: dict[str, Any] = {"name": m["name"]}
        if self.resource.group:
            details["group"] = self.resource.group
        details["kind"] = self.resource.plural
        details["uid"] = m.get("uid", "")
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    async def _after_write(self, kv: KV) -> Decoded:
        # Read-your-writes: the cache must hold this revision before we answer.
        await self.cache.wait_for_revision(kv.mod_revision)
        for wait in self.after_write:
            await wait(kv.mod_revision)
        entry = self.cache.get(kv.key)
        if entry is not None and entry.kv.mod_revision == kv.mod_revision:
            return self.present(entry.object)
        return self.present(decode_kv(kv))


_CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new "
    "list without the continue parameter, or use the continue token in this response to retrieve the "
    "remainder of the results. Continuing with the provided token results in an inconsistent list - objects "
    "that were created, modified, or deleted between the time the first chunk was returned and now may show "
    "up in the list.")
_MODIFIED = "the object has been modified; please apply your changes to the latest version and try again"


def _pending_finalizers(r: Resource, obj: dict[str, Any]) -> bool:
    """Whether anything still holds the object: metadata finalizers, or a namespace's spec ones."""
    if obj["metadata"].get("finalizers"):
        return True
    return r.plural == "namespaces" and bool((obj.get("spec") or {}).get("finalizers"))


def _spec_changed(new: dict[str, Any], cur: dict[str, Any]) -> bool:
    keys = (set(new) | set(cur)) - _NOT_SPEC
    return any(new.get(k) != cur.get(k) for k in keys)


def _parse_rv(rv: str) -> int:
    try:
        n = int(rv)
    except ValueError:
        raise errors.bad_request(f'resourceVersion: Invalid value: "{rv}": must be a valid resourceVersion') from None
    return n


def _encode_continue(rv: int, start_after: str) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start_after + "\x00"})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str, prefix: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        raise errors.bad_request("invalid continue token: continue key is not valid: illegal base64 data") from None
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError:
        ch = raw[:1].decode("latin-1")
        raise errors.bad_request(
            f"invalid continue token: continue key is not valid: invalid character {_go_char(ch)} "
            "looking for beginning of value") from None
    if not isinstance(d, dict) or d.get("v") != "meta.k8s.io/v1" or not isinstance(d.get("rv"), int):
        raise errors.bad_request("invalid continue token: continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    start = str(d.get("start", ""))
    if start.endswith("\x00"):
        start = start[:-1]
    return d["rv"], prefix[:-1] + start


def _go_char(ch: str) -> str:
    if ch.isprintable() and ord(ch) < 128:
        return repr(ch)
    return "'\\x%02x'" % ord(ch)
