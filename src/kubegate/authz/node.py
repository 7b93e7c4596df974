"""The Node authorizer (upstream plugin/pkg/auth/authorizer/node/node_authorizer.go): what a
kubelet (`system:node:<name>` in group `system:nodes`) may do.

Reads of secrets, configmaps, PVCs, PVs and service-account tokens are allowed only along the graph
(objects referenced by pods bound to the node); its own Node and Lease by name; pods through the
graph or a `spec.nodeName=<node>` field selector; everything else by the static `system:node` rules.
It never denies, so RBAC still decides for what it has no opinion on; NodeRestriction admission
narrows the writes it allows (which Node, which pods). Decisions are pure reads of the graph."""
from __future__ import annotations

import functools
from collections.abc import Sequence

from kubegate.api.selectors import SelectorError, parse_raw_field_selector
from kubegate.authn.user import UserInfo
from kubegate.authz import node_graph as g
from kubegate.authz.bootstrap import default_policy
from kubegate.authz.messages import go_quote
from kubegate.authz.rbac import rule_allows
from kubegate.authz.types import Attributes, AuthzResult, Decision, PolicyRule, RuleSet

NODE_USER_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
NODE_LEASE_NAMESPACE = "kube-node-lease"

_ALLOW = AuthzResult(Decision.ALLOW)
_NO_OPINION = AuthzResult(Decision.NO_OPINION)


def node_identity(user: UserInfo) -> tuple[str, bool]:
    """(node name, is a node) as upstream's default NodeIdentifier: the name prefix AND the group."""
    if not user.name.startswith(NODE_USER_PREFIX) or NODES_GROUP not in user.groups:
        return "", False
    return user.name[len(NODE_USER_PREFIX):], True


@functools.cache
def node_rules() -> tuple[PolicyRule, ...]:
    """bootstrappolicy.NodeRules(): the rules of the default `system:node` ClusterRole."""
    for plural, obj in default_policy():
        if plural == "clusterroles" and obj["metadata"]["name"] == "system:node":
            return tuple(PolicyRule.from_dict(r) for r in obj.get("rules") or ())
    raise LookupError("the default policy has no system:node ClusterRole")


def _no(reason: str) -> AuthzResult:
    return AuthzResult(Decision.NO_OPINION, reason)


def _no_relationship(node: str) -> AuthzResult:
    return _no(f"no relationship found between node '{node}' and this object")


def _field_selects(attrs: Attributes, field: str, value: str) -> bool:
    """Whether the request's field selector requires `field` = `value` (an unparsable one selects nothing)."""
    if not attrs.field_selector:
        return False
    try:
        return parse_raw_field_selector(attrs.field_selector).requires_exact_match(field) == value
    except SelectorError:
        return False


_GRAPH_TYPES = {"secrets": g.SECRET, "configmaps": g.CONFIGMAP, "persistentvolumeclaims": g.PVC,
                "persistentvolumes": g.PV, "serviceaccounts": g.SERVICE_ACCOUNT, "pods": g.POD}


