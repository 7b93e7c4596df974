"""NodeRestriction (upstream plugin/pkg/admission/noderestriction/admission.go): what a kubelet
(`system:node:<name>` in `system:nodes`) may write, beyond what the Node authorizer lets through.

Its own Node only (no restricted labels, taints, ownerReferences or configSource changes), mirror
pods bound to itself that reference nothing, deletes and status updates of its own pods, its own
Lease, PVC status conditions and capacity, tokens bound to its own pods, and kubelet CSRs naming
itself. Every refusal is
upstream's 403 with upstream's text. Pure: the pod and node lookups are handed in."""
from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.x509.oid import NameOID

from kubegate.api import defaults, errors, podrefs
from kubegate.api.resources import Resource
from kubegate.authn.user import UserInfo
from kubegate.authz.messages import go_quote as q
from kubegate.api.validation.certificates import parse_csr
from kubegate.authz.node import NODE_LEASE_NAMESPACE, node_identity
from kubegate.pki.signer import KUBE_APISERVER_CLIENT_KUBELET, KUBELET_SERVING

ObjectGetter = Callable[[str, str], Mapping[str, Any] | None]  # (namespace, name); "" namespace for nodes

NODE_RESTRICTION_LABEL_NAMESPACE = "node-restriction.kubernetes.io"
# k8s.io/kubelet/pkg/apis/well_known_labels.go: what a kubelet may set on its own Node.
KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname", "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type", "kubernetes.io/os",
    "kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/arch",
})
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")


