"""RBAC evaluation over an in-memory, incrementally maintained index (upstream plugin/pkg/auth/authorizer/rbac).

Bindings are indexed by the subjects they name (user names, group names; ServiceAccount subjects
under the user name the account authenticates as), so a decision only looks at the bindings that
can apply to the requesting user, however many unrelated bindings exist. Visiting order is
ClusterRoleBindings, then RoleBindings of the request namespace, each by name.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from kubegate.authn.union import aggregate_message
from kubegate.authn.user import UserInfo, service_account_username
from kubegate.authz.messages import go_quote
from kubegate.authz.types import Attributes, AuthzResult, Decision, PolicyRule, RuleSet

VERB_ALL = "*"
API_GROUP_ALL = "*"
RESOURCE_ALL = "*"
NON_RESOURCE_ALL = "*"

KIND_ROLE = "Role"
KIND_CLUSTER_ROLE = "ClusterRole"
KIND_ROLE_BINDING = "RoleBinding"
KIND_CLUSTER_ROLE_BINDING = "ClusterRoleBinding"


@dataclass(frozen=True)
class Subject:
    kind: str
    name: str
    namespace: str = ""


@dataclass(frozen=True)
class Binding:
    kind: str            # RoleBinding or ClusterRoleBinding
    name: str
    namespace: str       # "" for ClusterRoleBindings
    role_kind: str
    role_name: str
    subjects: tuple[Subject, ...]

    def user_keys(self) -> set[str]:
        """The user names and group names under which this binding is indexed."""
        keys: set[str] = set()
        for s in self.subjects:
            if s.kind == "User":
                keys.add("u:" + s.name)
            elif s.kind == "Group":
                keys.add("g:" + s.name)
            elif s.kind == "ServiceAccount":
                sa_ns = s.namespace or self.namespace
                if sa_ns:
                    keys.add("u:" + service_account_username(sa_ns, s.name))
        return keys

    def describe(self, subject: Subject) -> str:
        """The allow reason's source, as upstream's binding describers."""
        if subject.kind == "ServiceAccount":
            who = f"{subject.kind} {go_quote(subject.name + '/' + (subject.namespace or self.namespace))}"
        else:
            who = f"{subject.kind} {go_quote(subject.name)}"
        shown = f"{self.name}/{self.namespace}" if self.kind == KIND_ROLE_BINDING else self.name
        return f"{self.kind} {go_quote(shown)} of {self.role_kind} {go_quote(self.role_name)} to {who}"


def _binding_from(kind: str, obj: Mapping[str, Any]) -> Binding:
    meta = obj.get("metadata") or {}
    ref = obj.get("roleRef") or {}
    subjects = tuple(Subject(s.get("kind", ""), s.get("name", ""), s.get("namespace", "") or "")
                     for s in obj.get("subjects") or ())
    namespace = meta.get("namespace", "") if kind == KIND_ROLE_BINDING else ""
    return Binding(kind, meta.get("name", ""), namespace or "", ref.get("kind", ""), ref.get("name", ""), subjects)


def _applies_to(user: UserInfo, subject: Subject, namespace: str) -> bool:
    if subject.kind == "User":
        return user.name == subject.name
    if subject.kind == "Group":
        return subject.name in user.groups
    if subject.kind == "ServiceAccount":
        sa_ns = subject.namespace or namespace
        return bool(sa_ns) and user.name == service_account_username(sa_ns, subject.name)
    return False


def _first_applying(user: UserInfo, binding: Binding) -> Subject | None:
    for subject in binding.subjects:
        if _applies_to(user, subject, binding.namespace):
            return subject
    return None


# --- rule matching (pkg/apis/rbac/v1/evaluation_helpers.go) ---

def _resource_matches(rule: PolicyRule, combined: str, subresource: str) -> bool:
    for r in rule.resources:
        if r == RESOURCE_ALL or r == combined:
            return True
        if subresource and r == "*/" + subresource:
            return True
    return False


def _non_resource_url_matches(rule: PolicyRule, path: str) -> bool:
    for url in rule.non_resource_urls:
        if url == NON_RESOURCE_ALL or url == path:
            return True
        if url.endswith("*") and path.startswith(url.rstrip("*")):
            return True
    return False


def rule_allows(attrs: Attributes, rule: PolicyRule) -> bool:
    if VERB_ALL not in rule.verbs and attrs.verb not in rule.verbs:
        return False
    if not attrs.resource_request:
        return _non_resource_url_matches(rule, attrs.path)
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    return ((API_GROUP_ALL in rule.api_groups or attrs.api_group in rule.api_groups)
            and _resource_matches(rule, combined, attrs.subresource)
            and (not rule.resource_names or attrs.name in rule.resource_names))


# --- coverage (pkg/registry/rbac/validation/policy_comparator.go), for escalation checks ---

def breakdown_rule(rule: PolicyRule) -> list[PolicyRule]:
    """One rule per (group, resource, verb[, name]) and per (url, verb)."""
    out: list[PolicyRule] = []
    for group in rule.api_groups:
        for resource in rule.resources:
            for verb in rule.verbs:
                if rule.resource_names:
                    out.extend(PolicyRule((verb,), (group,), (resource,), (n,)) for n in rule.resource_names)
                else:
                    out.append(PolicyRule((verb,), (group,), (resource,)))
    for url in rule.non_resource_urls:
        for verb in rule.verbs:
            out.append(PolicyRule(verbs=(verb,), non_resource_urls=(url,)))
    return out


def _has_all(owner: Sequence[str], wanted: Iterable[str]) -> bool:
    return all(w in owner for w in wanted)


def _resources_cover(owner: Sequence[str], wanted: Sequence[str]) -> bool:
    if RESOURCE_ALL in owner or _has_all(owner, wanted):
        return True
    for path in wanted:
        if path in owner:
            continue
        if "/" not in path or "*/" + path.split("/", 1)[1] not in owner:
            return False
    return True


def _urls_cover(owner: Sequence[str], wanted: Sequence[str]) -> bool:
    return all(any(o == w or (o.endswith("*") and w.startswith(o.rstrip("*"))) for o in owner) for w in wanted)


def _rule_covers(owner: PolicyRule, sub: PolicyRule) -> bool:
    if sub.resource_names:
        names_ok = not owner.resource_names or _has_all(owner.resource_names, sub.resource_names)
    else:
        names_ok = not owner.resource_names
    return ((VERB_ALL in owner.verbs or _has_all(owner.verbs, sub.verbs))
            and (API_GROUP_ALL in owner.api_groups or _has_all(owner.api_groups, sub.api_groups))
            and _resources_cover(owner.resources, sub.resources)
            and names_ok
            and _urls_cover(owner.non_resource_urls, sub.non_resource_urls))


def covers(owner_rules: Sequence[PolicyRule], requested_rules: Sequence[PolicyRule]) -> tuple[bool, list[PolicyRule]]:
    """Whether the owner's rules grant everything the requested rules do; also the uncovered pieces."""
    uncovered = [sub for rule in requested_rules for sub in breakdown_rule(rule)
                 if not any(_rule_covers(owner, sub) for owner in owner_rules)]
    return not uncovered, uncovered


