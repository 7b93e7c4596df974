"""Validation of every served kind, as upstream's registry strategies run it.

`validate` is the strategy's Validate (create, `old is None`) or ValidateUpdate; `validate_status` is the
status subresource's ValidateUpdate. Both return causes; the caller raises
`errors.invalid(resource.kind, name, causes, resource.group)` when the list is not empty.
Objects are validated after defaulting, as upstream does.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubegate.api.errors import Cause
from kubegate.api.resources import Resource

from . import admissionregistration, apps, batch, certificates, coordination, core, networking, rbac, storage
from .common import d
from .core import DEFAULT_POD_OPTIONS, PodOptions
from .meta import validate_object_meta_update

Validator = Callable[[dict[str, Any], dict[str, Any] | None], list[Cause]]
PodValidator = Callable[[dict[str, Any], dict[str, Any] | None, PodOptions], list[Cause]]
StatusValidator = Callable[[dict[str, Any], dict[str, Any]], list[Cause]]

_VALIDATORS: dict[tuple[str, str], Validator] = {
    ("", "Namespace"): core.namespace,
    ("", "ConfigMap"): core.configmap,
    ("", "Secret"): core.secret,
    ("", "ServiceAccount"): core.serviceaccount,
    ("", "Node"): core.node,
    ("", "Event"): core.event,
    ("", "LimitRange"): core.limitrange,
    ("", "ResourceQuota"): core.resourcequota,
    ("", "PersistentVolumeClaim"): core.persistentvolumeclaim,
    ("", "PersistentVolume"): core.persistentvolume,
    ("rbac.authorization.k8s.io", "Role"): rbac.role,
    ("rbac.authorization.k8s.io", "ClusterRole"): rbac.clusterrole,
    ("rbac.authorization.k8s.io", "RoleBinding"): rbac.rolebinding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): rbac.clusterrolebinding,
    ("certificates.k8s.io", "CertificateSigningRequest"): certificates.csr,
    ("networking.k8s.io", "NetworkPolicy"): networking.networkpolicy,
    ("coordination.k8s.io", "Lease"): coordination.lease,
    ("events.k8s.io", "Event"): core.events_v1,
    ("storage.k8s.io", "StorageClass"): storage.storageclass,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): admissionregistration.mutating_webhook_configuration,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"):
        admissionregistration.validating_webhook_configuration,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): admissionregistration.validating_admission_policy,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"):
        admissionregistration.validating_admission_policy_binding,
}

# Kinds holding a pod spec: their validation follows the server's pod options (--allow-privileged).
_POD_VALIDATORS: dict[tuple[str, str], PodValidator] = {
    ("", "Pod"): core.pod,
    ("apps", "Deployment"): apps.deployment,
    ("apps", "ReplicaSet"): apps.replicaset,
    ("apps", "StatefulSet"): apps.statefulset,
    ("apps", "DaemonSet"): apps.daemonset,
    ("batch", "Job"): batch.job,
    ("batch", "CronJob"): batch.cronjob,
    ("", "ReplicationController"): core.replicationcontroller,
    ("", "PodTemplate"): core.podtemplate,
}

_STATUS_VALIDATORS: dict[tuple[str, str], StatusValidator] = {
    ("", "Pod"): core.pod_status,
    ("", "ResourceQuota"): core.resourcequota_status,
    ("apps", "Deployment"): apps.workload_status,
    ("apps", "ReplicaSet"): apps.workload_status,
    ("apps", "StatefulSet"): apps.statefulset_status,
    ("apps", "DaemonSet"): apps.daemonset_status,
    ("batch", "Job"): batch.job_status,
    ("", "ReplicationController"): apps.workload_status,
    ("certificates.k8s.io", "CertificateSigningRequest"): certificates.csr_status,
}


def validate(resource: Resource, obj: dict[str, Any], old: dict[str, Any] | None = None,
             pod_options: PodOptions = DEFAULT_POD_OPTIONS) -> list[Cause]:
    """Create (old is None) or update validation for the main resource. Unknown kinds pass."""
    pod_fn = _POD_VALIDATORS.get((resource.group, resource.kind))
    if pod_fn is not None:
        return pod_fn(obj, old, pod_options)
    fn = _VALIDATORS.get((resource.group, resource.kind))
    if fn is None:
        return []
    return fn(obj, old)


# CSRs' /approval has rules of its own (upstream's csrApprovalStrategy).
_APPROVAL_VALIDATORS: dict[tuple[str, str], StatusValidator] = {
    ("certificates.k8s.io", "CertificateSigningRequest"): certificates.csr_approval,
}


def validate_status(resource: Resource, obj: dict[str, Any], old: dict[str, Any],
                    subresource: str = "status") -> list[Cause]:
    """Validation for an update through the status (or CSR approval) subresource."""
    table = _APPROVAL_VALIDATORS if subresource == "approval" else _STATUS_VALIDATORS
    fn = table.get((resource.group, resource.kind))
    if fn is None:
        return validate_object_meta_update(d(obj.get("metadata")), d(old.get("metadata")))
    return fn(obj, old)


__all__ = ["PodOptions", "validate", "validate_status"]
