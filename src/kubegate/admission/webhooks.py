"""MutatingAdmissionWebhook and ValidatingAdmissionWebhook (upstream
apiserver/pkg/admission/plugin/webhook/{mutating,validating,request,errors}): an AdmissionReview (v1, or
v1beta1 for webhooks that list it first in admissionReviewVersions) to each matching webhook of the
stored configurations, with upstream's matching, failurePolicy,
dryRun, JSONPatch, reinvocation, warnings, audit annotations and error texts.

Mutating webhooks run one after another (configurations by name, webhooks in order); validating
webhooks run in parallel. kubegate serves no Services, so a `service` clientConfig is addressed as
upstream would (https://<name>.<namespace>.svc:<port><path>) and fails as unreachable.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubegate.admission import cel as admission_cel
from kubegate.admission import cel_library
from kubegate.admission.chain import PluginDeps
from kubegate.admission.interface import CREATE, DELETE, UPDATE, AdmissionRequest, ConfigCache
from kubegate.admission.matching import NamespaceGetter, exempt, match_rules, namespace_matches, object_matches
from kubegate.api import errors
from kubegate.api.patch import PatchError, json_patch
from kubegate.api.resources import Resource
from kubegate.authn.user import user_info_json
from kubegate.authz.types import Authorizer
from kubegate.schema import type_error
from kubegate.webhook.client import Backoff, WebhookClient, WebhookError, tls_context

REVIEW_API_VERSION = "admission.k8s.io/v1"
# The AdmissionReview versions kubegate speaks; configuration validation requires one of them.
REVIEW_VERSIONS = ("v1", "v1beta1")
DEFAULT_TIMEOUT = 10
_NO_SIDE_EFFECTS_ON_DRY_RUN = ("None", "NoneOnDryRun")
_OPTIONS_KIND = {CREATE: "CreateOptions", UPDATE: "UpdateOptions", DELETE: "DeleteOptions"}
# A http.Client timeout reads differently from the context deadline upstream's dispatcher sets.
_CLIENT_TIMEOUT_SUFFIX = " (Client.Timeout exceeded while awaiting headers)"

ConfigSource = Callable[[], list[dict[str, Any]]]
# Where a request keeps its authorizer checks, shared by both webhook plugins and both rounds.
_SESSION_KEY = "webhooks.authorizer"


class CallError(Exception):
    """upstream's ErrCallingWebhook: the call failed; failurePolicy decides."""

    def __init__(self, webhook: str, reason: str) -> None:
        super().__init__(f"failed calling webhook {orjson.dumps(webhook).decode()}: {reason}")


class UnsupportedPatch(ValueError):
    """A v1beta1 response's patch of a type other than JSONPatch (the mutating dispatcher's own error)."""