_DECISION_CACHE_SIZE = 65536


def _not_found(resource: str, name: str, plural: bool) -> str:
    # The authorizer reads through listers (singular resource in NotFound errors); the escalation
    # checks read through the registry (plural), so the two wordings differ upstream too.
    return f'{resource}{"s" if plural else ""}.rbac.authorization.k8s.io "{name}" not found'


class RBACAuthorizer:
    """Holds Roles, ClusterRoles and bindings; `upsert`/`delete` keep the subject index current."""

    def __init__(self) -> None:
        self._cluster_roles: dict[str, tuple[PolicyRule, ...]] = {}
        self._roles: dict[tuple[str, str], tuple[PolicyRule, ...]] = {}
        self._crbs: dict[str, Binding] = {}
        self._rbs: dict[tuple[str, str], Binding] = {}
        self._crb_index: dict[str, set[str]] = {}                  # subject key -> CRB names
        self._rb_index: dict[tuple[str, str], set[str]] = {}       # (namespace, subject key) -> RB names
        # Decisions are a pure function of (attributes, policy): memoised until the policy changes.
        self._decisions: dict[Attributes, AuthzResult] = {}

    # --- maintenance ---

    def upsert(self, kind: str, obj: Mapping[str, Any]) -> None:
        self._decisions.clear()
        meta = obj.get("metadata") or {}
        name = meta.get("name", "")
        if kind == KIND_CLUSTER_ROLE:
            self._cluster_roles[name] = tuple(PolicyRule.from_dict(r) for r in obj.get("rules") or ())
        elif kind == KIND_ROLE:
            self._roles[(meta.get("namespace", ""), name)] = tuple(
                PolicyRule.from_dict(r) for r in obj.get("rules") or ())
        elif kind in (KIND_CLUSTER_ROLE_BINDING, KIND_ROLE_BINDING):
            self.delete(kind, obj)
            binding = _binding_from(kind, obj)
            if kind == KIND_CLUSTER_ROLE_BINDING:
                self._crbs[binding.name] = binding
                for key in binding.user_keys():
                    self._crb_index.setdefault(key, set()).add(binding.name)
            else:
                self._rbs[(binding.namespace, binding.name)] = binding
                for key in binding.user_keys():
                    self._rb_index.setdefault((binding.namespace, key), set()).add(binding.name)
        else:
            raise ValueError(f"unsupported RBAC kind: {kind!r}")

    def delete(self, kind: str, obj: Mapping[str, Any]) -> None:
        self._decisions.clear()
        meta = obj.get("metadata") or {}
        name = meta.get("name", "")
        namespace = meta.get("namespace", "") or ""
        if kind == KIND_CLUSTER_ROLE:
            self._cluster_roles.pop(name, None)
        elif kind == KIND_ROLE:
            self._roles.pop((namespace, name), None)
        elif kind == KIND_CLUSTER_ROLE_BINDING:
            old = self._crbs.pop(name, None)
            if old is not None:
                for key in old.user_keys():
                    _discard(self._crb_index, key, name)
        elif kind == KIND_ROLE_BINDING:
            old_rb = self._rbs.pop((namespace, name), None)
            if old_rb is not None:
                for key in old_rb.user_keys():
                    _discard(self._rb_index, (namespace, key), name)
        else:
            raise ValueError(f"unsupported RBAC kind: {kind!r}")

    # --- evaluation ---

    def _user_keys(self, user: UserInfo) -> list[str]:
        return ["u:" + user.name] + ["g:" + g for g in user.groups]

    def _applicable(self, user: UserInfo, namespace: str) -> list[Binding]:
        keys = self._user_keys(user)
        crb_names: set[str] = set()
        for key in keys:
            crb_names |= self._crb_index.get(key, set())
        bindings = [self._crbs[n] for n in sorted(crb_names)]
        if namespace:
            rb_names: set[str] = set()
            for key in keys:
                rb_names |= self._rb_index.get((namespace, key), set())
            bindings.extend(self._rbs[(namespace, n)] for n in sorted(rb_names))
        return bindings

    def role_ref_rules(self, kind: str, name: str, namespace: str,
                       plural: bool = False) -> tuple[tuple[PolicyRule, ...] | None, str]:
        """The rules of a binding's roleRef (upstream GetRoleReferenceRules), or None and the error."""
        if kind == KIND_ROLE:
            rules = self._roles.get((namespace, name))
            return rules, "" if rules is not None else _not_found("role", name, plural)
        if kind == KIND_CLUSTER_ROLE:
            rules = self._cluster_roles.get(name)
            return rules, "" if rules is not None else _not_found("clusterrole", name, plural)
        return None, f"unsupported role reference kind: {go_quote(kind)}"

    def visit(self, user: UserInfo, namespace: str,
              plural: bool = False) -> Iterable[tuple[Binding, Subject, PolicyRule | None, str]]:
        """Upstream VisitRulesFor: yields (binding, subject, rule, "") per rule, or
        (binding, subject, None, error) per binding whose role is missing."""
        for binding in self._applicable(user, namespace):
            subject = _first_applying(user, binding)
            if subject is None:
                continue
            rules, error = self.role_ref_rules(binding.role_kind, binding.role_name, binding.namespace, plural)
            if rules is None:
                yield binding, subject, None, error
                continue
            for rule in rules:
                yield binding, subject, rule, ""

    async def authorize(self, attrs: Attributes) -> AuthzResult:
        return self.decide(attrs)

    def decide(self, attrs: Attributes) -> AuthzResult:
        """The decision itself, synchronous: tools (who-can, explain-access) call it directly."""
        hit = self._decisions.get(attrs)
        if hit is not None:
            return hit
        result = self._evaluate(attrs)
        if len(self._decisions) >= _DECISION_CACHE_SIZE:
            self._decisions.clear()
        self._decisions[attrs] = result
        return result

    def _evaluate(self, attrs: Attributes) -> AuthzResult:
        errors: list[str] = []
        for binding, subject, rule, error in self.visit(attrs.user, attrs.namespace):
            if rule is not None and rule_allows(attrs, rule):
                return AuthzResult(Decision.ALLOW, f"RBAC: allowed by {binding.describe(subject)}")
            if error:
                errors.append(error)
        reason = f"RBAC: {aggregate_message(errors)}" if errors else ""
        return AuthzResult(Decision.NO_OPINION, reason)

    def rules_for(self, user: UserInfo, namespace: str, plural: bool = False) -> RuleSet:
        """Every rule granted to `user` in `namespace` ("" = cluster bindings only); a binding whose
        role is missing is reported as an error, as upstream does, not as incompleteness."""
        rules: list[PolicyRule] = []
        errors: list[str] = []
        for _, _, rule, error in self.visit(user, namespace, plural):
            if rule is not None:
                rules.append(rule)
            else:
                errors.append(error)
        return RuleSet(tuple(rules), errors=tuple(errors))

    # --- read access for the analysers (who-can, explain-access, rolesum) ---

    def cluster_role_bindings(self) -> list[Binding]:
        return [self._crbs[n] for n in sorted(self._crbs)]

    def role_bindings(self, namespace: str | None = None) -> list[Binding]:
        """RoleBindings of one namespace, or of every namespace (None), by namespace and name."""
        return [self._rbs[k] for k in sorted(self._rbs) if namespace is None or k[0] == namespace]

    def binding_namespaces(self) -> list[str]:
        return sorted({ns for ns, _ in self._rbs})

    def cluster_role_rules(self, name: str) -> tuple[PolicyRule, ...] | None:
        return self._cluster_roles.get(name)

    def role_rules(self, namespace: str, name: str) -> tuple[PolicyRule, ...] | None:
        return self._roles.get((namespace, name))


_K = TypeVar("_K")


def _discard(index: dict[_K, set[str]], key: _K, name: str) -> None:
    names = index.get(key)
    if names is None:
        return
    names.discard(name)
    if not names:
        del index[key]
