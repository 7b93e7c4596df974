"""The admission plugin table: upstream plugin name -> factory(configuration, deps).

A plugin module registers with one line in PLUGINS (its factory takes the plugin's parsed
configuration from `--admission-control-config-file`, or None, and the PluginDeps). Order and
enablement are the chain's business (admission/chain.py), not this table's. The adapters below
put the plugins whose pure cores predate the chain behind admission/interface.py.
"""
from __future__ import annotations

from typing import Any

from kubegate.admission.certificate_approval import CertificateApproval
from kubegate.admission.certificate_signing import CertificateSigning
from kubegate.admission.certificate_subject_restriction import CertificateSubjectRestriction
from kubegate.admission import (
    always_admit, always_deny, always_pull_images, default_storage_class, default_toleration_seconds, event_rate_limit,
    extended_resource_toleration, image_policy_webhook, limit_pod_hard_anti_affinity_topology, limit_ranger,
    namespace_autoprovision, namespace_exists, resource_quota, service_account,
)
from kubegate.admission.chain import Factory, PluginDeps
from kubegate.admission.interface import CREATE, CSRS, AdmissionRequest
from kubegate.admission.namespace_lifecycle import NamespaceLifecycle
from kubegate.admission.node_restriction import NodeRestriction
from kubegate.admission import pod_security, validating_policy, webhooks
from kubegate.api import csr_strategy
from kubegate.authz.escalation import EscalationGuard


class _Lifecycle:
    name = "NamespaceLifecycle"

    def __init__(self, core: NamespaceLifecycle) -> None:
        self.core = core

    async def admit(self, req: AdmissionRequest) -> None:
        self.core.admit(req.operation.lower(), req.resource, req.obj if req.obj is not None else req.old,
                        req.namespace or None)


def namespace_lifecycle(conf: dict[str, Any] | None, deps: PluginDeps) -> _Lifecycle:
    return _Lifecycle(NamespaceLifecycle(lambda name: deps.cached("namespaces", None, name)))


class _NodeRestriction:
    name = "NodeRestriction"

    def __init__(self, core: NodeRestriction) -> None:
        self.core = core

    async def admit(self, req: AdmissionRequest) -> None:
        self.core.admit(req.operation.lower(), req.resource, req.obj, req.old, req.namespace or None, req.user,
                        req.subresource, req.name)


def node_restriction(conf: dict[str, Any] | None, deps: PluginDeps) -> _NodeRestriction:
    return _NodeRestriction(NodeRestriction(lambda ns, name: deps.cached("pods", ns, name),
                                            lambda name: deps.cached("nodes", None, name)))


class RBACEscalation:
    """Not a plugin upstream but RBAC's policy-based storage, which checks escalation after mutating
    admission and before validation whatever plugins are enabled: the chain's guard."""

    name = "RBACEscalation"
    resources = frozenset(("rbac.authorization.k8s.io", p) for p in ("roles", "clusterroles", "rolebindings",
                                                                      "clusterrolebindings"))

    def __init__(self, guard: EscalationGuard) -> None:
        self.guard = guard

    async def admit(self, req: AdmissionRequest) -> None:
        if req.resource.group == "rbac.authorization.k8s.io":
            await self.guard.admit(req.operation.lower(), req.resource.plural, req.obj, req.old,
                                   req.namespace or None, req.user)


class CSRRequester:
    """Not a plugin upstream but the CSR strategy's PrepareForCreate: spec.username, uid, groups and
    extra record who asked, whatever the body claimed, whatever plugins are enabled."""

    name = "CSRRequester"
    resources = CSRS

    async def admit(self, req: AdmissionRequest) -> None:
        if req.operation == CREATE and req.obj is not None and req.subresource == "" and \
                (req.resource.group, req.resource.plural) == ("certificates.k8s.io", "certificatesigningrequests"):
            csr_strategy.prepare_for_create(req.obj, req.user)


PLUGINS: dict[str, Factory] = {
    "NamespaceLifecycle": namespace_lifecycle,
    "NodeRestriction": node_restriction,
    "AlwaysAdmit": always_admit.factory,
    "AlwaysDeny": always_deny.factory,
    "NamespaceAutoProvision": namespace_autoprovision.factory,
    "NamespaceExists": namespace_exists.factory,
    "AlwaysPullImages": always_pull_images.factory,
    "DefaultTolerationSeconds": default_toleration_seconds.factory,
    "ExtendedResourceToleration": extended_resource_toleration.factory,
    "LimitPodHardAntiAffinityTopology": limit_pod_hard_anti_affinity_topology.factory,
    "DefaultStorageClass": default_storage_class.factory,
    "LimitRanger": limit_ranger.factory,
    "ServiceAccount": service_account.factory,
    "ResourceQuota": resource_quota.factory,
    "EventRateLimit": event_rate_limit.factory,
    "ImagePolicyWebhook": image_policy_webhook.factory,
    "CertificateApproval": lambda conf, deps: CertificateApproval(deps.authorizer),
    "CertificateSigning": lambda conf, deps: CertificateSigning(deps.authorizer),
    "CertificateSubjectRestriction": lambda conf, deps: CertificateSubjectRestriction(),
    "PodSecurity": pod_security.factory,
    "MutatingAdmissionWebhook": webhooks.mutating_factory,
    "ValidatingAdmissionWebhook": webhooks.validating_factory,
    "ValidatingAdmissionPolicy": validating_policy.factory,
}
