"""REST handlers for resource requests: get, list, watch, create, update, patch, delete."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

from aiohttp import web

from kubegate.admission.chain import AdmissionChain
from kubegate.admission.interface import CREATE, DELETE, UPDATE, AdmissionRequest, validating_name
from kubegate.api import defaults, errors, patch as patching, selectors, tables, warnings as strategy_warnings
from kubegate.api.errors import StatusError
from kubegate.api.registry import AdmitHook, Decoded, ResourceRegistry
from kubegate.api.resources import Resource
from kubegate.authn.user import UserInfo
from kubegate.server import scale
from kubegate.server.bodies import FIELD_VALIDATION, decode_object, read_body
from kubegate.server.negotiation import Output, decode_body, negotiate_object
from kubegate.server.requestinfo import RequestInfo
from kubegate.server.responses import WARNINGS, object_response
from kubegate.server.watch import serve_watch


SubresourceCreator = Callable[["Request", dict[str, Any]], Awaitable[tuple[dict[str, Any], list[str]]]]


@dataclass
class Request:
    """What a REST handler needs from one HTTP request."""

    http: web.Request
    info: RequestInfo
    resource: Resource
    user: UserInfo
    query: Mapping[str, str]

    @property
    def namespace(self) -> str | None:
        return self.info.namespace if self.resource.namespaced else None


class RESTHandler:
    def __init__(self, registries: dict[tuple[str, str, str], ResourceRegistry], admission: AdmissionChain,
                 patch_meta: Callable[[Resource], patching.PatchMeta]) -> None:
        self.registries = registries
        self.admission = admission
        self.patch_meta = patch_meta
        # Create-only subresources served by their own modules, keyed (plural, subresource); the
        # handler gets the decoded body (of the subresource's kind) and returns (object, warnings).
        self.subresource_creators: dict[tuple[str, str], SubresourceCreator] = {}

    def registry(self, r: Resource) -> ResourceRegistry:
        return self.registries[(r.group, r.version, r.plural)]

    # -- admission ---------------------------------------------------------------------------

    def _attributes(self, req: Request, operation: str, obj: dict[str, Any] | None, old: dict[str, Any] | None,
                    *, name: str, dry_run: bool, options: dict[str, Any] | None = None,
                    namespace: str | None = None) -> AdmissionRequest:
        ns = namespace if namespace is not None else req.namespace
        return AdmissionRequest(operation, req.resource, ns or "", name, req.user, obj, old,
                                subresource=req.info.subresource, dry_run=dry_run, options=options or {})

    async def _mutate(self, req: Request, areq: AdmissionRequest) -> None:
        """The mutating phase (and the guards after it)."""
        try:
            await self.admission.admit(areq)
        except StatusError:
            _record(req, areq)
            raise

    def _validating(self, req: Request, areq: AdmissionRequest) -> AdmitHook:
        """The validating phase, run by the registry after the object's validation and before the write
        (inside its retry loop), on the object as it will be stored."""
        async def validate(obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
            areq.obj, areq.old = obj, old
            areq.name = validating_name(areq)
            if obj is not None and not req.info.subresource:
                # The strategy's warnings come between the mutating and the validating phase, as upstream's.
                areq.warnings += strategy_warnings.for_write(req.resource, obj, old)
            try:
                await self.admission.validate(areq)
            except StatusError:
                _record(req, areq)
                raise
        return validate

    @staticmethod
    def _admitted(areq: AdmissionRequest, warnings: list[str]) -> list[str]:
        """A successful write answers with the decoder's warnings, then admission's."""
        return warnings + areq.warnings

    async def serve(self, req: Request) -> web.StreamResponse:
        r = req.resource
        info = req.info
        sub = info.subresource
        if sub and r.subresource(sub) is None:
            raise errors.not_found_resource()
        verb = info.verb
        if r.namespaced and not info.namespace and verb not in ("list", "watch"):
            raise errors.not_found_resource()
        allowed = r.subresource(sub).verbs if sub else r.verbs
        if verb not in allowed or (verb == "create" and info.name and not sub) or (
                verb in ("update", "patch") and not info.name):
            raise errors.method_not_allowed()
        if verb == "get":
            return await self.get(req)
        if verb == "list":
            return await self.list(req)
        if verb == "watch":
            return await self.watch(req)
        if verb == "create":
            return await self.create(req)
        if verb == "update":
            return await self.update(req)
        if verb == "patch":
            return await self.patch(req)
        if verb == "delete":
            return await self.delete(req)
        if verb == "deletecollection":
            return await self.delete_collection(req)
        raise errors.method_not_allowed()

    # -- reads -------------------------------------------------------------------------------

    async def get(self, req: Request) -> web.StreamResponse:
        out = negotiate_object(req.http.headers.get("Accept"), protobuf=bool(req.resource.schema))
        reg = self.registry(req.resource)
        d = await reg.get(req.namespace, req.info.name)
        if req.info.subresource == "scale":
            return object_response(scale.to_scale(req.resource, d.obj), 200, out)
        if out.as_kind == "Table":
            return object_response(self._table(req, [d], {"resourceVersion": d.obj["metadata"]["resourceVersion"]},
                                               out), 200)
        if out.as_kind == "PartialObjectMetadata":
            return object_response(tables.partial_object_metadata(req.resource, d.obj, out.as_version), 200)
        return object_response(d.obj, 200, out, json_bytes=d.json())

    async def list(self, req: Request) -> web.StreamResponse:
        out = negotiate_object(req.http.headers.get("Accept"), protobuf=bool(req.resource.schema))
        q = req.query
        opts = list_options(req.resource, q)
        reg = self.registry(req.resource)
        res = await reg.list(req.namespace, limit=opts.limit, continue_token=opts.continue_token,
                             match=opts.match, resource_version=opts.resource_version, rv_match=opts.rv_match)
        list_meta: dict[str, Any] = {"resourceVersion": str(res.resource_version)}
        if res.continue_token:
            list_meta["continue"] = res.continue_token
            if res.remaining is not None:
                list_meta["remainingItemCount"] = res.remaining
        if out.as_kind == "Table":
            return object_response(self._table(req, res.items, list_meta, out), 200)
        if out.as_kind == "PartialObjectMetadataList":
            return object_response(tables.partial_object_metadata_list(
                req.resource, [d.obj for d in res.items], list_meta), 200)
        r = req.resource
        if out.format == "json":
            # Splice the cached per-object bytes: a LIST never re-encodes its items.
            import orjson
            head = orjson.dumps({"kind": r.list_kind, "apiVersion": r.api_version, "metadata": list_meta})
            body = head[:-1] + b',"items":[' + b",".join(d.json() for d in res.items) + b"]}"
            return object_response(None, 200, out, json_bytes=body)
        return object_response({"kind": r.list_kind, "apiVersion": r.api_version, "metadata": list_meta,
                                "items": [d.obj for d in res.items]}, 200, out)

    def _table(self, req: Request, items: list[Decoded], list_meta: dict[str, Any], out: Output) -> dict[str, Any]:
        include = req.query.get("includeObject") or "Metadata"
        return tables.to_table(req.resource, [d.obj for d in items], list_meta=list_meta,
                               include_object=include, api_version=f"meta.k8s.io/{out.as_version}")

    async def watch(self, req: Request) -> web.StreamResponse:
        out = negotiate_object(req.http.headers.get("Accept"), protobuf=bool(req.resource.schema))
        opts = list_options(req.resource, req.query)
        return await serve_watch(req.http, self.registry(req.resource), req.namespace, opts, out, req.query,
                                 table=(lambda objs, meta: self._table(req, [Decoded(o) for o in objs], meta, out))
                                 if out.as_kind == "Table" else None)

    # -- writes ------------------------------------------------------------------------------

    async def _body(self, req: Request) -> bytes:
        return await read_body(req.http)

    async def _decode(self, req: Request, body: bytes, kind: str, api_version: str,
                      options_kind: str) -> tuple[dict[str, Any], list[str], bool]:
        fv = req.query.get("fieldValidation", "")
        if fv not in FIELD_VALIDATION:
            raise options_invalid(options_kind, errors.field_not_supported("fieldValidation", fv,
                                                                           list(FIELD_VALIDATION)))
        dry_run = dry_run_option(req.http, options_kind)
        obj, warnings = decode_object(req.resource, kind, api_version, req.http.headers.get("Content-Type"), body,
                                      fv or "Warn")
        return obj, warnings, dry_run

    async def create(self, req: Request) -> web.StreamResponse:
        r = req.resource
        out = negotiate_object(req.http.headers.get("Accept"), allow_transform=False)
        body = await self._body(req)
        if req.info.subresource == "binding":
            return await self._bind(req, body, out)
        creator = self.subresource_creators.get((r.plural, req.info.subresource))
        if creator is not None:
            sub = r.subresource(req.info.subresource)
            kind = sub.kind if sub else r.kind
            api_version = f"{sub.group}/{sub.version}" if sub and sub.group else r.api_version
            obj, warnings, dry_run = await self._decode(req, body, kind, api_version, "CreateOptions")
            areq = self._attributes(req, CREATE, obj, None, name=req.info.name, dry_run=dry_run)
            await self._mutate(req, areq)
            await self._validating(req, areq)(areq.obj, None)
            created, more = await creator(req, areq.obj or obj)
            return object_response(created, 201, out, warnings=self._admitted(areq, warnings) + more)
        obj, warnings, dry_run = await self._decode(req, body, r.kind, r.api_version, "CreateOptions")
        m = obj.get("metadata")
        if m is not None and not isinstance(m, dict):
            raise errors.bad_request("metadata must be an object")
        ns = (m or {}).get("namespace")
        if r.namespaced and ns and ns != req.info.namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        # Upstream decodes with defaulting, then admits, then validates.
        defaults.apply_defaults(r, obj)
        areq = self._attributes(req, CREATE, obj, None, name=str((m or {}).get("name") or ""), dry_run=dry_run,
                                options=_options(req, "CreateOptions"))
        await self._mutate(req, areq)
        d = await self.registry(r).create(areq.obj or obj, namespace=req.namespace, dry_run=dry_run,
                                          admit=self._validating(req, areq))
        return object_response(d.obj, 201, out, json_bytes=None if dry_run else d.json(),
                               warnings=self._admitted(areq, warnings))

    async def _bind(self, req: Request, body: bytes, out: Output) -> web.StreamResponse:
        obj, warnings, dry_run = await self._decode(req, body, "Binding", "v1", "CreateOptions")
        areq = self._attributes(req, CREATE, obj, None, name=req.info.name, dry_run=dry_run,
                                options=_options(req, "CreateOptions"))
        await self._mutate(req, areq)
        obj = areq.obj or obj
        target = (obj.get("target") or {}).get("name")
        if not target:
            raise errors.invalid("Binding", req.info.name, [errors.field_required("target.name")])
        # Upstream's BindingREST runs validating admission on the Binding before assigning the pod.
        await self._validating(req, areq)(obj, None)

        def bind(pod: dict[str, Any]) -> dict[str, Any]:
            if (pod.get("spec") or {}).get("nodeName"):
                raise errors.conflict("pods/binding", req.info.name,
                                      f"pod {req.info.name} is already assigned to node "
                                      f"\"{pod['spec']['nodeName']}\"")
            pod["spec"]["nodeName"] = target
            return pod

        await self.registry(req.resource).guaranteed_update(req.namespace, req.info.name, bind, subresource="binding",
                                                            dry_run=dry_run)
        return object_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                "code": 201}, 201, out, warnings=self._admitted(areq, warnings))

    async def update(self, req: Request) -> web.StreamResponse:
        r = req.resource
        out = negotiate_object(req.http.headers.get("Accept"), allow_transform=False)
        body = await self._body(req)
        sub = req.info.subresource
        if sub == "scale":
            return await self._update_scale(req, body, out)
        obj, warnings, dry_run = await self._decode(req, body, r.kind, r.api_version, "UpdateOptions")
        m = obj.get("metadata") or {}
        if m.get("name") and m["name"] != req.info.name:
            raise errors.bad_request(
                f"the name of the object ({m['name']}) does not match the name on the URL ({req.info.name})")
        if r.namespaced and m.get("namespace") and m["namespace"] != req.info.namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        obj.setdefault("metadata", {})["name"] = req.info.name
        reg = self.registry(r)
        old = await reg.get(req.namespace, req.info.name)
        if not sub:
            defaults.apply_defaults(r, obj)
        areq = self._attributes(req, UPDATE, obj, old.obj, name=req.info.name, dry_run=dry_run,
                                options=_options(req, "UpdateOptions"))
        await self._mutate(req, areq)
        d = await reg.update(areq.obj or obj, namespace=req.namespace, name=req.info.name, subresource=sub,
                             dry_run=dry_run, old=old, admit=self._validating(req, areq))
        return object_response(d.obj, 200, out, warnings=self._admitted(areq, warnings))

    async def _update_scale(self, req: Request, body: bytes, out: Output) -> web.StreamResponse:
        obj, warnings, dry_run = await self._decode(req, body, "Scale", "autoscaling/v1", "UpdateOptions")
        reg = self.registry(req.resource)
        current = await reg.get(req.namespace, req.info.name)
        # Admission sees the Scale objects, as upstream's scale subresource.
        old_scale = scale.to_scale(req.resource, current.obj)
        areq = self._attributes(req, UPDATE, obj, old_scale, name=req.info.name, dry_run=dry_run,
                                options=_options(req, "UpdateOptions"))
        await self._mutate(req, areq)
        wanted = areq.obj or obj
        await self._validating(req, areq)(wanted, old_scale)
        d = await reg.guaranteed_update(req.namespace, req.info.name,
                                        lambda cur: scale.apply_scale(req.resource, cur, wanted), dry_run=dry_run)
        return object_response(scale.to_scale(req.resource, d.obj), 200, out,
                               warnings=self._admitted(areq, warnings))

    async def patch(self, req: Request) -> web.StreamResponse:
        r = req.resource
        out = negotiate_object(req.http.headers.get("Accept"), allow_transform=False)
        body = await self._body(req)
        fv = req.query.get("fieldValidation", "")
        if fv not in FIELD_VALIDATION:
            raise options_invalid("PatchOptions", errors.field_not_supported("fieldValidation", fv,
                                                                            list(FIELD_VALIDATION)))
        dry_run = dry_run_option(req.http, "PatchOptions")
        kind, parsed = patching.decode_patch(req.http.headers.get("Content-Type", ""), body,
                                             field_validation=fv)
        sub = req.info.subresource
        reg = self.registry(r)
        is_scale = sub == "scale"
        meta = self.patch_meta(r)

        def apply(cur: dict[str, Any]) -> dict[str, Any]:
            base = scale.to_scale(r, cur) if is_scale else cur
            if kind == patching.PatchKind.JSON:
                new = patching.json_patch(base, parsed)
            elif kind == patching.PatchKind.MERGE:
                new = patching.merge_patch(base, parsed)
            elif kind == patching.PatchKind.STRATEGIC:
                new = patching.strategic_merge_patch(base, parsed, patching.NoPatchMeta() if is_scale else meta)
            else:
                raise errors.StatusError(415, "UnsupportedMediaType",
                                         "apply patches are not supported by this server; use client-side apply")
            if not isinstance(new, dict):
                raise errors.bad_request("patched object is not a JSON object")
            if is_scale:
                return scale.apply_scale(r, cur, new)
            return new

        warnings: list[str] = []
        admitted: list[AdmissionRequest] = []

        def checked(cur: dict[str, Any]) -> dict[str, Any]:
            new = apply(cur)
            if not is_scale:
                nm = new.get("metadata") or {}
                if nm.get("name", req.info.name) != req.info.name:
                    raise errors.bad_request(
                        f"the name of the object ({nm.get('name')}) does not match the name on the URL "
                        f"({req.info.name})")
                _, w = decode_object(r, r.kind, r.api_version, "application/json", _dumps(new), fv or "Warn")
                warnings[:] = w
            return new

        async def run() -> Decoded:
            # One attempt of upstream's patcher inside GuaranteedUpdate: patch the current object,
            # admit it, validate it, write it; a conflict starts again from the new current object.
            old = await reg.get(req.namespace, req.info.name)
            new = checked(copy.deepcopy(old.obj))
            hook: AdmitHook | None = None
            if not is_scale:
                if not sub:
                    defaults.apply_defaults(r, new)
                areq = self._attributes(req, UPDATE, new, old.obj, name=req.info.name, dry_run=dry_run,
                                        options=_options(req, "PatchOptions"))
                await self._mutate(req, areq)
                new = areq.obj or new
                hook = self._validating(req, areq)
                admitted[:] = [areq]
            else:  # admission sees the Scale objects, as for an update of the scale subresource
                old_scale = scale.to_scale(r, old.obj)
                areq = self._attributes(req, UPDATE, scale.to_scale(r, new), old_scale, name=req.info.name,
                                        dry_run=dry_run, options=_options(req, "PatchOptions"))
                await self._mutate(req, areq)
                await self._validating(req, areq)(areq.obj, old_scale)
                new = scale.apply_scale(r, copy.deepcopy(old.obj), areq.obj or {})
            want_rv = (new.get("metadata") or {}).get("resourceVersion")
            if want_rv and want_rv != old.obj["metadata"]["resourceVersion"]:
                raise errors.conflict(r.plural, req.info.name, patching_conflict(), r.group)
            new.setdefault("metadata", {})["resourceVersion"] = old.obj["metadata"]["resourceVersion"]
            return await reg.update(new, namespace=req.namespace, name=req.info.name,
                                    subresource="" if is_scale else sub, dry_run=dry_run, old=old, admit=hook)

        for _ in range(8):
            try:
                d = await run()
                break
            except StatusError as e:
                if e.reason != "Conflict" or "precondition" in e.message.lower():
                    raise
                if isinstance(parsed, dict) and (parsed.get("metadata") or {}).get("resourceVersion"):
                    raise
        else:
            raise errors.conflict(r.plural, req.info.name, patching_conflict(), r.group)
        if is_scale:
            return object_response(scale.to_scale(r, d.obj), 200, out)
        return object_response(d.obj, 200, out,
                               warnings=self._admitted(admitted[0], warnings) if admitted else warnings)

    async def delete(self, req: Request) -> web.StreamResponse:
        r = req.resource
        out = negotiate_object(req.http.headers.get("Accept"), allow_transform=False)
        options = await self._delete_options(req)
        dry_run = dry_run_option(req.http, "DeleteOptions") or "All" in (options.get("dryRun") or [])
        reg = self.registry(r)
        current = await reg.get(req.namespace, req.info.name)
        areq = self._attributes(req, DELETE, None, current.obj, name=req.info.name, dry_run=dry_run, options=options)
        await self._mutate(req, areq)
        d, deleted_now = await reg.delete(req.namespace, req.info.name, options=options, dry_run=dry_run,
                                          admit=self._validating(req, areq))
        warnings = self._admitted(areq, [])
        if deleted_now:
            status = reg.delete_status(d.obj)
            if status is not None:
                return object_response(status, 200, out, warnings=warnings)
        # Upstream answers 202 only for a pending delete that asked for cascading explicitly.
        accepted = not deleted_now and options.get("orphanDependents") is False
        return object_response(d.obj, 202 if accepted else 200, out, warnings=warnings)

    async def delete_collection(self, req: Request) -> web.StreamResponse:
        r = req.resource
        out = negotiate_object(req.http.headers.get("Accept"), allow_transform=False)
        options = await self._delete_options(req)
        dry_run = dry_run_option(req.http, "DeleteOptions")
        opts = list_options(r, req.query)
        reg = self.registry(r)
        res = await reg.list(req.namespace, match=opts.match)
        deleted = []
        warnings: list[str] = []
        for d in res.items:
            m = d.obj["metadata"]
            try:
                areq = self._attributes(req, DELETE, None, d.obj, name=m["name"], dry_run=dry_run, options=options,
                                        namespace=m.get("namespace"))
                await self._mutate(req, areq)
                obj, _ = await reg.delete(m.get("namespace"), m["name"], options=options, dry_run=dry_run,
                                          admit=self._validating(req, areq))
                deleted.append(obj.obj)
                warnings = self._admitted(areq, warnings)
            except StatusError as e:
                if e.code != 404:
                    raise
        return object_response({"kind": r.list_kind, "apiVersion": r.api_version,
                                "metadata": {"resourceVersion": str(reg.store.current_revision())},
                                "items": deleted}, 200, out, warnings=warnings)

    async def _delete_options(self, req: Request) -> dict[str, Any]:
        body = await self._body(req)
        options: dict[str, Any] = {}
        if body.strip():
            options = _decode_delete_options(req, body)
        q = req.query
        if "propagationPolicy" in q:
            options["propagationPolicy"] = q["propagationPolicy"]
        if "gracePeriodSeconds" in q:
            options["gracePeriodSeconds"] = _int(q["gracePeriodSeconds"], "gracePeriodSeconds")
        if "orphanDependents" in q:
            options["orphanDependents"] = q["orphanDependents"] == "true"
        policy = options.get("propagationPolicy")
        if policy not in (None, "", "Orphan", "Background", "Foreground"):
            raise options_invalid("DeleteOptions", errors.field_not_supported(
                "propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"]))
        return options


def _record(req: Request, areq: AdmissionRequest) -> None:
    """A refused write still carries the warnings admission gave before refusing (upstream's
    warning recorder writes them whatever the outcome)."""
    recorded = req.http.get(WARNINGS)
    if recorded is not None:
        recorded.extend(areq.warnings)


def _options(req: Request, kind: str) -> dict[str, Any]:
    """The write's options object as admission sees it (CreateOptions, UpdateOptions, PatchOptions)."""
    opts: dict[str, Any] = {"kind": kind, "apiVersion": "meta.k8s.io/v1"}
    dry_run = req.http.query.getall("dryRun", [])
    if dry_run:
        opts["dryRun"] = list(dry_run)
    for key in ("fieldManager", "fieldValidation"):
        if req.query.get(key):
            opts[key] = req.query[key]
    return opts


