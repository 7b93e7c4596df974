"""The resource registry: every kind kubegate serves, with upstream's names, scope and verbs.

Discovery, request routing, storage keys, tables and validation all read this one table.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

CRUD = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
NS_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")  # namespaces: no deletecollection
STATUS_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class Subresource:
    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str | None = None    # set when the subresource's kind lives in another group (Scale, Eviction)
    version: str | None = None


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...] = CRUD
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    schema: str = ""                  # OpenAPI definition name, e.g. io.k8s.api.core.v1.Pod
    storage_prefix: str = ""          # etcd-style key prefix; upstream's where it differs
    storage_version_hash: str = ""
    persisted: bool = True            # review-style kinds are answered, never stored
    has_status: bool = False          # status is a subresource, so the main resource ignores it
    cluster_create_on_update: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @cached_property  # every storage key and cache lookup starts with it
    def key_prefix(self) -> str:
        return self.storage_prefix or f"/registry/{self.plural}"

    def subresource(self, name: str) -> Subresource | None:
        for s in self.subresources:
            if s.name == name:
                return s
        return None

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"{self.key_prefix}/{namespace}/{name}"
        return f"{self.key_prefix}/{name}"

    def list_prefix(self, namespace: str | None) -> str:
        if self.namespaced and namespace:
            return f"{self.key_prefix}/{namespace}/"
        return f"{self.key_prefix}/"


def _sr(name: str, kind: str, verbs: tuple[str, ...] = STATUS_VERBS, group: str | None = None,
        version: str | None = None) -> Subresource:
    return Subresource(name, kind, verbs, group, version)


def _status(kind: str) -> Subresource:
    return _sr("status", kind)


_SCALE = _sr("scale", "Scale", STATUS_VERBS, "autoscaling", "v1")

RESOURCES: tuple[Resource, ...] = (
    # core/v1
    Resource("", "v1", "namespaces", "namespace", "Namespace", False, NS_VERBS, ("ns",),
             subresources=(_sr("finalize", "Namespace", ("update",)), _status("Namespace")),
             schema="io.k8s.api.core.v1.Namespace", storage_version_hash="Q3oi5N2YM8M=", has_status=True),
    Resource("", "v1", "configmaps", "configmap", "ConfigMap", True, CRUD, ("cm",),
             schema="io.k8s.api.core.v1.ConfigMap", storage_version_hash="qFsyl6wFWjQ="),
    Resource("", "v1", "secrets", "secret", "Secret", True, CRUD,
             schema="io.k8s.api.core.v1.Secret", storage_version_hash="S6u1pOWzb84="),
    Resource("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True, CRUD, ("sa",),
             subresources=(_sr("token", "TokenRequest", ("create",), "authentication.k8s.io", "v1"),),
             schema="io.k8s.api.core.v1.ServiceAccount", storage_version_hash="pbx9ZvyFpBE="),
    Resource("", "v1", "pods", "pod", "Pod", True, CRUD, ("po",), ("all",),
             subresources=(_sr("binding", "Binding", ("create",)), _status("Pod")),
             schema="io.k8s.api.core.v1.Pod", storage_version_hash="xPOwRZ+Yhw8=", has_status=True),
    Resource("", "v1", "nodes", "node", "Node", False, CRUD, ("no",),
             subresources=(_status("Node"),),
             schema="io.k8s.api.core.v1.Node", storage_prefix="/registry/minions",
             storage_version_hash="XwShjMxG9Fs=", has_status=True),
    Resource("", "v1", "events", "event", "Event", True, CRUD, ("ev",),
             schema="io.k8s.api.core.v1.Event", storage_version_hash="r2yiGXH7wu8="),
    Resource("", "v1", "limitranges", "limitrange", "LimitRange", True, CRUD, ("limits",),
             schema="io.k8s.api.core.v1.LimitRange", storage_version_hash="EBKMFVe6cwo="),
    Resource("", "v1", "resourcequotas", "resourcequota", "ResourceQuota", True, CRUD, ("quota",),
             subresources=(_status("ResourceQuota"),),
             schema="io.k8s.api.core.v1.ResourceQuota", storage_version_hash="8uhSgffRX6w=", has_status=True),
    Resource("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", True,
             CRUD, ("pvc",), subresources=(_status("PersistentVolumeClaim"),),
             schema="io.k8s.api.core.v1.PersistentVolumeClaim", storage_version_hash="QWTyNDq0dC4=",
             has_status=True),
    Resource("", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume", False, CRUD, ("pv",),
             subresources=(_status("PersistentVolume"),), schema="io.k8s.api.core.v1.PersistentVolume",
             storage_version_hash="HN/zwEC+JgM=", has_status=True),
    Resource("", "v1", "podtemplates", "podtemplate", "PodTemplate", True,
             schema="io.k8s.api.core.v1.PodTemplate", storage_version_hash="LIXB2x4IFpk="),
    Resource("", "v1", "replicationcontrollers", "replicationcontroller", "ReplicationController", True, CRUD,
             ("rc",), ("all",), subresources=(_SCALE, _status("ReplicationController")),
             schema="io.k8s.api.core.v1.ReplicationController", storage_prefix="/registry/controllers",
             storage_version_hash="Jond2If31h0=", has_status=True),
    # apps/v1
    Resource("apps", "v1", "deployments", "deployment", "Deployment", True, CRUD, ("deploy",), ("all",),
             subresources=(_SCALE, _status("Deployment")),
             schema="io.k8s.api.apps.v1.Deployment", storage_version_hash="8aSe+NMegvE=", has_status=True),
    Resource("apps", "v1", "replicasets", "replicaset", "ReplicaSet", True, CRUD, ("rs",), ("all",),
             subresources=(_SCALE, _status("ReplicaSet")),
             schema="io.k8s.api.apps.v1.ReplicaSet", storage_version_hash="P1RzHs8/mWQ=", has_status=True),
    Resource("apps", "v1", "statefulsets", "statefulset", "StatefulSet", True, CRUD, ("sts",), ("all",),
             subresources=(_SCALE, _status("StatefulSet")),
             schema="io.k8s.api.apps.v1.StatefulSet", storage_version_hash="H+vl74LkKdo=", has_status=True),
    Resource("apps", "v1", "daemonsets", "daemonset", "DaemonSet", True, CRUD, ("ds",), ("all",),
             subresources=(_status("DaemonSet"),),
             schema="io.k8s.api.apps.v1.DaemonSet", storage_version_hash="dd7pWHUlMKQ=", has_status=True),
    # batch/v1
    Resource("batch", "v1", "jobs", "job", "Job", True, CRUD, (), ("all",), subresources=(_status("Job"),),
             schema="io.k8s.api.batch.v1.Job", storage_version_hash="mudhfqk/qZY=", has_status=True),
    Resource("batch", "v1", "cronjobs", "cronjob", "CronJob", True, CRUD, ("cj",), ("all",),
             subresources=(_status("CronJob"),),
             schema="io.k8s.api.batch.v1.CronJob", storage_version_hash="sd5LIXh4Fjs=", has_status=True),
    # rbac.authorization.k8s.io/v1
    Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding",
             "ClusterRoleBinding", False, schema="io.k8s.api.rbac.v1.ClusterRoleBinding",
             storage_version_hash="48tpQ8gZHFc="),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", False,
             schema="io.k8s.api.rbac.v1.ClusterRole", storage_version_hash="bYE5ZWDrJ44="),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", True,
             schema="io.k8s.api.rbac.v1.RoleBinding", storage_version_hash="eGsCzGH6b1g="),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", True,
             schema="io.k8s.api.rbac.v1.Role", storage_version_hash="7FuwZcIIItM="),
    # certificates.k8s.io/v1
    Resource("certificates.k8s.io", "v1", "certificatesigningrequests", "certificatesigningrequest",
             "CertificateSigningRequest", False, CRUD, ("csr",),
             subresources=(_sr("approval", "CertificateSigningRequest"), _status("CertificateSigningRequest")),
             schema="io.k8s.api.certificates.v1.CertificateSigningRequest",
             storage_version_hash="95fRKMXA+00=", has_status=True),
    # networking.k8s.io/v1
    Resource("networking.k8s.io", "v1", "networkpolicies", "networkpolicy", "NetworkPolicy", True, CRUD,
             ("netpol",), schema="io.k8s.api.networking.v1.NetworkPolicy",
             storage_version_hash="YpfwF18m1G8="),
    # apiextensions.k8s.io/v1: kubegate serves no custom resources, but kubectl lists CRDs before it
    # validates a kind that has no PATCH operation (the create-only reviews) against /openapi/v2, so
    # the always-empty list is served, read-only.
    Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition",
             "CustomResourceDefinition", False, ("get", "list", "watch"), ("crd", "crds"), ("api-extensions",)),
    # coordination.k8s.io/v1
    Resource("coordination.k8s.io", "v1", "leases", "lease", "Lease", True,
             schema="io.k8s.api.coordination.v1.Lease", storage_version_hash="gqkMMb/YqFM="),
    # events.k8s.io/v1 shares storage with core events
    Resource("events.k8s.io", "v1", "events", "event", "Event", True, CRUD, ("ev",),
             schema="io.k8s.api.events.v1.Event", storage_prefix="/registry/events",
             storage_version_hash="r2yiGXH7wu8="),
    # storage.k8s.io/v1
    Resource("storage.k8s.io", "v1", "storageclasses", "storageclass", "StorageClass", False, CRUD, ("sc",),
             schema="io.k8s.api.storage.v1.StorageClass", storage_version_hash="K+m6uJwbjGY="),
    # admissionregistration.k8s.io/v1: the configuration of the webhook and policy admission plugins
    Resource("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
             "mutatingwebhookconfiguration", "MutatingWebhookConfiguration", False, CRUD,
             categories=("api-extensions",), schema="io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration"),
    Resource("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies", "validatingadmissionpolicy",
             "ValidatingAdmissionPolicy", False, CRUD, categories=("api-extensions",),
             subresources=(_status("ValidatingAdmissionPolicy"),),
             schema="io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicy", has_status=True),
    Resource("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings",
             "validatingadmissionpolicybinding", "ValidatingAdmissionPolicyBinding", False, CRUD,
             categories=("api-extensions",),
             schema="io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicyBinding"),
    Resource("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
             "validatingwebhookconfiguration", "ValidatingWebhookConfiguration", False, CRUD,
             categories=("api-extensions",),
             schema="io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration"),
    # authentication.k8s.io/v1 and authorization.k8s.io/v1: create-only reviews, never stored
    Resource("authentication.k8s.io", "v1", "selfsubjectreviews", "selfsubjectreview", "SelfSubjectReview",
             False, ("create",), schema="io.k8s.api.authentication.v1.SelfSubjectReview", persisted=False),
    Resource("authentication.k8s.io", "v1", "tokenreviews", "tokenreview", "TokenReview", False, ("create",),
             schema="io.k8s.api.authentication.v1.TokenReview", persisted=False),
    Resource("authorization.k8s.io", "v1", "localsubjectaccessreviews", "localsubjectaccessreview",
             "LocalSubjectAccessReview", True, ("create",),
             schema="io.k8s.api.authorization.v1.LocalSubjectAccessReview", persisted=False),
    Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "selfsubjectaccessreview",
             "SelfSubjectAccessReview", False, ("create",),
             schema="io.k8s.api.authorization.v1.SelfSubjectAccessReview", persisted=False),
    Resource("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "selfsubjectrulesreview",
             "SelfSubjectRulesReview", False, ("create",),
             schema="io.k8s.api.authorization.v1.SelfSubjectRulesReview", persisted=False),
    Resource("authorization.k8s.io", "v1", "subjectaccessreviews", "subjectaccessreview",
             "SubjectAccessReview", False, ("create",),
             schema="io.k8s.api.authorization.v1.SubjectAccessReview", persisted=False),
    # The v1beta1 SubjectAccessReview (spec.group, not spec.groups) stays accepted for old manifests;
    # listed after v1 so v1 remains the group's preferred version.
    Resource("authorization.k8s.io", "v1beta1", "subjectaccessreviews", "subjectaccessreview",
             "SubjectAccessReview", False, ("create",),
             schema="io.k8s.api.authorization.v1beta1.SubjectAccessReview", persisted=False),
    # netpol.kubegate.dev/v1alpha1: kubegate's NetworkPolicy engine over HTTP (server/netpol_api.py)
    Resource("netpol.kubegate.dev", "v1alpha1", "networkpolicyreviews", "networkpolicyreview",
             "NetworkPolicyReview", False, ("create",), persisted=False),
)

# Groups in the order upstream's /apis lists them (the subset kubegate serves).
GROUP_ORDER: tuple[str, ...] = (
    "apps", "events.k8s.io", "authentication.k8s.io", "authorization.k8s.io", "batch", "certificates.k8s.io",
    "networking.k8s.io", "rbac.authorization.k8s.io", "storage.k8s.io", "admissionregistration.k8s.io",
    "apiextensions.k8s.io", "coordination.k8s.io",
    "netpol.kubegate.dev",
)

_BY_GVR: dict[tuple[str, str, str], Resource] = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_GVK: dict[tuple[str, str, str], Resource] = {}
for _r in RESOURCES:
    _BY_GVK.setdefault((_r.group, _r.version, _r.kind), _r)


def lookup(group: str, version: str, plural: str) -> Resource | None:
    return _BY_GVR.get((group, version, plural))


def by_kind(group: str, version: str, kind: str) -> Resource | None:
    return _BY_GVK.get((group, version, kind))


def group_versions() -> dict[str, list[str]]:
    """Served versions per group ("" is the legacy core group)."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        vs = out.setdefault(r.group, [])
        if r.version not in vs:
            vs.append(r.version)
    return out


def resources_in(group: str, version: str) -> list[Resource]:
    return sorted((r for r in RESOURCES if r.group == group and r.version == version), key=lambda r: r.plural)
