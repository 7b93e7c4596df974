"""RBAC privilege-escalation prevention (upstream pkg/registry/rbac/{role,clusterrole,rolebinding,
clusterrolebinding}/policybased, escalation_check.go and validation/rule.go).

A Role or ClusterRole may be written by a member of system:masters, by someone allowed to
`escalate` it, or by someone who already holds every permission it grants. A binding may be
written by system:masters, by someone allowed to `bind` the role it references, or by someone who
holds every permission of that role. Permissions held are the requester's RBAC rules in the
namespace of the object (upstream resolves them with RBAC only, whatever the authorizer chain);
the `escalate` and `bind` checks go through the server's whole authorizer chain.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubegate.api import errors
from kubegate.authn.union import aggregate_message
from kubegate.authn.user import SYSTEM_PRIVILEGED_GROUP, UserInfo
from kubegate.authz.messages import go_quote
from kubegate.authz.rbac import RBACAuthorizer, covers
from kubegate.authz.types import Attributes, Authorizer, Decision, PolicyRule, RuleSet

GROUP = "rbac.authorization.k8s.io"
ROLE_RESOURCES = ("roles", "clusterroles")
BINDING_RESOURCES = ("rolebindings", "clusterrolebindings")

# Setting an aggregationRule can gather anything, so it needs `*` on everything.
FULL_AUTHORITY = (PolicyRule(verbs=("*",), api_groups=("*",), resources=("*",)),
                  PolicyRule(verbs=("*",), non_resource_urls=("*",)))
AGGREGATION_DENIED = "must have cluster-admin privileges to use the aggregationRule"


# --- the message (validation/policy_compact.go, apis/rbac/v1 CompactString) ---

def compact_rules(rules: Sequence[PolicyRule]) -> list[PolicyRule]:
    """Merge rules that name one group, one resource and at most one resourceName and differ only
    by verb (upstream CompactRules); other rules are kept as they are."""
    compacted: list[PolicyRule] = []
    simple: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}
    for rule in rules:
        if (len(rule.resource_names) <= 1 and not rule.non_resource_urls and len(rule.api_groups) == 1
                and len(rule.resources) == 1):
            simple.setdefault((rule.api_groups[0], rule.resources[0], rule.resource_names), []).extend(rule.verbs)
        else:
            compacted.append(rule)
    compacted.extend(PolicyRule(tuple(verbs), (group,), (resource,), names)
                     for (group, resource, names), verbs in simple.items())
    return compacted


def _go_strings(values: Sequence[str]) -> str:
    """Go's %q of a []string: `["a" "b"]`."""
    return "[" + " ".join(go_quote(v) for v in values) + "]"


def compact_string(rule: PolicyRule) -> str:
    parts = [f"{label}:{_go_strings(values)}" for label, values in (
        ("APIGroups", rule.api_groups), ("Resources", rule.resources), ("NonResourceURLs", rule.non_resource_urls),
        ("ResourceNames", rule.resource_names), ("Verbs", rule.verbs)) if values]
    return "{" + ", ".join(parts) + "}"


def escalation_message(user: UserInfo, owned: RuleSet, requested: Sequence[PolicyRule]) -> str | None:
    """Upstream ConfirmNoEscalation: None when `owned` covers `requested`, else the error text."""
    ok, missing = covers(owned.rules, requested)
    if ok:
        return None
    lines = sorted({compact_string(r) for r in compact_rules(missing)})
    msg = (f"user {go_quote(user.name)} (groups={_go_strings(user.groups)}) is attempting to grant RBAC "
           "permissions not currently held:\n" + "\n".join(lines))
    if owned.errors:
        # upstream prints a one-element []error holding the resolver's aggregate
        msg += f"; resolution errors: [{aggregate_message(owned.errors)}]"
    return msg


def has_aggregation_rule(obj: dict[str, Any] | None) -> bool:
    return bool(obj and ((obj.get("aggregationRule") or {}).get("clusterRoleSelectors")))


