"""The authenticated identity (upstream's user.Info) and the well-known names."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SYSTEM_PRIVILEGED_GROUP = "system:masters"
NODES_GROUP = "system:nodes"
MONITORING_GROUP = "system:monitoring"
ALL_UNAUTHENTICATED = "system:unauthenticated"
ALL_AUTHENTICATED = "system:authenticated"
ANONYMOUS = "system:anonymous"
APISERVER_USER = "system:apiserver"
KUBE_PROXY = "system:kube-proxy"
KUBE_CONTROLLER_MANAGER = "system:kube-controller-manager"
KUBE_SCHEDULER = "system:kube-scheduler"

SERVICE_ACCOUNT_USERNAME_PREFIX = "system:serviceaccount:"
SERVICE_ACCOUNT_GROUP = "system:serviceaccounts"

CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id"


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    # Not hashed: a mapping is not hashable, and identity is name/uid/groups for set membership.
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)


def user_info_json(user: UserInfo) -> dict[str, Any]:
    """authentication.k8s.io UserInfo as reviews carry it (TokenReview, SelfSubjectReview, AdmissionReview)."""
    out: dict[str, Any] = {"username": user.name}
    if user.uid:
        out["uid"] = user.uid
    if user.groups:
        out["groups"] = list(user.groups)
    if user.extra:
        out["extra"] = {k: list(v) for k, v in sorted(user.extra.items())}  # Go writes map keys sorted
    return out


def service_account_username(namespace: str, name: str) -> str:
    return f"{SERVICE_ACCOUNT_USERNAME_PREFIX}{namespace}:{name}"
