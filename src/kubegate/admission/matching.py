"""Which writes a webhook or a ValidatingAdmissionPolicy sees (upstream
apiserver/pkg/admission/plugin/webhook/predicates/{rules,namespace,object} and
policy/matching): rules with operations, groups, versions, resources/subresources and scope;
matchPolicy Equivalent; namespaceSelector; objectSelector. Pure functions over plain objects."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubegate.admission.interface import AdmissionRequest
from kubegate.api.resources import RESOURCES, Resource
from kubegate.api.validation.selector import is_empty, selector_matches

NamespaceGetter = Callable[[str], dict[str, Any] | None]

# Webhooks and policies never intercept their own configuration (upstream's
# IsExemptAdmissionConfigurationResource), so a bad one can always be removed.
_EXEMPT = frozenset({"mutatingwebhookconfigurations", "validatingwebhookconfigurations",
                     "validatingadmissionpolicies", "validatingadmissionpolicybindings",
                     "mutatingadmissionpolicies", "mutatingadmissionpolicybindings"})


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _l(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def exempt(r: Resource) -> bool:
    return r.group == "admissionregistration.k8s.io" and r.plural in _EXEMPT


def _has(values: list[Any], value: str) -> bool:
    return "*" in values or value in values


def rule_matches(rule: dict[str, Any], operation: str, r: Resource, subresource: str, namespace: str) -> bool:
    """rules.Matcher.Matches for one RuleWithOperations."""
    if not _has(_l(rule.get("operations")), operation):
        return False
    if not _has(_l(rule.get("apiGroups")), r.group) or not _has(_l(rule.get("apiVersions")), r.version):
        return False
    scope = rule.get("scope") or "*"
    if scope == "Cluster" and namespace:
        return False
    if scope == "Namespaced" and not namespace:
        return False
    for entry in _l(rule.get("resources")):
        if not isinstance(entry, str):
            continue
        if entry == "*/*":
            return True
        res, _, sub = entry.partition("/")
        if (res == "*" or res == r.plural) and (sub == "*" or sub == subresource):
            return True
    return False


def _equivalents(r: Resource) -> list[Resource]:
    """The same group/resource served at other versions (upstream's equivalent resource mapper)."""
    return [x for x in RESOURCES if x.group == r.group and x.plural == r.plural and x.version != r.version]


def match_rules(rules: list[Any], operation: str, r: Resource, subresource: str, namespace: str,
                match_policy: str) -> Resource | None:
    """The resource (the request's, or with matchPolicy Equivalent an equivalent version) that one of
    `rules` matches, or None."""
    candidates = [r] + (_equivalents(r) if match_policy != "Exact" else [])
    for cand in candidates:
        if any(rule_matches(_d(rule), operation, cand, subresource, namespace) for rule in rules):
            return cand
    return None


def _labels(obj: dict[str, Any] | None) -> dict[str, Any]:
    return _d(_d(_d(obj).get("metadata")).get("labels"))


def namespace_matches(selector: Any, req: AdmissionRequest, get_namespace: NamespaceGetter) -> bool:
    """namespace.Matcher.MatchNamespaceSelector: cluster-scoped objects other than namespaces always
    match; a namespace is matched by its own labels; other objects by their namespace's."""
    sel = _d(selector)
    is_namespace = req.resource.group == "" and req.resource.plural == "namespaces"
    if not req.namespace and not is_namespace:
        return True
    if is_empty(sel):
        return True
    if is_namespace:
        labels = _labels(req.obj if req.obj is not None else req.old)
    else:
        ns = get_namespace(req.namespace)
        labels = _labels(ns)
    return selector_matches(sel, labels)


def object_matches(selector: Any, req: AdmissionRequest) -> bool:
    """object.Matcher.MatchObjectSelector: the new or the old object's labels match."""
    sel = _d(selector)
    if is_empty(sel):
        return True
    return any(o is not None and selector_matches(sel, _labels(o)) for o in (req.obj, req.old))
