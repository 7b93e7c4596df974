"""Who can, why (not), and what a subject holds: answers computed from the RBAC authorizer's own
index and matching functions, so they cannot disagree with the decisions the server makes.

- who_can: every subject a binding grants the request to (upstream's SubjectAccessEvaluator,
  plus the binding and rule that grant it); system:masters is always first.
- explain: the match behind an RBAC allow, or for a denial the nearest rules that apply to the
  user (fewest fields off; a wrong verb, resourceName or namespace counts as nearer than a wrong
  resource, API group or URL).
- rolesum: every rule a subject holds, cluster-wide and per namespace.

Results are plain JSON-ready dicts (the HTTP API serves them) with text renderers for the CLI.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from kubegate.authn.user import (
    ALL_AUTHENTICATED, SERVICE_ACCOUNT_GROUP, SERVICE_ACCOUNT_USERNAME_PREFIX, SYSTEM_PRIVILEGED_GROUP, UserInfo,
    service_account_username,
)
from kubegate.authz.rbac import (
    API_GROUP_ALL, KIND_ROLE_BINDING, VERB_ALL, Binding, RBACAuthorizer,
    Subject, rule_allows,
)
from kubegate.authz.types import Attributes, AuthzResult, Decision, PolicyRule

_NOBODY = UserInfo(name="")
# The verbs a rolesum table has columns for, in kubectl's usual order; others get a column too.
TABLE_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
_MAX_NEAR_MISSES = 10


def binding_json(b: Binding) -> dict[str, str]:
    out = {"kind": b.kind, "name": b.name}
    if b.namespace:
        out["namespace"] = b.namespace
    return out


def _subject_json(s: Subject, binding_namespace: str) -> dict[str, str]:
    out = {"kind": s.kind, "name": s.name}
    ns = s.namespace or (binding_namespace if s.kind == "ServiceAccount" else "")
    if ns:
        out["namespace"] = ns
    return out


def _grant_json(b: Binding, rule: PolicyRule) -> dict[str, Any]:
    return {"binding": binding_json(b), "role": {"kind": b.role_kind, "name": b.role_name}, "rule": rule.to_dict()}


# --- who can ---

def who_can(rbac: RBACAuthorizer, attrs: Attributes, all_namespaces: bool = False) -> dict[str, Any]:
    """Subjects allowed `attrs` (its user is ignored). ClusterRoleBindings always count; RoleBindings
    of attrs.namespace, or of every namespace with `all_namespaces` (each grant then says where)."""
    subjects: list[dict[str, Any]] = [{
        "subject": {"kind": "Group", "name": SYSTEM_PRIVILEGED_GROUP},
        "authorizer": "system:masters", "reason": "members of system:masters bypass authorization"}]
    errors: list[str] = []
    bindings = rbac.cluster_role_bindings()
    if all_namespaces:
        bindings += rbac.role_bindings()
    elif attrs.namespace:
        bindings += rbac.role_bindings(attrs.namespace)
    allowing: dict[tuple[str, str, str], PolicyRule | None] = {}
    for b in bindings:
        key = (b.role_kind, b.role_name, b.namespace)
        if key not in allowing:
            rules, error = rbac.role_ref_rules(b.role_kind, b.role_name, b.namespace)
            if error:
                errors.append(error)
            wanted = dataclasses.replace(attrs, user=_NOBODY, namespace=b.namespace or attrs.namespace)
            allowing[key] = next((r for r in rules or () if rule_allows(wanted, r)), None)
        rule = allowing[key]
        if rule is None:
            continue
        for s in b.subjects:
            if s.kind == "ServiceAccount" and not (s.namespace or b.namespace):
                continue  # never matches anyone (upstream appliesToUser)
            subjects.append({"subject": _subject_json(s, b.namespace), "authorizer": "RBAC", **_grant_json(b, rule)})
    return {"subjects": subjects, "evaluationErrors": list(dict.fromkeys(errors))}


# --- explain access ---

def _mismatches(attrs: Attributes, rule: PolicyRule) -> list[str] | None:
    """Which fields of `rule` fail `attrs`; None when the rule is of the other kind (resource vs URL)."""
    out = []
    if VERB_ALL not in rule.verbs and attrs.verb not in rule.verbs:
        out.append("verb")
    if not attrs.resource_request:
        if not rule.non_resource_urls:
            return None
        if not rule_allows(attrs, PolicyRule(verbs=(VERB_ALL,), non_resource_urls=rule.non_resource_urls)):
            out.append("nonResourceURL")
        return out
    if not rule.resources:
        return None
    if API_GROUP_ALL not in rule.api_groups and attrs.api_group not in rule.api_groups:
        out.append("apiGroup")
    if not rule_allows(attrs, PolicyRule(verbs=(VERB_ALL,), api_groups=(API_GROUP_ALL,), resources=rule.resources)):
        out.append("resource")
    if rule.resource_names and attrs.name not in rule.resource_names:
        out.append("resourceName")
    return out


def _miss_json(b: Binding, s: Subject, rule: PolicyRule, fields: list[str]) -> dict[str, Any]:
    return {"mismatch": fields, "subject": _subject_json(s, b.namespace), **_grant_json(b, rule)}


def explain(rbac: RBACAuthorizer, attrs: Attributes, result: AuthzResult, decided_by: str) -> dict[str, Any]:
    """Why the chain decided `result` (made by `decided_by`, "" when nobody had an opinion)."""
    out: dict[str, Any] = {
        "allowed": result.decision is Decision.ALLOW, "decision": _DECISIONS[result.decision],
        "authorizer": decided_by, "reason": result.reason}
    if result.error:
        out["evaluationError"] = result.error
    visited = list(rbac.visit(attrs.user, attrs.namespace))
    if decided_by == "RBAC" and out["allowed"]:
        for b, s, rule, _ in visited:
            if rule is not None and rule_allows(attrs, rule):
                out["match"] = {"subject": _subject_json(s, b.namespace), **_grant_json(b, rule)}
                break
        return out
    if out["allowed"]:
        return out
    misses: list[tuple[int, dict[str, Any]]] = []
    for b, s, rule, _ in visited:
        fields = _mismatches(attrs, rule) if rule is not None else None
        if fields:
            misses.append((sum(_DISTANCE.get(f, 1) for f in fields), _miss_json(b, s, rule, fields)))  # type: ignore[arg-type]
    if attrs.resource_request:
        # Bindings of this user in other namespaces that would allow the request there.
        for other in rbac.binding_namespaces():
            if other == attrs.namespace:
                continue
            there = dataclasses.replace(attrs, namespace=other)
            for b, s, rule, _ in rbac.visit(attrs.user, other):
                if b.kind == KIND_ROLE_BINDING and rule is not None and rule_allows(there, rule):
                    misses.append((1, _miss_json(b, s, rule, ["namespace"])))
    if misses:
        nearest = min(n for n, _ in misses)
        out["nearMisses"] = [m for n, m in misses if n == nearest][:_MAX_NEAR_MISSES]
    errors = [e for _, _, rule, e in visited if rule is None]
    if errors:
        out["evaluationErrors"] = list(dict.fromkeys(errors))
    return out


# A rule about another resource is further off than one about this resource with another verb,
# name or namespace.
_DISTANCE = {"resource": 2, "apiGroup": 2, "nonResourceURL": 2}
_DECISIONS = {Decision.ALLOW: "Allow", Decision.DENY: "Deny", Decision.NO_OPINION: "NoOpinion"}


# --- rolesum ---

def subject_user(kind: str, name: str, groups: Iterable[str] = ()) -> UserInfo:
    """The identity a subject authenticates as: users and service accounts carry the groups every
    authenticated request gets (plus `groups`); a Group is evaluated as a nameless member of it.
    A service account is `system:serviceaccount:NS:NAME` or `NS/NAME`."""
    if kind == "Group":
        return UserInfo(name="", groups=(name,))
    if kind == "ServiceAccount":
        ns, _, sa = (name[len(SERVICE_ACCOUNT_USERNAME_PREFIX):].partition(":")
                     if name.startswith(SERVICE_ACCOUNT_USERNAME_PREFIX) else name.partition("/"))
        return UserInfo(name=service_account_username(ns, sa),
                        groups=(SERVICE_ACCOUNT_GROUP, f"{SERVICE_ACCOUNT_GROUP}:{ns}", ALL_AUTHENTICATED))
    return UserInfo(name=name, groups=tuple(dict.fromkeys([*groups, ALL_AUTHENTICATED])))


def rolesum(rbac: RBACAuthorizer, user: UserInfo) -> dict[str, Any]:
    """The rules `user` holds: cluster-wide (ClusterRoleBindings) and per namespace (RoleBindings)."""
    scopes = [("", [(b, r) for b, _, r, _ in rbac.visit(user, "")])]
    for ns in rbac.binding_namespaces():
        local = [(b, r) for b, _, r, _ in rbac.visit(user, ns) if b.kind == KIND_ROLE_BINDING]
        if local:
            scopes.append((ns, local))
    out = []
    for ns, pairs in scopes:
        bindings = list(dict.fromkeys(b for b, _ in pairs))
        rules = [r.to_dict() for _, r in pairs if r is not None]
        out.append({"namespace": ns, "bindings": [{**binding_json(b), "role": {"kind": b.role_kind,
                                                                             "name": b.role_name}}
                                                  for b in bindings], "rules": rules})
    return {"user": user.name, "groups": list(user.groups), "scopes": out}


# --- text renderers (the CLI prints these) ---

def _who(s: Mapping[str, str]) -> str:
    return f"{s['kind']}/{s['namespace']}/{s['name']}" if s.get("namespace") else f"{s['kind']}/{s['name']}"


def _ref(d: Mapping[str, str]) -> str:
    return f"{d['kind']}/{d['namespace']}/{d['name']}" if d.get("namespace") else f"{d['kind']}/{d['name']}"


def rule_text(rule: Mapping[str, Any]) -> str:
    parts = [f"verbs={','.join(rule.get('verbs') or [])}"]
    for key in ("apiGroups", "resources", "resourceNames", "nonResourceURLs"):
        if rule.get(key):
            shown = ",".join(g if g else '""' for g in rule[key])
            parts.append(f"{key}={shown}")
    return " ".join(parts)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def format_who_can(doc: Mapping[str, Any]) -> str:
    rows = [["SUBJECT", "BINDING", "ROLE", "RULE"]]
    for g in doc["subjects"]:
        if "binding" in g:
            rows.append([_who(g["subject"]), _ref(g["binding"]), _ref(g["role"]), rule_text(g["rule"])])
        else:
            rows.append([_who(g["subject"]), "-", "-", g.get("reason", "")])
    text = _table(rows)
    for e in doc.get("evaluationErrors") or ():
        text += f"\nwarning: {e}"
    return text


def format_explanation(doc: Mapping[str, Any]) -> str:
    lines = [f"{'ALLOWED' if doc['allowed'] else 'DENIED'} ({doc['decision']}"
             + (f" by {doc['authorizer']})" if doc.get("authorizer") else ", no authorizer had an opinion)")]
    if doc.get("reason"):
        lines.append(f"reason: {doc['reason']}")
    if doc.get("evaluationError"):
        lines.append(f"evaluation error: {doc['evaluationError']}")
    m = doc.get("match")
    if m:
        lines += [f"binding: {_ref(m['binding'])} (subject {_who(m['subject'])})",
                  f"role:    {_ref(m['role'])}", f"rule:    {rule_text(m['rule'])}"]
    misses = doc.get("nearMisses") or []
    if misses:
        lines.append("nearest rules:")
        for n in misses:
            lines.append(f"  wrong {'+'.join(n['mismatch'])}: {_ref(n['binding'])} -> {_ref(n['role'])}: "
                         f"{rule_text(n['rule'])}")
    elif not doc["allowed"]:
        lines.append("no RBAC rule applying to this user comes close")
    for e in doc.get("evaluationErrors") or ():
        lines.append(f"warning: {e}")
    return "\n".join(lines)


def format_rolesum(doc: Mapping[str, Any]) -> str:
    out = [f"Subject: {doc['user'] or '(group members)'}  groups: {', '.join(doc['groups']) or '-'}"]
    for scope in doc["scopes"]:
        title = f"Namespace {scope['namespace']}" if scope["namespace"] else "Cluster-wide (ClusterRoleBindings)"
        out.append(f"\n{title}")
        out += [f"  via {_ref(b)} -> {_ref(b['role'])}" for b in scope["bindings"]]
        cells: dict[str, set[str]] = {}
        urls: dict[str, set[str]] = {}
        for rule in scope["rules"]:
            verbs = set(rule.get("verbs") or ())
            for url in rule.get("nonResourceURLs") or ():
                urls.setdefault(url, set()).update(verbs)
            names = f" [{','.join(rule['resourceNames'])}]" if rule.get("resourceNames") else ""
            for group in rule.get("apiGroups") or ():
                for res in rule.get("resources") or ():
                    cells.setdefault((f"{res}.{group}" if group else res) + names, set()).update(verbs)
        if cells:
            extra = sorted({v for vs in cells.values() for v in vs} - set(TABLE_VERBS) - {VERB_ALL})
            cols = [*TABLE_VERBS, *extra]
            rows = [["RESOURCE", *cols]]
            for res in sorted(cells):
                vs = cells[res]
                rows.append([res, *("✔" if VERB_ALL in vs or c in vs else "" for c in cols)])
            out += ["  " + line for line in _table(rows).splitlines()]
        if urls:
            rows = [["NON-RESOURCE URL", "VERBS"]] + [[u, ",".join(sorted(v))] for u, v in sorted(urls.items())]
            out += ["  " + line for line in _table(rows).splitlines()]
        if not cells and not urls:
            out.append("  (no rules)")
    return "\n".join(out)
