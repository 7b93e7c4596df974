"""ValidatingAdmissionPolicy (upstream apiserver/pkg/admission/plugin/policy/validating): each
binding of a stored policy that matches a write evaluates the policy's CEL validations over
object, oldObject, request, params, namespaceObject and variables; a failure is enforced as the
binding's validationActions say (Deny -> the Status of the validation's reason, Warn -> a warning,
Audit -> an audit annotation). Evaluation errors follow the policy's failurePolicy."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from kubegate.admission import cel as admission_cel
from kubegate.admission import cel_library
from kubegate.admission.chain import PluginDeps
from kubegate.admission.interface import AdmissionRequest, ConfigCache
from kubegate.admission.matching import NamespaceGetter, exempt, match_rules, namespace_matches, object_matches
from kubegate.admission.refusals import forbidden
from kubegate.admission.webhooks import review_request
from kubegate.api.resources import Resource, by_kind
from kubegate.api.validation.selector import selector_matches
from kubegate.authz.types import Authorizer

# metav1 reasons a validation may name, with their HTTP codes (upstream's reasonToCode).
REASON_CODES = {"Unauthorized": 401, "Forbidden": 403, "Invalid": 422, "RequestEntityTooLarge": 413}
AUDIT_FAILURE_KEY = "validation.policy.admission.k8s.io/validation_failure"

Objects = Callable[[], list[dict[str, Any]]]
# (group, version, kind, namespace or None, name or None, label selector or None) -> param objects
ParamLookup = Callable[[Resource, str | None, str | None, dict[str, Any] | None], list[dict[str, Any]]]


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _l(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _name(obj: dict[str, Any]) -> str:
    return str(_d(obj.get("metadata")).get("name", ""))


def _resource_names_ok(rules: list[Any], req: AdmissionRequest, matched: Resource) -> bool:
    """NamedRuleWithOperations: resourceNames (when given) name the object."""
    for rule in rules:
        rule = _d(rule)
        if match_rules([rule], req.operation, req.resource, req.subresource, req.namespace, "Exact") is None and \
                match_rules([rule], req.operation, matched, req.subresource, req.namespace, "Exact") is None:
            continue
        names = _l(rule.get("resourceNames"))
        if not names or req.name in names:
            return True
    return False


def resources_match(match: dict[str, Any], req: AdmissionRequest, get_namespace: NamespaceGetter) -> bool:
    """policy matching.Matcher: resourceRules (with resourceNames) minus excludeResourceRules, then
    namespaceSelector and objectSelector."""
    policy = str(match.get("matchPolicy") or "Equivalent")
    rules = _l(match.get("resourceRules"))
    matched = match_rules(rules, req.operation, req.resource, req.subresource, req.namespace, policy)
    if matched is None or not _resource_names_ok(rules, req, matched):
        return False
    excluded = _l(match.get("excludeResourceRules"))
    if excluded:
        hit = match_rules(excluded, req.operation, req.resource, req.subresource, req.namespace, policy)
        if hit is not None and _resource_names_ok(excluded, req, hit):
            return False
    return namespace_matches(match.get("namespaceSelector"), req, get_namespace) and \
        object_matches(match.get("objectSelector"), req)


@dataclass
class Failure:
    message: str
    reason: str
    index: int


class ValidatingAdmissionPolicy:
    name = "ValidatingAdmissionPolicy"
    configured_by: tuple[ConfigCache, ...] | None = None

    def __init__(self, policies: Objects, bindings: Objects, get_namespace: NamespaceGetter,
                 params: ParamLookup, authorizer: Authorizer | None = None) -> None:
        self.policies = policies
        self.bindings = bindings
        self.get_namespace = get_namespace
        self.params = params
        self.authorizer = authorizer
        self._programs: dict[tuple[str, frozenset[str]], Any] = {}

    def _program(self, expression: str, names: set[str]) -> Any:
        key = (expression, frozenset(names))
        program = self._programs.get(key)
        if program is None:
            program = self._programs[key] = admission_cel.compile_expression(expression, names)
        return program

    async def _eval(self, expression: str, names: set[str], activation: dict[str, Any],
                    session: admission_cel.AuthorizerSession | None) -> Any:
        try:
            program = self._program(expression, names)
        except admission_cel.CELCompileError as e:
            raise admission_cel.CELRuntimeError(str(e)) from None
        return await admission_cel.evaluate_async(program, activation, session)

    async def validate(self, req: AdmissionRequest) -> None:
        if exempt(req.resource):
            return
        policies = {_name(p): p for p in self.policies()}
        if not policies:
            return
        audit: list[dict[str, Any]] = []
        session = None if self.authorizer is None else admission_cel.AuthorizerSession(self.authorizer, req.user)
        for binding in sorted(self.bindings(), key=_name):
            bspec = _d(binding.get("spec"))
            policy = policies.get(str(bspec.get("policyName") or ""))
            if policy is None:
                continue
            pspec = _d(policy.get("spec"))
            if not resources_match(_d(pspec.get("matchConstraints")), req, self.get_namespace):
                continue
            if bspec.get("matchResources") and not resources_match(_d(bspec.get("matchResources")), req,
                                                                   self.get_namespace):
                continue
            for failure in await self._evaluate(policy, binding, req, session):
                self._enforce(failure, policy, binding, req, audit)
        if audit:
            req.annotations[AUDIT_FAILURE_KEY] = orjson.dumps(audit).decode()

    def _param_sets(self, policy: dict[str, Any], binding: dict[str, Any],
                    req: AdmissionRequest) -> list[dict[str, Any] | None] | Failure:
        kind = _d(_d(policy.get("spec")).get("paramKind"))
        ref = _d(_d(binding.get("spec")).get("paramRef"))
        if not kind or not ref:
            return [None]
        group, _, version = str(kind.get("apiVersion") or "").rpartition("/")
        r = by_kind(group, version, str(kind.get("kind") or ""))
        found: list[dict[str, Any]] = []
        if r is not None:
            namespace = None
            if r.namespaced:
                namespace = str(ref.get("namespace") or "") or req.namespace or None
            found = self.params(r, namespace, ref.get("name") or None,
                                _d(ref.get("selector")) if ref.get("selector") is not None else None)
        if found:
            return list(found)
        if ref.get("parameterNotFoundAction") == "Allow":
            return []
        return Failure("no params found for policy binding with `Deny` parameterNotFoundAction", "Invalid", -1)

    async def _evaluate(self, policy: dict[str, Any], binding: dict[str, Any], req: AdmissionRequest,
                        session: admission_cel.AuthorizerSession | None) -> list[Failure]:
        spec = _d(policy.get("spec"))
        fail_closed = spec.get("failurePolicy", "Fail") != "Ignore"
        names = admission_cel.policy_variables(policy)
        param_sets = self._param_sets(policy, binding, req)
        if isinstance(param_sets, Failure):
            return [param_sets] if fail_closed else []
        ns_obj = self.get_namespace(req.namespace) if req.namespace else None
        base = {"object": req.obj, "oldObject": req.old, "request": review_request(req, ""),
                "namespaceObject": ns_obj,
                "authorizer": cel_library.authorizer_value(req.resource.group, req.resource.plural,
                                                           req.subresource, req.namespace, req.name)}
        failures: list[Failure] = []
        for params in param_sets:
            activation = dict(base, params=params)
            try:
                if not await self._conditions_hold(spec, names, activation, session):
                    continue
            except admission_cel.CELRuntimeError as e:
                if fail_closed:
                    failures.append(Failure(str(e), "Invalid", -1))
                continue
            variables: dict[str, Any] = {}
            activation["variables"] = variables
            for var in _l(spec.get("variables")):
                var = _d(var)
                try:
                    variables[str(var.get("name"))] = await self._eval(str(var.get("expression") or ""), names,
                                                                       activation, session)
                except admission_cel.CELRuntimeError:
                    continue  # an expression that uses it fails with "no such key"
            failures += await self._validations(spec, names, activation, fail_closed, session)
            await self._audit_annotations(policy, names, activation, req, session)
        return failures

    async def _conditions_hold(self, spec: dict[str, Any], names: set[str], activation: dict[str, Any],
                               session: admission_cel.AuthorizerSession | None) -> bool:
        for mc in _l(spec.get("matchConditions")):
            if await self._eval(str(_d(mc).get("expression") or ""), names, activation, session) is not True:
                return False
        return True

    async def _validations(self, spec: dict[str, Any], names: set[str], activation: dict[str, Any],
                           fail_closed: bool, session: admission_cel.AuthorizerSession | None) -> list[Failure]:
        out: list[Failure] = []
        for i, v in enumerate(_l(spec.get("validations"))):
            v = _d(v)
            expression = str(v.get("expression") or "")
            reason = str(v.get("reason") or "Invalid")
            try:
                result = await self._eval(expression, names, activation, session)
                if not isinstance(result, bool):
                    raise admission_cel.CELRuntimeError(f"validation expression must return a boolean, "
                                                        f"got {type(result).__name__}")
            except admission_cel.CELRuntimeError as e:
                if fail_closed:
                    out.append(Failure(f"expression '{expression}' resulted in error: {e}", reason, i))
                continue
            if result:
                continue
            message = ""
            if v.get("messageExpression"):
                try:
                    got = await self._eval(str(v["messageExpression"]), names, activation, session)
                    if isinstance(got, str) and got.strip() and "\n" not in got:
                        message = got
                except admission_cel.CELRuntimeError:
                    pass  # upstream falls back to message
            message = message or str(v.get("message") or "") or f"failed expression: {expression}"
            out.append(Failure(message, reason, i))
        return out

    async def _audit_annotations(self, policy: dict[str, Any], names: set[str], activation: dict[str, Any],
                                 req: AdmissionRequest, session: admission_cel.AuthorizerSession | None) -> None:
        for a in _l(_d(policy.get("spec")).get("auditAnnotations")):
            a = _d(a)
            try:
                value = await self._eval(str(a.get("valueExpression") or ""), names, activation, session)
            except admission_cel.CELRuntimeError:
                continue
            if isinstance(value, str) and value:
                req.annotations[f"{_name(policy)}/{a.get('key')}"] = value

    def _enforce(self, failure: Failure, policy: dict[str, Any], binding: dict[str, Any], req: AdmissionRequest,
                 audit: list[dict[str, Any]]) -> None:
        actions = [str(a) for a in _l(_d(binding.get("spec")).get("validationActions"))]
        p, b = _name(policy), _name(binding)
        if "Audit" in actions:
            audit.append({"message": failure.message, "policy": p, "binding": b,
                          "expressionIndex": max(failure.index, 0), "validationActions": actions})
        if "Warn" in actions:
            req.warnings.append(f"Validation failed for ValidatingAdmissionPolicy '{p}' with binding '{b}': "
                                f"{failure.message}")
        if "Deny" in actions:
            message = f"ValidatingAdmissionPolicy '{p}' with binding '{b}' denied request: {failure.message}"
            err = forbidden(req, message)
            err.reason = failure.reason
            err.code = REASON_CODES.get(failure.reason, 403)
            # Upstream's dispatcher adds the message as a cause (kubectl prints it after "is invalid: ").
            details = err.details if err.details is not None else {}
            details["causes"] = [*details.get("causes", []), {"message": message}]
            err.details = details
            raise err


def factory(conf: dict[str, Any] | None, deps: PluginDeps) -> ValidatingAdmissionPolicy:
    policies = deps.registries[("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies")].cache
    bindings = deps.registries[("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings")].cache

    def params(r: Resource, namespace: str | None, name: str | None,
               selector: dict[str, Any] | None) -> list[dict[str, Any]]:
        registry = deps.registries.get((r.group, r.version, r.plural))
        if registry is None:
            return []
        if name:
            d = registry.get_cached(namespace, name)
            return [] if d is None else [d.obj]
        objs = [e.object.obj for e in registry.cache.list(r.list_prefix(namespace)).entries]
        return [o for o in objs if selector_matches(selector or {}, _d(_d(o.get("metadata")).get("labels")))]

    plugin = ValidatingAdmissionPolicy(lambda: [e.object.obj for e in policies.list().entries],
                                       lambda: [e.object.obj for e in bindings.list().entries],
                                       lambda name: deps.cached("namespaces", None, name), params, deps.authorizer)
    plugin.configured_by = (policies,)  # without a policy, bindings select nothing
    return plugin