class NodeAuthorizer:
    def __init__(self, graph: g.Graph, rules: Sequence[PolicyRule] | None = None) -> None:
        self.graph = graph
        self.rules = tuple(node_rules() if rules is None else rules)

    async def authorize(self, attrs: Attributes) -> AuthzResult:
        return self.decide(attrs)

    def rules_for(self, user: UserInfo, namespace: str) -> RuleSet:
        if node_identity(user)[1]:
            return RuleSet(incomplete=True, errors=("node authorizer does not support user rule resolution",))
        return RuleSet()

    def decide(self, attrs: Attributes) -> AuthzResult:
        node, is_node = node_identity(attrs.user)
        if not is_node:
            return _NO_OPINION
        if not node:
            return _no(f"unknown node for user {go_quote(attrs.user.name)}")
        if attrs.resource_request:
            result = self._subdivided(node, attrs)
            if result is not None:
                return result
        # Access to other resources is not subdivided: the static node rules decide.
        if any(rule_allows(attrs, rule) for rule in self.rules):
            return _ALLOW
        return _NO_OPINION

    def _subdivided(self, node: str, attrs: Attributes) -> AuthzResult | None:
        group, resource = attrs.api_group, attrs.resource
        if group == "":
            if resource in ("secrets", "configmaps"):
                return self._read_namespaced_object(node, attrs)
            if resource == "persistentvolumeclaims":
                if attrs.subresource == "status":
                    return self._status_update(node, attrs)
                return self._get(node, attrs)
            if resource == "persistentvolumes":
                return self._get(node, attrs)
            if resource == "serviceaccounts":
                return self._create_token(node, attrs)
            if resource == "nodes":
                return self._node(node, attrs)
            if resource == "pods":
                return self._pod(node, attrs)
        elif group == "coordination.k8s.io" and resource == "leases":
            return self._lease(node, attrs)
        return None

    # -- per resource (upstream's authorize* functions) ----------------------------------------

    def _related(self, node: str, attrs: Attributes) -> AuthzResult:
        if not attrs.name:
            return _no("No Object name found")
        vertex = (_GRAPH_TYPES[attrs.resource], attrs.namespace, attrs.name)
        return _ALLOW if self.graph.has_path(node, vertex) else _no_relationship(node)

    def _status_update(self, node: str, attrs: Attributes) -> AuthzResult:
        if attrs.verb not in ("update", "patch"):
            return _no("can only get/update/patch this type")
        return self._related(node, attrs)

    def _get(self, node: str, attrs: Attributes) -> AuthzResult:
        if attrs.verb != "get":
            return _no("can only get individual resources of this type")
        if attrs.subresource:
            return _no("cannot get subresource")
        return self._related(node, attrs)

    def _read_namespaced_object(self, node: str, attrs: Attributes) -> AuthzResult:
        if attrs.verb not in ("get", "list", "watch"):
            return _no("can only read resources of this type")
        if attrs.subresource:
            return _no("cannot read subresource")
        if not attrs.namespace:
            return _no("can only read namespaced object of this type")
        return self._related(node, attrs)

    def _create_token(self, node: str, attrs: Attributes) -> AuthzResult:
        if attrs.verb != "create" or not attrs.name:
            return _no("can only create tokens for individual service accounts")
        if attrs.subresource != "token":
            return _no("can only create token subresource of serviceaccount")
        return self._related(node, attrs)

    def _lease(self, node: str, attrs: Attributes) -> AuthzResult:
        if attrs.verb not in ("get", "create", "update", "patch", "delete"):
            return _no("can only get, create, update, patch, or delete a node lease")
        if attrs.namespace != NODE_LEASE_NAMESPACE:
            return _no(f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace')
        # On create the name is in the body, which NodeRestriction checks.
        if attrs.verb != "create" and attrs.name != node:
            return _no("can only access node lease with the same name as the requesting node")
        return _ALLOW

    def _node(self, node: str, attrs: Attributes) -> AuthzResult:
        if attrs.subresource == "":
            if attrs.verb in ("create", "update", "patch"):
                return _ALLOW  # NodeRestriction limits a node to its own Node object
            if attrs.verb in ("get", "list", "watch"):
                # By name rather than through the graph, so a kubelet can read its Node before creating it.
                if attrs.name == node:
                    return _ALLOW
                if not attrs.name:
                    return _no(f"node '{node}' cannot read all nodes, only its own Node object")
                return _no(f"node '{node}' cannot read '{attrs.name}', only its own Node object")
        elif attrs.subresource == "status" and attrs.verb in ("update", "patch"):
            return _ALLOW
        return _NO_OPINION

    def _pod(self, node: str, attrs: Attributes) -> AuthzResult:
        sub, verb = attrs.subresource, attrs.verb
        if sub == "":
            if verb == "get":
                return self._get(node, attrs)
            if verb in ("list", "watch"):
                if _field_selects(attrs, "spec.nodeName", node):
                    return _ALLOW
                if attrs.name:
                    return self._related(node, attrs)
                return _no("can only list/watch pods with spec.nodeName field selector")
            if verb in ("create", "delete"):
                return _ALLOW  # mirror pods; NodeRestriction limits them to the node's own
        elif sub == "status" and verb in ("update", "patch"):
            return _ALLOW  # NodeRestriction limits this to pods bound to the node
        elif sub == "eviction" and verb == "create":
            return _ALLOW  # NodeRestriction limits this to pods bound to the node
        return _NO_OPINION