def _decode_delete_options(req: Request, body: bytes) -> dict[str, Any]:
    obj, _ = decode_body(req.http.headers.get("Content-Type"), body)
    if not isinstance(obj, dict):
        raise errors.bad_request("DeleteOptions must be an object")
    return obj


def _dumps(obj: Any) -> bytes:
    import orjson
    return orjson.dumps(obj)


def patching_conflict() -> str:
    return "the object has been modified; please apply your changes to the latest version and try again"


def options_invalid(kind: str, cause: errors.Cause) -> StatusError:
    return errors.invalid(kind, "", [cause], "meta.k8s.io")


def dry_run_option(http: web.Request, options_kind: str) -> bool:
    values = http.query.getall("dryRun", [])
    if not values:
        return False
    if any(v != "All" for v in values):
        import json
        shown = json.dumps(values)
        raise options_invalid(options_kind, errors.Cause(
            "FieldValueNotSupported", f'Unsupported value: {shown}: supported values: "All"', "dryRun"))
    return True


def _int(v: str, name: str) -> int:
    try:
        return int(v)
    except ValueError:
        raise errors.bad_request(f'strconv.ParseInt: parsing "{v}": invalid syntax') from None


@dataclass
class ListOptions:
    limit: int
    continue_token: str
    resource_version: str
    rv_match: str
    label: selectors.LabelSelector | None
    field: selectors.FieldSelector | None
    timeout_seconds: int | None
    allow_bookmarks: bool
    send_initial_events: bool | None

    def match(self, obj: dict[str, Any]) -> bool:
        if self.label is not None and not self.label.matches((obj.get("metadata") or {}).get("labels") or {}):
            return False
        if self.field is not None and not self.field.matches(obj):
            return False
        return True