def _d(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _meta(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return _d(_d(obj).get("metadata"))


def _label_namespace(key: str) -> str:
    prefix, sep, _ = key.partition("/")
    return prefix if sep else ""


def _in_namespace(namespace: str, domain: str) -> bool:
    return namespace == domain or namespace.endswith("." + domain)


def is_kubelet_label(key: str) -> bool:
    return key in KUBELET_LABELS or any(_in_namespace(_label_namespace(key), ns) for ns in KUBELET_LABEL_NAMESPACES)


def forbidden_labels(new: Mapping[str, Any] | None, old: Mapping[str, Any] | None) -> list[str]:
    """Sorted keys added, removed or changed that a node may not touch: the node-restriction
    namespace, and kubernetes.io / k8s.io labels that are not kubelet labels."""
    new, old = new or {}, old or {}
    modified = {k for k in {*new, *old} if k not in new or k not in old or new[k] != old[k]}
    out = []
    for key in modified:
        ns = _label_namespace(key)
        restricted = _in_namespace(ns, NODE_RESTRICTION_LABEL_NAMESPACE)
        kubernetes = _in_namespace(ns, "kubernetes.io") or _in_namespace(ns, "k8s.io")
        if restricted or (kubernetes and not is_kubelet_label(key)):
            out.append(key)
    return sorted(out)


def _equal(a: Any, b: Any) -> bool:
    """apiequality.Semantic.DeepEqual over JSON: a missing, null or empty list/map are all equal."""
    return (a or None) == (b or None)


class NodeRestriction:
    def __init__(self, get_pod: ObjectGetter, get_node: Callable[[str], Mapping[str, Any] | None]) -> None:
        self.get_pod = get_pod
        self.get_node = get_node

    def admit(self, operation: str, r: Resource, obj: Mapping[str, Any] | None, old: Mapping[str, Any] | None,
              namespace: str | None, user: UserInfo, subresource: str = "", name: str = "") -> None:
        """`operation` is create/update/delete; `name` the request's object name (the parent's for
        a subresource); raises the 403 StatusError when the node may not do this."""
        node, is_node = node_identity(user)
        if not is_node:
            return
        req = _Request(operation.upper(), r, obj, old, namespace or "", subresource, name)
        if not node:
            raise req.forbidden(f"could not determine node from user {q(user.name)}")
        group_resource = (r.group, r.plural)
        if group_resource == ("", "pods"):
            if subresource == "":
                self._pod(node, req)
            elif subresource == "status":
                _pod_status(node, req)
            elif subresource == "eviction":
                self._pod_eviction(node, req)
            else:
                raise req.forbidden(f"unexpected pod subresource {q(subresource)}, only 'status' and 'eviction' "
                                    "are allowed")
        elif group_resource == ("", "nodes"):
            _node(node, req)
        elif group_resource == ("", "persistentvolumeclaims"):
            if subresource != "status":
                raise req.forbidden("may only update PVC status")
            _pvc_status(node, req)
        elif group_resource == ("", "serviceaccounts"):
            self._service_account(node, req)
        elif group_resource == ("coordination.k8s.io", "leases"):
            _lease(node, req)
        elif group_resource == ("certificates.k8s.io", "certificatesigningrequests"):
            _csr(node, req)

    # -- pods ---------------------------------------------------------------------------------

    def _pod(self, node: str, req: _Request) -> None:
        if req.operation == "CREATE":
            self._pod_create(node, req)
        elif req.operation == "DELETE":
            existing = self._existing_pod(req, req.name)
            if podrefs.node_name(existing) != node:
                raise req.forbidden(f"node {q(node)} can only delete pods with spec.nodeName set to itself")
        else:
            raise req.forbidden(f"unexpected operation {q(req.operation)}, node {q(node)} can only create and "
                                "delete mirror pods")

    def _pod_create(self, node: str, req: _Request) -> None:
        pod = _d(req.obj)
        if not podrefs.is_mirror_pod(pod):
            raise req.forbidden(f"pod does not have {q(podrefs.MIRROR_POD_ANNOTATION)} annotation, node {q(node)} "
                                "can only create mirror pods")
        if podrefs.node_name(pod) != node:
            raise req.forbidden(f"node {q(node)} can only create pods with spec.nodeName set to itself")
        owners = _meta(pod).get("ownerReferences") or []
        if len(owners) > 1:
            raise req.forbidden(f"node {q(node)} can only create pods with a single owner reference set to itself")
        owner = _d(owners[0]) if owners else {}
        if not owners or owner.get("apiVersion") != "v1" or owner.get("kind") != "Node" or owner.get("name") != node:
            raise req.forbidden(f"node {q(node)} can only create pods with an owner reference set to itself")
        if owner.get("controller") is not True:
            raise req.forbidden(f"node {q(node)} can only create pods with a controller owner reference set to "
                                "itself")
        if owner.get("blockOwnerDeletion") is True:
            raise req.forbidden(f"node {q(node)} must not set blockOwnerDeletion on an owner reference")
        registered = self.get_node(node)
        if registered is None:
            raise errors.not_found("nodes", node)
        uid = str(_meta(registered).get("uid") or "")
        if owner.get("uid") != uid:
            raise req.forbidden(f"node {node} UID mismatch: expected {owner.get('uid') or ''} got {uid}")
        # A mirror pod must not reference any other API object: the graph would hand them to the node.
        if podrefs.service_account_name(pod):
            raise req.forbidden(f"node {q(node)} can not create pods that reference a service account")
        if podrefs.pod_secret_names(pod):
            raise req.forbidden(f"node {q(node)} can not create pods that reference secrets")
        if podrefs.pod_configmap_names(pod):
            raise req.forbidden(f"node {q(node)} can not create pods that reference configmaps")
        if podrefs.projects_cluster_trust_bundle(pod):
            raise req.forbidden(f"node {q(node)} can not create pods that reference clustertrustbundles")
        if podrefs.mounts_pvc(pod):
            raise req.forbidden(f"node {q(node)} can not create pods that reference persistentvolumeclaims")

    def _pod_eviction(self, node: str, req: _Request) -> None:
        if req.operation != "CREATE":
            raise req.forbidden(f"unexpected operation {req.operation}")
        pod_name = req.name or str(_meta(req.obj).get("name") or "")
        if not pod_name:
            raise req.forbidden("could not determine pod from request data")
        if podrefs.node_name(self._existing_pod(req, pod_name)) != node:
            raise req.forbidden(f"node {node} can only evict pods with spec.nodeName set to itself")

    def _existing_pod(self, req: _Request, name: str) -> Mapping[str, Any]:
        pod = self.get_pod(req.namespace, name)
        if pod is None:
            raise errors.not_found("pods", name)
        return pod

    # -- service-account tokens ---------------------------------------------------------------

    def _service_account(self, node: str, req: _Request) -> None:
        if req.operation != "CREATE" or req.subresource != "token":
            return
        # A node's token must be bound to one of its pods; the pod binding implies the node binding.
        ref = _d(_d(_d(req.obj).get("spec")).get("boundObjectRef"))
        if not ref or ref.get("apiVersion") != "v1" or ref.get("kind") != "Pod" or not ref.get("name"):
            raise req.forbidden("node requested token not bound to a pod")
        if not ref.get("uid"):
            raise req.forbidden("node requested token with a pod binding without a uid")
        pod = self._existing_pod(req, str(ref["name"]))
        if ref["uid"] != _meta(pod).get("uid"):
            raise req.forbidden(f"the UID in the bound object reference ({ref['uid']}) does not match the UID in "
                                "record. The object might have been deleted and then recreated")
        if podrefs.node_name(pod) != node:
            raise req.forbidden("node requested token bound to a pod scheduled on a different node")


class _Request:
    """The admission attributes NodeRestriction reads, and upstream's admission.NewForbidden."""

    def __init__(self, operation: str, r: Resource, obj: Mapping[str, Any] | None, old: Mapping[str, Any] | None,
                 namespace: str, subresource: str, name: str) -> None:
        self.operation, self.r, self.obj, self.old = operation, r, obj, old
        self.namespace, self.subresource = namespace, subresource
        # The attributes' name: the URL's, else (on create) the object's.
        self.name = name or str(_meta(obj if obj is not None else old).get("name") or "")

    def forbidden(self, message: str) -> errors.StatusError:
        m = _meta(self.obj)
        name = self.name or str(m.get("generateName") or "") or "Unknown"
        return errors.forbidden(self.r.plural, name, message, self.r.group)


def _pod_status(node: str, req: _Request) -> None:
    if req.operation != "UPDATE":
        raise req.forbidden(f"unexpected operation {q(req.operation)}")
    if podrefs.node_name(_d(req.old)) != node:
        raise req.forbidden(f"node {q(node)} can only update pod status for pods with spec.nodeName set to itself")
    if not _equal(_meta(req.obj).get("labels"), _meta(req.old).get("labels")):
        raise req.forbidden(f"node {q(node)} cannot update labels through pod status")
    if _claim_statuses(req.obj) != _claim_statuses(req.old):
        raise req.forbidden(f"node {q(node)} cannot update resource claim statues")


def _claim_statuses(pod: Mapping[str, Any] | None) -> list[tuple[Any, Any]]:
    statuses = _d(_d(pod).get("status")).get("resourceClaimStatuses")
    return [(_d(s).get("name"), _d(s).get("resourceClaimName")) for s in statuses or ()]


def _node(node: str, req: _Request) -> None:
    if req.name != node:
        raise req.forbidden(f"node {q(node)} is not allowed to modify node {q(req.name)}")
    new_spec = _d(_d(req.obj).get("spec"))
    if req.operation == "CREATE":
        # Node access is scoped to what the Node spec names: setting a config source would widen it.
        if new_spec.get("configSource") is not None:
            raise req.forbidden(f"node {q(node)} is not allowed to create pods with a non-nil configSource")
        bad = forbidden_labels(_meta(req.obj).get("labels"), None)
        if bad:
            raise req.forbidden(f"node {q(node)} is not allowed to set the following labels: {', '.join(bad)}")
    elif req.operation == "UPDATE":
        old_spec = _d(_d(req.old).get("spec"))
        source = new_spec.get("configSource")
        if source is not None and not _equal(source, old_spec.get("configSource")):
            raise req.forbidden(f"node {q(node)} is not allowed to update configSource to a new non-nil configSource")
        # Taints, owners and labels steer workloads or deletion: a node may not change its own.
        if not _equal(new_spec.get("taints"), old_spec.get("taints")):
            raise req.forbidden(f"node {q(node)} is not allowed to modify taints")
        if not _equal(_meta(req.obj).get("ownerReferences"), _meta(req.old).get("ownerReferences")):
            raise req.forbidden(f"node {q(node)} is not allowed to modify ownerReferences")
        bad = forbidden_labels(_meta(req.obj).get("labels"), _meta(req.old).get("labels"))
        if bad:
            raise req.forbidden(f"is not allowed to modify labels: {', '.join(bad)}")


# Status fields a kubelet maintains on a claim; RecoverVolumeExpansionFailure (GA) adds the allocated ones.
_PVC_NODE_STATUS = ("capacity", "conditions", "allocatedResourceStatuses", "allocatedResources")


def _pvc_status(node: str, req: _Request) -> None:
    if req.operation != "UPDATE":
        raise req.forbidden(f"unexpected operation {q(req.operation)}")
    new, old = _comparable_pvc(req.r, req.obj), _comparable_pvc(req.r, req.old)
    if new != old:
        # Upstream appends a cmp.Diff, whose layout is deliberately unstable; the changed paths say the same.
        raise req.forbidden(f"node {q(node)} is not allowed to update fields other than status.quantity and "
                            f"status.conditions: changed {', '.join(_changed_paths(old, new))}")


def _changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [p for k in sorted({*old, *new}) for p in _changed_paths(old.get(k), new.get(k), f"{prefix}.{k}")]
    return [prefix.lstrip(".")] if old != new else []


def _comparable_pvc(r: Resource, pvc: Mapping[str, Any] | None) -> dict[str, Any]:
    """The claim as defaulted, minus what a node may change and what the server stamps."""
    obj = copy.deepcopy(dict(_d(pvc)))
    defaults.apply_defaults(r, obj)
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("resourceVersion", None)
        meta.pop("managedFields", None)
    status = obj.get("status")
    if isinstance(status, dict):
        for key in _PVC_NODE_STATUS:
            status.pop(key, None)
    return {k: v for k, v in obj.items() if v not in (None, {}, [])}


def _lease(node: str, req: _Request) -> None:
    if req.namespace != NODE_LEASE_NAMESPACE:
        raise req.forbidden(f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace')
    if req.name != node:
        raise req.forbidden("can only access node lease with the same name as the requesting node")


def _csr(node: str, req: _Request) -> None:
    """A kubelet may only ask for kubelet client or serving certificates in its own name; the
    signer checks the rest. (Upstream's AllowInsecureKubeletCertificateSigningRequests gate,
    off by default since 1.31, would lift this; kubegate has no such gate.)"""
    spec = _d(_d(req.obj).get("spec"))
    if req.operation != "CREATE" or spec.get("signerName") not in (KUBELET_SERVING, KUBE_APISERVER_CLIENT_KUBELET):
        return
    try:
        request = base64.b64decode(str(spec.get("request") or ""), validate=True)
    except (binascii.Error, ValueError):
        request = b""
    try:
        csr = parse_csr(request)
    except ValueError as e:
        raise req.forbidden(f"unable to parse csr: {e}") from None
    # Go keeps a request's last CN, kubegate's signer its first: every CN must be the node's own.
    cns = {a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)}
    if cns != {f"system:node:{node}"}:
        raise req.forbidden(f"can only create a node CSR with CN=system:node:{node}")
