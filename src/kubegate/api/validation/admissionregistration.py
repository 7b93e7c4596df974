"""admissionregistration.k8s.io/v1 validation (pkg/apis/admissionregistration/validation): webhook
configurations, ValidatingAdmissionPolicy (CEL expressions must compile) and its bindings."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from kubegate.admission import cel as admission_cel
from kubegate.api.errors import (
    Cause, field_duplicate, field_forbidden, field_invalid, field_not_supported, field_required, field_too_many,
)

from . import names
from .common import d, lst, s, unique_name
from .meta import validate_meta
from .selector import validate_label_selector

_OPERATIONS = ["*", "CONNECT", "CREATE", "DELETE", "UPDATE"]
_SCOPES = ["*", "Cluster", "Namespaced"]
_FAILURE = ["Fail", "Ignore"]
_MATCH = ["Equivalent", "Exact"]
_SIDE_EFFECTS = ["None", "NoneOnDryRun"]
_REINVOCATION = ["IfNeeded", "Never"]
_REASONS = ["Forbidden", "Invalid", "RequestEntityTooLarge"]
_ACTIONS = ["Audit", "Deny", "Warn"]
_REVIEW_VERSIONS = ["v1", "v1beta1"]
_CEL_IDENT = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*\Z")
_CEL_RESERVED = frozenset({"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
                           "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
                           "void", "while"})


def _wildcard_with_others(values: list[Any]) -> bool:
    return len(values) > 1 and "*" in values


def _resources(resources: list[Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not resources:
        causes.append(field_required(path))
    with_wild_sub: set[str] = set()
    wild_res_subs: set[str] = set()
    double = single = plain = False
    for i, entry in enumerate(resources):
        entry = s(entry)
        if not entry:
            causes.append(field_required(f"{path}[{i}]"))
            continue
        double = double or entry == "*/*"
        single = single or entry == "*"
        if "/" not in entry:
            plain = entry != "*"
            continue
        res, sub = entry.split("/", 1)
        if res in with_wild_sub:
            causes.append(field_invalid(f"{path}[{i}]", entry, f"if '{res}/*' is present, must not specify {entry}"))
        if sub in wild_res_subs:
            causes.append(field_invalid(f"{path}[{i}]", entry, f"if '*/{sub}' is present, must not specify {entry}"))
        if sub == "*":
            with_wild_sub.add(res)
        if res == "*":
            wild_res_subs.add(sub)
    if len(resources) > 1 and double:
        causes.append(field_invalid(path, resources, "if '*/*' is present, must not specify other resources"))
    if single and plain:
        causes.append(field_invalid(path, resources,
                                    "if '*' is present, must not specify other resources without subresources"))
    return causes


def _rule(rule: dict[str, Any], path: str) -> list[Cause]:
    """validateRuleWithOperations."""
    causes: list[Cause] = []
    ops = lst(rule.get("operations"))
    if not ops:
        causes.append(field_required(f"{path}.operations"))
    if _wildcard_with_others(ops):
        causes.append(field_invalid(f"{path}.operations", ops, "if '*' is present, must not specify other operations"))
    for i, op in enumerate(ops):
        if op not in _OPERATIONS:
            causes.append(field_not_supported(f"{path}.operations[{i}]", op, _OPERATIONS))
    groups, versions = lst(rule.get("apiGroups")), lst(rule.get("apiVersions"))
    if not groups:
        causes.append(field_required(f"{path}.apiGroups"))
    if _wildcard_with_others(groups):
        causes.append(field_invalid(f"{path}.apiGroups", groups, "if '*' is present, must not specify other API groups"))
    if not versions:
        causes.append(field_required(f"{path}.apiVersions"))
    if _wildcard_with_others(versions):
        causes.append(field_invalid(f"{path}.apiVersions", versions,
                                    "if '*' is present, must not specify other API versions"))
    causes += [field_required(f"{path}.apiVersions[{i}]") for i, v in enumerate(versions) if v == ""]
    causes += _resources(lst(rule.get("resources")), f"{path}.resources")
    scope = rule.get("scope")
    if scope is not None and scope not in _SCOPES:
        causes.append(field_not_supported(f"{path}.scope", scope, _SCOPES))
    return causes


def _condition(expression: str, path: str, variables: set[str]) -> list[Cause]:
    try:
        admission_cel.compile_expression(expression, variables)
    except admission_cel.CELCompileError as e:
        return [field_invalid(path, expression, str(e))]
    return []


def _match_conditions(conditions: list[Any], path: str, variables: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    if len(conditions) > 64:
        causes.append(field_too_many(path, len(conditions), 64))
    seen: set[str] = set()
    for i, mc in enumerate(conditions):
        mc = d(mc)
        expr = s(mc.get("expression")).strip()
        if not expr:
            causes.append(field_required(f"{path}[{i}].expression"))
        else:
            causes += _condition(expr, f"{path}[{i}].expression", variables)
        causes += unique_name(f"{path}[{i}].name", s(mc.get("name")), seen, names.is_qualified_name)
    return causes


def _client_config(cc: dict[str, Any], path: str) -> list[Cause]:
    url, svc = cc.get("url"), cc.get("service")
    if (url is None) == (svc is None):
        return [field_required(path, "exactly one of url or service is required")]
    if url is not None:
        u = s(url)
        parts = urlsplit(u)
        if parts.scheme != "https":
            return [field_invalid(f"{path}.url", u, "'https' is the only allowed URL scheme")]
        if not parts.hostname:
            return [field_invalid(f"{path}.url", u, "host must be specified")]
        if parts.username or parts.password:
            return [field_invalid(f"{path}.url", u, "user information is not permitted in the URL")]
        if parts.fragment or u.endswith("#"):
            return [field_invalid(f"{path}.url", u, "fragments are not permitted in the URL")]
        if parts.query:
            return [field_invalid(f"{path}.url", u, "query parameters are not permitted in the URL")]
        return []
    svc = d(svc)
    causes: list[Cause] = []
    if not s(svc.get("name")):
        causes.append(field_required(f"{path}.service.name", "service name is required"))
    if not s(svc.get("namespace")):
        causes.append(field_required(f"{path}.service.namespace", "service namespace is required"))
    port = svc.get("port")
    if isinstance(port, int) and not 1 <= port <= 65535:
        causes.append(field_invalid(f"{path}.service.port", port, "port is not valid: must be between 1 and 65535, "
                                                                   "inclusive"))
    return causes


def _webhook(hook: dict[str, Any], path: str, mutating: bool) -> list[Cause]:
    causes: list[Cause] = []
    name = s(hook.get("name"))
    if not name:
        causes.append(field_required(f"{path}.name"))
    elif name.count(".") < 2:
        causes.append(field_invalid(f"{path}.name", name, "should be a domain with at least three segments "
                                                          "separated by dots"))
    else:
        causes += [field_invalid(f"{path}.name", name, m) for m in names.is_dns1123_subdomain(name.lower())]
    for i, rule in enumerate(lst(hook.get("rules"))):
        causes += _rule(d(rule), f"{path}.rules[{i}]")
    for key, allowed in (("failurePolicy", _FAILURE), ("matchPolicy", _MATCH)):
        if hook.get(key) is not None and hook.get(key) not in allowed:
            causes.append(field_not_supported(f"{path}.{key}", hook.get(key), allowed))
    effects = hook.get("sideEffects")
    if effects is None:
        causes.append(field_required(f"{path}.sideEffects", "must specify one of None, NoneOnDryRun"))
    elif effects not in _SIDE_EFFECTS:
        causes.append(field_not_supported(f"{path}.sideEffects", effects, _SIDE_EFFECTS))
    timeout = hook.get("timeoutSeconds")
    if isinstance(timeout, int) and not 1 <= timeout <= 30:
        causes.append(field_invalid(f"{path}.timeoutSeconds", timeout,
                                    "the timeout value must be between 1 and 30 seconds"))
    for key in ("namespaceSelector", "objectSelector"):
        if hook.get(key) is not None:
            causes += validate_label_selector(d(hook.get(key)), f"{path}.{key}")
    if mutating and hook.get("reinvocationPolicy") is not None and hook["reinvocationPolicy"] not in _REINVOCATION:
        causes.append(field_not_supported(f"{path}.reinvocationPolicy", hook["reinvocationPolicy"], _REINVOCATION))
    causes += _client_config(d(hook.get("clientConfig")), f"{path}.clientConfig")
    causes += _match_conditions(lst(hook.get("matchConditions")), f"{path}.matchConditions",
                                set(admission_cel.BASE_VARIABLES))
    return causes


def _review_versions(versions: list[Any], path: str) -> list[Cause]:
    if not versions:
        return [field_required(path, "must specify one of v1, v1beta1")]
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, v in enumerate(versions):
        v = s(v)
        if v in seen:
            causes.append(field_invalid(f"{path}[{i}]", v, "duplicate version"))
            continue
        seen.add(v)
    if not seen & set(_REVIEW_VERSIONS):
        causes.append(field_invalid(path, versions, "must include at least one of v1, v1beta1"))
    return causes


def _webhook_configuration(obj: dict[str, Any], old: dict[str, Any] | None, mutating: bool) -> list[Cause]:
    causes = validate_meta(obj, old, False, names.name_is_dns_subdomain)
    seen: set[str] = set()
    for i, hook in enumerate(lst(obj.get("webhooks"))):
        hook = d(hook)
        path = f"webhooks[{i}]"
        causes += _webhook(hook, path, mutating)
        causes += _review_versions(lst(hook.get("admissionReviewVersions")), f"{path}.admissionReviewVersions")
        name = s(hook.get("name"))
        if name:
            if name in seen:
                causes.append(field_duplicate(f"{path}.name", name))
            seen.add(name)
    return causes


def mutating_webhook_configuration(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    return _webhook_configuration(obj, old, True)


def validating_webhook_configuration(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    return _webhook_configuration(obj, old, False)


def _match_resources(mr: dict[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    policy = mr.get("matchPolicy")
    if policy is None:
        causes.append(field_required(f"{path}.matchPolicy"))
    elif policy not in _MATCH:
        causes.append(field_not_supported(f"{path}.matchPolicy", policy, _MATCH))
    for key in ("namespaceSelector", "objectSelector"):
        if mr.get(key) is None:
            causes.append(field_required(f"{path}.{key}"))
        else:
            causes += validate_label_selector(d(mr.get(key)), f"{path}.{key}")
    for key in ("resourceRules", "excludeResourceRules"):
        for i, rule in enumerate(lst(mr.get(key))):
            rule = d(rule)
            seen: set[str] = set()
            for j, rn in enumerate(lst(rule.get("resourceNames"))):
                causes += [field_invalid(f"{path}.{key}[{i}].resourceNames[{j}]", rn, msg)
                           for msg in names.path_segment_name(s(rn), False)]
                if rn in seen:
                    causes.append(field_duplicate(f"{path}.{key}[{i}].resourceNames[{j}]", rn))
                seen.add(s(rn))
            causes += _rule(rule, f"{path}.{key}[{i}]")
    return causes


def validating_admission_policy(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes = validate_meta(obj, old, False, names.name_is_dns_subdomain)
    spec = d(obj.get("spec"))
    fp = spec.get("failurePolicy")
    if fp is None:
        causes.append(field_required("spec.failurePolicy"))
    elif fp not in _FAILURE:
        causes.append(field_not_supported("spec.failurePolicy", fp, _FAILURE))
    kind = spec.get("paramKind")
    if kind is not None:
        kind = d(kind)
        if not s(kind.get("apiVersion")):
            causes.append(field_required("spec.paramKind.apiVersion"))
        if not s(kind.get("kind")):
            causes.append(field_required("spec.paramKind.kind"))
    mc = spec.get("matchConstraints")
    if mc is None:
        causes.append(field_required("spec.matchConstraints"))
    else:
        causes += _match_resources(d(mc), "spec.matchConstraints")
        if not lst(d(mc).get("resourceRules")):
            causes.append(field_required("spec.matchConstraints.resourceRules"))
    variables = admission_cel.policy_variables(obj)
    causes += _match_conditions(lst(spec.get("matchConditions")), "spec.matchConditions", variables)
    for i, var in enumerate(lst(spec.get("variables"))):
        var = d(var)
        name, expr = s(var.get("name")), s(var.get("expression"))
        if not name.strip():
            causes.append(field_required(f"spec.variables[{i}].name", "name is not specified"))
        elif not _CEL_IDENT.match(name) or name in _CEL_RESERVED:
            causes.append(field_invalid(f"spec.variables[{i}].name", name, "name is not a valid CEL identifier"))
        if not expr.strip():
            causes.append(field_required(f"spec.variables[{i}].expression", "expression is not specified"))
        else:
            causes += _condition(expr, f"spec.variables[{i}].expression", variables)
    validations, audits = lst(spec.get("validations")), lst(spec.get("auditAnnotations"))
    if not validations and not audits:
        causes.append(field_required("spec.validations", "validations or auditAnnotations must contain at least one item"))
        causes.append(field_required("spec.auditAnnotations",
                                     "validations or auditAnnotations must contain at least one item"))
    for i, v in enumerate(validations):
        v = d(v)
        path = f"spec.validations[{i}]"
        expr = s(v.get("expression"))
        if not expr.strip():
            causes.append(field_required(f"{path}.expression", "expression is not specified"))
        else:
            causes += _condition(expr, f"{path}.expression", variables)
        msg_expr = s(v.get("messageExpression"))
        if msg_expr and not msg_expr.strip():
            causes.append(field_invalid(f"{path}.messageExpression", msg_expr, "must be non-empty if specified"))
        elif msg_expr:
            causes += _condition(msg_expr, f"{path}.messageExpression", variables)
        msg = s(v.get("message"))
        if msg and not msg.strip():
            causes.append(field_invalid(f"{path}.message", msg, "message must be non-empty if specified"))
        elif "\n" in msg.strip() or "\r" in msg.strip():
            causes.append(field_invalid(f"{path}.message", msg, "message must not contain line breaks"))
        if v.get("reason") is not None and v.get("reason") not in _REASONS:
            causes.append(field_not_supported(f"{path}.reason", v.get("reason"), _REASONS))
    keys: set[str] = set()
    for i, a in enumerate(audits):
        a = d(a)
        path = f"spec.auditAnnotations[{i}]"
        key, expr = s(a.get("key")), s(a.get("valueExpression")).strip()
        if not expr:
            causes.append(field_required(f"{path}.valueExpression", "valueExpression is not specified"))
        else:
            causes += _condition(expr, f"{path}.valueExpression", variables)
        if key in keys:
            causes.append(field_duplicate(f"{path}.key", key))
        keys.add(key)
    return causes


def validating_admission_policy_binding(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes = validate_meta(obj, old, False, names.name_is_dns_subdomain)
    spec = d(obj.get("spec"))
    policy = s(spec.get("policyName"))
    if not policy:
        causes.append(field_required("spec.policyName"))
    else:
        causes += [field_invalid("spec.policyName", policy, msg) for msg in names.name_is_dns_subdomain(policy, False)]
    ref = spec.get("paramRef")
    if ref is not None:
        ref = d(ref)
        name, selector = s(ref.get("name")), ref.get("selector")
        if name:
            causes += [field_invalid("spec.paramRef.name", name, msg) for msg in names.path_segment_name(name, False)]
            if selector is not None:
                causes.append(field_forbidden("spec.paramRef.name", "name and selector are mutually exclusive"))
        if selector is not None:
            causes += validate_label_selector(d(selector), "spec.paramRef.selector")
            if name:
                causes.append(field_forbidden("spec.paramRef.selector", "name and selector are mutually exclusive"))
        if not name and selector is None:
            causes.append(field_required("spec.paramRef", "one of name or selector must be specified"))
        action = ref.get("parameterNotFoundAction")
        if not action:
            causes.append(field_required("spec.paramRef.parameterNotFoundAction"))
        elif action not in ("Deny", "Allow"):
            causes.append(field_not_supported("spec.paramRef.parameterNotFoundAction", action, ["Deny", "Allow"]))
    if spec.get("matchResources") is not None:
        # upstream's field path carries this spelling
        causes += _match_resources(d(spec.get("matchResources")), "spec.matchResouces")
    actions = lst(spec.get("validationActions"))
    seen: set[str] = set()
    for i, a in enumerate(actions):
        if a not in _ACTIONS:
            causes.append(field_not_supported(f"spec.validationActions[{i}]", a, _ACTIONS))
        if a in seen:
            causes.append(field_duplicate(f"spec.validationActions[{i}]", a))
        seen.add(s(a))
    if {"Deny", "Warn"} <= seen:
        causes.append(field_invalid("spec.validationActions", actions,
                                    "must not contain both Deny and Warn (repeating the same validation failure "
                                    "information in the API response and headers serves no purpose)"))
    if not seen:
        causes.append(field_required("spec.validationActions", "at least one validation action is required"))
    return causes