def list_options(r: Resource, q: Mapping[str, str]) -> ListOptions:
    limit = _int(q["limit"], "limit") if q.get("limit") else 0
    rv = q.get("resourceVersion", "")
    rv_match = q.get("resourceVersionMatch", "")
    if rv_match and rv_match not in ("Exact", "NotOlderThan"):
        raise options_invalid("ListOptions", errors.field_not_supported(
            "resourceVersionMatch", rv_match, ["Exact", "NotOlderThan"]))
    if rv_match and not rv:
        if not (rv_match == "NotOlderThan" and q.get("sendInitialEvents")):
            raise options_invalid("ListOptions", errors.field_forbidden(
                "resourceVersionMatch", "resourceVersionMatch is forbidden unless resourceVersion is provided"))
    label = selectors.parse_label_selector(q["labelSelector"]) if q.get("labelSelector") else None
    field = selectors.parse_field_selector(r, q["fieldSelector"]) if q.get("fieldSelector") else None
    sie = q.get("sendInitialEvents")
    return ListOptions(
        limit=max(limit, 0), continue_token=q.get("continue", ""), resource_version=rv, rv_match=rv_match,
        label=label, field=field,
        timeout_seconds=_int(q["timeoutSeconds"], "timeoutSeconds") if q.get("timeoutSeconds") else None,
        allow_bookmarks=q.get("allowWatchBookmarks") in ("true", "1"),
        send_initial_events=None if sie is None else sie in ("true", "1"))
