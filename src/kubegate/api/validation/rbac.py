"""rbac.authorization.k8s.io/v1 validators (pkg/apis/rbac/validation)."""
from __future__ import annotations

from typing import Any

from kubegate.api.errors import Cause, field_invalid, field_not_supported, field_required

from . import names
from .common import GoJSON, d, lst, s
from .meta import validate_meta
from .selector import validate_label_selector

GROUP = "rbac.authorization.k8s.io"


def policy_rule(rule: dict[str, Any], namespaced: bool, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not lst(rule.get("verbs")):
        causes.append(field_required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = lst(rule.get("nonResourceURLs"))
    if urls:
        if namespaced:
            causes.append(field_invalid(f"{path}.nonResourceURLs", GoJSON(urls),
                                        "namespaced rules cannot apply to non-resource URLs"))
        if lst(rule.get("apiGroups")) or lst(rule.get("resources")) or lst(rule.get("resourceNames")):
            causes.append(field_invalid(f"{path}.nonResourceURLs", GoJSON(urls),
                                        "rules cannot apply to both regular resources and non-resource URLs"))
        return causes
    if not lst(rule.get("apiGroups")):
        causes.append(field_required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not lst(rule.get("resources")):
        causes.append(field_required(f"{path}.resources", "resource rules must supply at least one resource"))
    return causes


def _meta(obj: dict[str, Any], old: dict[str, Any] | None, namespaced: bool) -> list[Cause]:
    return validate_meta(obj, old, namespaced, names.path_segment_name)


def role(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes = _meta(obj, old, True)
    for i, rule in enumerate(lst(obj.get("rules"))):
        causes += policy_rule(d(rule), True, f"rules[{i}]")
    return causes


def clusterrole(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes = _meta(obj, old, False)
    for i, rule in enumerate(lst(obj.get("rules"))):
        causes += policy_rule(d(rule), False, f"rules[{i}]")
    agg = obj.get("aggregationRule")
    if agg is not None:
        selectors = lst(d(agg).get("clusterRoleSelectors"))
        if not selectors:
            causes.append(field_required("aggregationRule.clusterRoleSelectors",
                                         "at least one clusterRoleSelector required if aggregationRule is non-nil"))
        for i, sel in enumerate(selectors):
            causes += validate_label_selector(d(sel), f"aggregationRule.clusterRoleSelectors[{i}]")
    return causes


def subject(sub: dict[str, Any], namespaced: bool, path: str) -> list[Cause]:
    causes: list[Cause] = []
    name, kind, group = s(sub.get("name")), s(sub.get("kind")), s(sub.get("apiGroup"))
    if not name:
        causes.append(field_required(f"{path}.name"))
    if kind == "ServiceAccount":
        if name:
            causes += [field_invalid(f"{path}.name", name, m) for m in names.name_is_dns_subdomain(name, False)]
        if group:
            causes.append(field_not_supported(f"{path}.apiGroup", group, [""]))
        if not namespaced and not s(sub.get("namespace")):
            causes.append(field_required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if group != GROUP:
            causes.append(field_not_supported(f"{path}.apiGroup", group, [GROUP]))
    else:
        causes.append(field_not_supported(f"{path}.kind", kind, ["ServiceAccount", "User", "Group"]))
    return causes


def _role_ref_go(ref: dict[str, Any]) -> GoJSON:
    # the internal RoleRef struct has no JSON tags, so upstream prints Go field names
    return GoJSON({"APIGroup": s(ref.get("apiGroup")), "Kind": s(ref.get("kind")), "Name": s(ref.get("name"))})


def _binding(obj: dict[str, Any], old: dict[str, Any] | None, namespaced: bool) -> list[Cause]:
    causes = _meta(obj, old, namespaced)
    ref = d(obj.get("roleRef"))
    if old is not None:
        old_ref = d(old.get("roleRef"))
        if any(s(ref.get(k)) != s(old_ref.get(k)) for k in ("apiGroup", "kind", "name")):
            causes.append(field_invalid("roleRef", _role_ref_go(ref), "cannot change roleRef"))
    group, kind, name = s(ref.get("apiGroup")), s(ref.get("kind")), s(ref.get("name"))
    if group != GROUP:
        causes.append(field_not_supported("roleRef.apiGroup", group, [GROUP]))
    allowed = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if kind not in allowed:
        causes.append(field_not_supported("roleRef.kind", kind, allowed))
    if not name:
        causes.append(field_required("roleRef.name"))
    else:
        causes += [field_invalid("roleRef.name", name, m) for m in names.path_segment_name(name, False)]
    for i, sub in enumerate(lst(obj.get("subjects"))):
        causes += subject(d(sub), namespaced, f"subjects[{i}]")
    return causes


def rolebinding(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    return _binding(obj, old, True)


def clusterrolebinding(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    return _binding(obj, old, False)
