"""The paths the fast Pod Security evaluation takes beyond the usual one-list pod: init and
ephemeral containers listed once for every check, and audit/warn results reused across levels."""
from __future__ import annotations

import asyncio

from kubegate.admission.interface import CREATE, AdmissionRequest
from kubegate.admission.pod_security import PodSecurity
from kubegate.api import resources
from kubegate.authn.user import UserInfo
from kubegate.podsecurity import LevelVersion, evaluate_pod
from kubegate.podsecurity.api import LATEST

PODS = resources.lookup("", "v1", "pods")
RESTRICTED_OK = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def test_every_check_sees_init_containers_then_containers_then_ephemeral_containers() -> None:
    spec = {"initContainers": [{"name": "init", "securityContext": {"privileged": True}}],
            "containers": [{"name": "app", "securityContext": {**RESTRICTED_OK, "runAsUser": 0}}],
            "ephemeralContainers": [{"name": "debug", "securityContext": {
                "privileged": True, "seccompProfile": {"type": "Unconfined"}}}],
            "securityContext": {"runAsNonRoot": True}}
    result = evaluate_pod(LevelVersion("restricted", LATEST), {"name": "p"}, spec)
    assert result.forbidden_detail() == (
        'privileged (containers "init", "debug" must not set securityContext.privileged=true), '
        'allowPrivilegeEscalation != false (containers "init", "debug" must set '
        "securityContext.allowPrivilegeEscalation=false), "
        'unrestricted capabilities (containers "init", "debug" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsUser=0 (container "app" must not set runAsUser=0), '
        'seccompProfile (container "debug" must not set securityContext.seccompProfile.type to "Unconfined")')


def test_a_compliant_pod_is_allowed_at_every_level() -> None:
    spec = {"containers": [{"name": "app", "securityContext": RESTRICTED_OK}],
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}}
    for level in ("privileged", "baseline", "restricted"):
        for minor in (LATEST, 0, 25, 99):
            assert evaluate_pod(LevelVersion(level, minor), {}, spec).allowed


def test_audit_and_warn_at_a_level_other_than_enforce_both_report() -> None:
    labels = {"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/audit": "restricted",
              "pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/warn-version": "latest"}
    plugin = PodSecurity(None, lambda name: {"metadata": {"name": name, "labels": labels}}, lambda name: [])
    pod = {"metadata": {"name": "p"},
           "spec": {"containers": [{"name": "app", "image": "x",
                                    "securityContext": {**RESTRICTED_OK, "runAsNonRoot": True}}]}}
    req = AdmissionRequest(CREATE, PODS, "a", "p", UserInfo("admin"), pod)
    asyncio.run(plugin.validate(req))
    violation = ('would violate PodSecurity "restricted:latest": seccompProfile (pod or container "app" must set '
                 'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")')
    assert req.annotations == {"pod-security.kubernetes.io/enforce-policy": "baseline:latest",
                               "pod-security.kubernetes.io/audit-violations": violation}
    assert req.warnings == [violation]