# Server-managed metadata: absent from a PUT body until the registry merges it in.
_SERVER_SET = frozenset(("uid", "creationTimestamp", "resourceVersion", "generation", "deletionTimestamp",
                         "deletionGracePeriodSeconds", "managedFields", "selfLink"))
_GC_FIELDS = ("ownerReferences", "finalizers")


def _comparable(obj: dict[str, Any], gc_from: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _SERVER_SET and k not in _GC_FIELDS}
    meta.update({k: v for k, v in (gc_from.get("metadata") or {}).items() if k in _GC_FIELDS})
    return {**{k: v for k, v in obj.items() if k != "metadata"}, "metadata": meta}


def only_gc_fields_change(obj: dict[str, Any], old: dict[str, Any]) -> bool:
    """Upstream IsOnlyMutatingGCFields: nothing but ownerReferences and finalizers differ."""
    return _comparable(obj, old) == _comparable(old, old)


def _rules_of(obj: dict[str, Any]) -> list[PolicyRule]:
    return [PolicyRule.from_dict(r) for r in obj.get("rules") or () if isinstance(r, dict)]


class EscalationGuard:
    """Called where role and binding writes are admitted (before validation, as upstream's
    policy-based storage); raises upstream's 403 (or 404 for a missing referenced role)."""

    def __init__(self, authorizer: Authorizer, rbac: RBACAuthorizer) -> None:
        self.authorizer = authorizer
        self.rbac = rbac

    async def admit(self, operation: str, plural: str, obj: dict[str, Any] | None, old: dict[str, Any] | None,
                    namespace: str | None, user: UserInfo) -> None:
        if operation not in ("create", "update") or obj is None or plural not in ROLE_RESOURCES + BINDING_RESOURCES:
            return
        if SYSTEM_PRIVILEGED_GROUP in user.groups:
            return
        ns = namespace or ""
        name = (obj.get("metadata") or {}).get("name") or ""
        if plural in ROLE_RESOURCES:
            # The escalate check uses the request's name: none on a create (POST to the collection).
            if await self._allowed(user, "escalate", plural, ns, name if operation == "update" else ""):
                return
            if old is not None and only_gc_fields_change(obj, old):
                return
            self._confirm(user, ns, plural, name, _rules_of(obj))
            if plural == "clusterroles" and (has_aggregation_rule(obj) or has_aggregation_rule(old)):
                if escalation_message(user, self.rbac.rules_for(user, ns, plural=True), FULL_AUTHORITY):
                    raise errors.forbidden(plural, name, AGGREGATION_DENIED, GROUP)
            return
        if old is not None and only_gc_fields_change(obj, old):
            return
        ref = obj.get("roleRef") or {}
        kind, ref_name = ref.get("kind") or "", ref.get("name") or ""
        if kind in ("Role", "ClusterRole") and await self._allowed(
                user, "bind", kind.lower() + "s", ns, ref_name, ref.get("apiGroup") or GROUP):
            return
        rules, error = self.rbac.role_ref_rules(kind, ref_name, ns, plural=True)
        if rules is None:
            if kind in ("Role", "ClusterRole"):
                raise errors.not_found(kind.lower() + "s", ref_name, GROUP)
            raise errors.internal(error)
        self._confirm(user, ns, plural, name, rules)

    async def _allowed(self, user: UserInfo, verb: str, resource: str, namespace: str, name: str,
                       group: str = GROUP) -> bool:
        attrs = Attributes(user=user, verb=verb, namespace=namespace, api_group=group, api_version="*",
                           resource=resource, name=name, resource_request=True)
        return (await self.authorizer.authorize(attrs)).decision is Decision.ALLOW

    def _confirm(self, user: UserInfo, namespace: str, plural: str, name: str,
                 requested: Sequence[PolicyRule]) -> None:
        msg = escalation_message(user, self.rbac.rules_for(user, namespace, plural=True), requested)
        if msg:
            raise errors.forbidden(plural, name, msg, GROUP)