def review_version(versions: list[Any]) -> str | None:
    """CreateAdmissionObjects: the first of the webhook's admissionReviewVersions that kubegate speaks."""
    return next((v for v in versions if v in REVIEW_VERSIONS), None)


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _l(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


# -- the AdmissionReview -------------------------------------------------------------------------

def _gvk(r: Resource, subresource: str) -> dict[str, str]:
    sub = r.subresource(subresource) if subresource else None
    if sub is not None:
        return {"group": sub.group if sub.group is not None else r.group,
                "version": sub.version or r.version, "kind": sub.kind}
    return {"group": r.group, "version": r.version, "kind": r.kind}


def review_request(req: AdmissionRequest, uid: str, matched: Resource | None = None) -> dict[str, Any]:
    """admission.k8s.io/v1 AdmissionRequest as upstream's CreateAdmissionObjects builds it; `kind` and
    `resource` name the version the webhook's rule matched (matchPolicy Equivalent)."""
    r = req.resource
    m = matched or r
    out: dict[str, Any] = {
        "uid": uid,
        "kind": _gvk(m, req.subresource),
        "resource": {"group": m.group, "version": m.version, "resource": m.plural},
        "requestKind": _gvk(r, req.subresource),
        "requestResource": {"group": r.group, "version": r.version, "resource": r.plural},
    }
    if req.subresource:
        out["subResource"] = out["requestSubResource"] = req.subresource
    if req.name:
        out["name"] = req.name
    if req.namespace:
        out["namespace"] = req.namespace
    out.update({"operation": req.operation, "userInfo": user_info_json(req.user), "object": req.obj, "oldObject": req.old,
                "dryRun": req.dry_run})
    if req.operation in _OPTIONS_KIND:
        out["options"] = {**req.options, "apiVersion": "meta.k8s.io/v1", "kind": _OPTIONS_KIND[req.operation]}
    return out


@dataclass
class Verdict:
    allowed: bool
    status: dict[str, Any]
    patch: list[Any] | None
    warnings: list[str]
    audit_annotations: dict[str, str]


def verify_response(doc: dict[str, Any], uid: str, mutating: bool, version: str = "v1") -> Verdict:
    """webhookrequest.VerifyAdmissionResponse for the version sent; ValueError with upstream's text."""
    resp = doc.get("response")
    if not isinstance(resp, dict):
        raise ValueError("webhook response was absent")
    if version == "v1beta1":
        return _v1beta1_verdict(resp, mutating)
    got_uid = resp.get("uid") if isinstance(resp.get("uid"), str) else ""
    if got_uid != uid:
        raise ValueError(f"expected response.uid={orjson.dumps(uid).decode()}, got {orjson.dumps(got_uid).decode()}")
    api_version = str(doc.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    kind = str(doc.get("kind") or "")
    if (api_version, kind) != (REVIEW_API_VERSION, "AdmissionReview"):
        raise ValueError(f"expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, "
                         f"got {group}/{version}, Kind={kind}")
    patch_type = resp.get("patchType") or ""
    raw_patch = resp.get("patch") or ""
    if raw_patch and not patch_type:
        raise ValueError("webhook returned response.patch but not response.patchType")
    if patch_type and not raw_patch:
        raise ValueError("webhook returned response.patchType but not response.patch")
    if patch_type and patch_type != "JSONPatch":
        raise ValueError(f"webhook returned invalid response.patchType of {orjson.dumps(patch_type).decode()}")
    if raw_patch and not mutating:
        raise ValueError("validating webhook may not return response.patch")
    return _verdict(resp, _decode_patch(raw_patch) if raw_patch else None)


def _v1beta1_verdict(resp: dict[str, Any], mutating: bool) -> Verdict:
    """v1beta1 responses were never checked for uid, kind or patch/patchType pairing; a validating
    webhook's patch is ignored and a mutating one's must be a JSONPatch."""
    raw_patch = resp.get("patch") or ""
    if not raw_patch or not mutating:
        return _verdict(resp, None)
    patch_type = str(resp.get("patchType") or "")
    if patch_type != "JSONPatch":
        raise UnsupportedPatch(f"unsupported patch type {orjson.dumps(patch_type).decode()}")
    return _verdict(resp, _decode_patch(raw_patch))


def _decode_patch(raw_patch: Any) -> list[Any]:
    try:
        decoded = orjson.loads(base64.b64decode(str(raw_patch), validate=True))
    except (binascii.Error, orjson.JSONDecodeError, ValueError) as e:
        raise ValueError(f"illegal patch data: {e}") from None
    if not isinstance(decoded, list):
        raise ValueError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    return decoded


def _verdict(resp: dict[str, Any], patch: list[Any] | None) -> Verdict:
    warnings = [w for w in _l(resp.get("warnings")) if isinstance(w, str) and w.isprintable()]
    annotations = {str(k): str(v) for k, v in _d(resp.get("auditAnnotations")).items()}
    return Verdict(bool(resp.get("allowed")), _d(resp.get("status")), patch, warnings, annotations)


def rejection(webhook: str, status: dict[str, Any]) -> errors.StatusError:
    """webhookerrors.ToStatusErr."""
    denied = f"admission webhook {orjson.dumps(webhook).decode()} denied the request"
    code = status.get("code") if isinstance(status.get("code"), int) else 0
    message, reason = str(status.get("message") or ""), str(status.get("reason") or "")
    if message:
        text = f"{denied}: {message}"
    elif reason:
        text = f"{denied}: {reason}"
    else:
        text = f"{denied} without explanation"
    details = status.get("details") if isinstance(status.get("details"), dict) else None
    return errors.StatusError(max(code, 400), reason, text, details)


# -- calling one webhook --------------------------------------------------------------------------

@dataclass(frozen=True)
class Hook:
    """One webhook of a stored configuration, with its position for audit annotation keys."""

    configuration: str
    spec: dict[str, Any]
    index: int

    @property
    def name(self) -> str:
        return str(self.spec.get("name") or "")

    @property
    def uid(self) -> str:
        """Upstream's webhook accessor UID: configuration, webhook and position."""
        return f"{self.configuration}/{self.name}/{self.index}"

    @property
    def failure_policy(self) -> str:
        return str(self.spec.get("failurePolicy") or "Fail")

    @property
    def timeout(self) -> float:
        t = self.spec.get("timeoutSeconds")
        return float(t) if isinstance(t, int) and not isinstance(t, bool) and t > 0 else float(DEFAULT_TIMEOUT)


def hook_url(client_config: dict[str, Any]) -> str:
    url = client_config.get("url")
    if isinstance(url, str) and url:
        return url
    svc = _d(client_config.get("service"))
    port = svc.get("port") if isinstance(svc.get("port"), int) else 443
    return f"https://{svc.get('name', '')}.{svc.get('namespace', '')}.svc:{port}{svc.get('path') or ''}"


class Dispatcher:
    """What both plugins share: configurations from the watch cache, one client per endpoint and CA,
    compiled matchConditions, and the call."""

    def __init__(self, configs: ConfigSource, get_namespace: NamespaceGetter,
                 authorizer: Authorizer | None = None) -> None:
        self.configs = configs
        self.get_namespace = get_namespace
        self.authorizer = authorizer
        self._clients: dict[tuple[str, str], WebhookClient] = {}
        self._programs: dict[str, Any] = {}
        # The last configurations seen (held, so identity means unchanged) and their hooks.
        self._seen: list[dict[str, Any]] = []
        self._hooks: list[Hook] = []

    def hooks(self) -> list[Hook]:
        configs = self.configs()
        if len(configs) == len(self._seen) and all(a is b for a, b in zip(configs, self._seen)):
            return self._hooks
        out: list[Hook] = []
        for cfg in sorted(configs, key=lambda c: str(_d(c.get("metadata")).get("name", ""))):
            name = str(_d(cfg.get("metadata")).get("name", ""))
            for spec in _l(cfg.get("webhooks")):
                out.append(Hook(name, _d(spec), len(out)))
        self._seen, self._hooks = configs, out
        return out

    def matches(self, hook: Hook, req: AdmissionRequest) -> Resource | None:
        spec = hook.spec
        matched = match_rules(_l(spec.get("rules")), req.operation, req.resource, req.subresource, req.namespace,
                              str(spec.get("matchPolicy") or "Equivalent"))
        if matched is None:
            return None
        if not namespace_matches(spec.get("namespaceSelector"), req, self.get_namespace):
            return None
        if not object_matches(spec.get("objectSelector"), req):
            return None
        return matched

    def session(self, req: AdmissionRequest) -> admission_cel.AuthorizerSession | None:
        """The request's authorizer checks, asked as its user and remembered for all its webhooks."""
        if self.authorizer is None:
            return None
        session = req.reinvocation.values.get(_SESSION_KEY)
        if not isinstance(session, admission_cel.AuthorizerSession):
            session = req.reinvocation.values[_SESSION_KEY] = admission_cel.AuthorizerSession(self.authorizer,
                                                                                            req.user)
        return session

    async def conditions_hold(self, hook: Hook, req: AdmissionRequest) -> bool:
        """matchConditions over object, oldObject, request and authorizer: all true to call; an
        evaluation error is a call failure."""
        conditions = _l(hook.spec.get("matchConditions"))
        if not conditions:
            return True
        activation = {"object": req.obj, "oldObject": req.old, "request": review_request(req, ""),
                      "authorizer": cel_library.authorizer_value(req.resource.group, req.resource.plural,
                                                                 req.subresource, req.namespace, req.name)}
        session = self.session(req)
        for mc in conditions:
            expr = str(_d(mc).get("expression") or "")
            try:
                program = self._programs.get(expr)
                if program is None:
                    program = self._programs[expr] = admission_cel.compile_expression(
                        expr, admission_cel.BASE_VARIABLES)
                result = await admission_cel.evaluate_async(program, activation, session)
            except (admission_cel.CELCompileError, admission_cel.CELRuntimeError) as e:
                raise CallError(hook.name, f"failed to evaluate match condition {_d(mc).get('name')!s}: {e}") \
                    from None
            if result is not True:
                return False
        return True

    def _client(self, client_config: dict[str, Any]) -> WebhookClient:
        url = hook_url(client_config)
        ca = str(client_config.get("caBundle") or "")
        key = (url, ca)
        client = self._clients.get(key)
        if client is None:
            try:
                ca_pem = base64.b64decode(ca, validate=True) if ca else None
            except binascii.Error:
                ca_pem = b"invalid"
            # Admission calls are not retried: the webhook's timeout bounds the whole exchange.
            client = WebhookClient(url, tls_context(ca_pem) if url.startswith("https:") else None, {},
                                   backoff=Backoff(steps=1))
            self._clients[key] = client
        return client

    async def call(self, hook: Hook, req: AdmissionRequest, matched: Resource, mutating: bool) -> Verdict:
        if req.dry_run and hook.spec.get("sideEffects") not in _NO_SIDE_EFFECTS_ON_DRY_RUN:
            raise errors.bad_request(f"admission webhook {orjson.dumps(hook.name).decode()} does not support dry run")
        version = review_version(_l(hook.spec.get("admissionReviewVersions")))
        if version is None:  # configuration validation keeps such webhooks out; stored ones predate it
            raise CallError(hook.name, "could not create admission objects: webhook does not accept v1 or v1beta1 "
                                       "AdmissionReview")
        uid = str(uuid.uuid4())
        # v1beta1's AdmissionRequest has the same fields as v1's.
        body = {"apiVersion": f"admission.k8s.io/{version}", "kind": "AdmissionReview",
                "request": review_request(req, uid, matched)}
        try:
            client = self._client(_d(hook.spec.get("clientConfig")))
            doc = await client.post(body, hook.timeout)
        except WebhookError as e:
            raise CallError(hook.name, f"failed to call webhook: {str(e).removesuffix(_CLIENT_TIMEOUT_SUFFIX)}") \
                from None
        except Exception as e:  # a caBundle that is not PEM fails when the client is made
            raise CallError(hook.name, f"failed to call webhook: {e}") from None
        try:
            return verify_response(doc, uid, mutating, version)
        except UnsupportedPatch as e:
            raise CallError(hook.name, str(e)) from None
        except ValueError as e:
            raise CallError(hook.name, f"received invalid webhook response: {e}") from None

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()

    async def run(self) -> None:
        """A background task: closes the clients' connections at shutdown."""
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()


def _record(req: AdmissionRequest, hook: Hook, verdict: Verdict) -> None:
    req.warnings.extend(verdict.warnings)
    for k, v in verdict.audit_annotations.items():
        req.annotations[f"{hook.name}/{k}"] = v


def _failed_open(req: AdmissionRequest, kind: str, round_: int, hook: Hook) -> None:
    req.annotations[f"failed-open.{kind}.webhook.admission.k8s.io/round_{round_}_index_{hook.index}"] = hook.name


# -- the plugins ------------------------------------------------------------------------------------

@dataclass
class _Reinvocation:
    """Upstream's webhookReinvokeContext: what the webhooks last returned, the IfNeeded webhooks called
    since the last change, and those due again in round 1."""

    last_output: Any = None
    previously_invoked: set[str] = field(default_factory=set)
    reinvoke: set[str] = field(default_factory=set)

    def require_reinvoking(self) -> None:
        self.reinvoke |= self.previously_invoked
        self.previously_invoked = set()


class MutatingAdmissionWebhook:
    name = "MutatingAdmissionWebhook"
    configured_by: tuple[ConfigCache, ...] | None = None

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    async def admit(self, req: AdmissionRequest) -> None:
        """Upstream's mutating dispatcher with its reinvocation record: a webhook that changes the object
        makes the IfNeeded webhooks called before it due again; the chain's second pass (round 1) calls
        those, and all of them when other plugins changed the object since the webhooks last saw it."""
        hooks = [] if exempt(req.resource) else self.dispatcher.hooks()
        if not hooks:
            return
        ctx = req.reinvocation
        record = ctx.values.setdefault(self.name, _Reinvocation())
        if ctx.is_reinvoke and record.last_output != req.obj:
            record.require_reinvoking()
        round_ = 1 if ctx.is_reinvoke else 0
        try:
            for hook in hooks:
                matched = self.dispatcher.matches(hook, req)
                if matched is None or not await self._conditions_hold(hook, req, round_):
                    continue
                # A webhook is never called for the first time in round 1.
                if ctx.is_reinvoke and hook.uid not in record.reinvoke:
                    continue
                if await self._invoke(hook, req, matched, round_):
                    record.require_reinvoking()
                    ctx.should_reinvoke = True
                if hook.spec.get("reinvocationPolicy") == "IfNeeded":
                    record.previously_invoked.add(hook.uid)
        finally:
            # Only compared when IfNeeded webhooks wait for a change: no copy for every other write.
            record.last_output = copy.deepcopy(req.obj) if record.previously_invoked else None

    async def _conditions_hold(self, hook: Hook, req: AdmissionRequest, round_: int) -> bool:
        try:
            return await self.dispatcher.conditions_hold(hook, req)
        except CallError as e:
            if hook.failure_policy == "Ignore":
                _failed_open(req, "mutation", round_, hook)
                return False
            raise errors.internal(str(e)) from None

    async def _invoke(self, hook: Hook, req: AdmissionRequest, matched: Resource, round_: int) -> bool:
        """Call one webhook; whether it changed the object."""
        try:
            verdict = await self.dispatcher.call(hook, req, matched, mutating=True)
        except CallError as e:
            if hook.failure_policy == "Ignore":
                _failed_open(req, "mutation", round_, hook)
                return False
            raise errors.internal(str(e)) from None
        _record(req, hook, verdict)
        if not verdict.allowed:
            raise rejection(hook.name, verdict.status)
        mutated = False
        if verdict.patch and req.obj is not None:
            patched = self._apply(req, verdict.patch)
            mutated = patched != req.obj
            if mutated:
                req.annotations[f"patch.webhook.admission.k8s.io/round_{round_}_index_{hook.index}"] = orjson.dumps(
                    {"configuration": hook.configuration, "webhook": hook.name, "patch": verdict.patch,
                     "patchType": "JSONPatch"}).decode()
                req.obj = patched
        req.annotations[f"mutation.webhook.admission.k8s.io/round_{round_}_index_{hook.index}"] = orjson.dumps(
            {"configuration": hook.configuration, "webhook": hook.name, "mutated": mutated}).decode()
        return mutated

    @staticmethod
    def _apply(req: AdmissionRequest, patch: list[Any]) -> dict[str, Any]:
        """The patched object; a patch that does not apply, or that leaves something the object's type
        cannot hold, is upstream's 500 whatever the failurePolicy."""
        try:
            patched = json_patch(req.obj, patch)
        except PatchError as e:
            # json_patch hides an operation's failure behind a generic 422; upstream shows its text.
            raise errors.internal(str(e.__cause__ or e.message)) from None
        if not isinstance(patched, dict):
            raise errors.internal(f"json: cannot unmarshal {type(patched).__name__} into Go value of type "
                                  f"map[string]interface {{}}")
        if not req.subresource and req.resource.schema:
            problem = type_error(req.resource.schema, patched)
            if problem:
                raise errors.internal(problem)
        return patched


class ValidatingAdmissionWebhook:
    name = "ValidatingAdmissionWebhook"
    configured_by: tuple[ConfigCache, ...] | None = None

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    async def validate(self, req: AdmissionRequest) -> None:
        if exempt(req.resource):
            return
        calls = []
        for hook in self.dispatcher.hooks():
            matched = self.dispatcher.matches(hook, req)
            if matched is not None:
                calls.append(self._one(hook, req, matched))
        if not calls:
            return
        # All run to the end; the first refusal in configuration order is the answer (upstream
        # returns the first error its parallel calls produced).
        results = await asyncio.gather(*calls, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _one(self, hook: Hook, req: AdmissionRequest, matched: Resource) -> None:
        try:
            if not await self.dispatcher.conditions_hold(hook, req):
                return
            verdict = await self.dispatcher.call(hook, req, matched, mutating=False)
        except CallError as e:
            if hook.failure_policy == "Ignore":
                _failed_open(req, "validating", 0, hook)
                return
            raise errors.internal(str(e)) from None
        _record(req, hook, verdict)
        if not verdict.allowed:
            raise rejection(hook.name, verdict.status)


def _dispatcher(deps: PluginDeps, plural: str) -> tuple[Dispatcher, ConfigCache]:
    cache = deps.registries[("admissionregistration.k8s.io", "v1", plural)].cache

    def configs() -> list[dict[str, Any]]:
        return [e.object.obj for e in cache.list().entries]
    dispatcher = Dispatcher(configs, lambda name: deps.cached("namespaces", None, name), deps.authorizer)
    deps.background.append(dispatcher.run)
    return dispatcher, cache


def mutating_factory(conf: dict[str, Any] | None, deps: PluginDeps) -> MutatingAdmissionWebhook:
    dispatcher, cache = _dispatcher(deps, "mutatingwebhookconfigurations")
    plugin = MutatingAdmissionWebhook(dispatcher)
    plugin.configured_by = (cache,)
    return plugin


def validating_factory(conf: dict[str, Any] | None, deps: PluginDeps) -> ValidatingAdmissionWebhook:
    dispatcher, cache = _dispatcher(deps, "validatingwebhookconfigurations")
    plugin = ValidatingAdmissionWebhook(dispatcher)
    plugin.configured_by = (cache,)
    return plugin
