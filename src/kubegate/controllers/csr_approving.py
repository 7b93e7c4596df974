"""The csrapproving controller (upstream pkg/controller/certificates/approver/sarapprove.go):
approves kubelet client CSRs when the requester may create `certificatesigningrequests/selfnodeclient`
(renewing its own CN) or `certificatesigningrequests/nodeclient` (bootstrap), asked of the
authorizer exactly as the SubjectAccessReview upstream sends would be.

It acts as `system:serviceaccount:kube-system:certificate-controller`: the approval update and
`approve` on the signer (what CertificateApproval admission checks) are authorized as that user.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kubegate.authn.user import UserInfo
from kubegate.authz.signers import GROUP
from kubegate.authz.types import Attributes, Authorizer
from kubegate.controllers.client import ControllerClient
from kubegate.controllers.csr_controller import CSRController
from kubegate.controllers.csr_signing import has_true
from kubegate.pki import signer

log = logging.getLogger("kubegate.csrapproving")

CONTROLLER = "csrapproving"


@dataclass(frozen=True)
class Recognizer:
    subresource: str
    message: str
    self_only: bool


# Upstream's order: a renewal of one's own certificate first, then the bootstrap case.
RECOGNIZERS = (
    Recognizer("selfnodeclient", "Auto approving self kubelet client certificate after SubjectAccessReview.", True),
    Recognizer("nodeclient", "Auto approving kubelet client certificate after SubjectAccessReview.", False),
)


def requester(csr: dict[str, Any]) -> UserInfo:
    spec = csr.get("spec") or {}
    return UserInfo(str(spec.get("username") or ""), str(spec.get("uid") or ""), tuple(spec.get("groups") or ()),
                    {k: tuple(v) for k, v in (spec.get("extra") or {}).items()})


def candidates(csr: dict[str, Any]) -> list[Recognizer]:
    """The recognizers that apply to a pending CSR, in order (empty: not a node client CSR)."""
    status, spec = csr.get("status") or {}, csr.get("spec") or {}
    if status.get("certificate") or has_true(csr, "Approved") or has_true(csr, "Denied"):
        return []
    if spec.get("signerName") != signer.KUBE_APISERVER_CLIENT_KUBELET:
        return []
    try:
        request = signer.parse_request(str(spec.get("request") or ""))
    except signer.SignerError:
        return []
    if signer.kubelet_client_error(request, spec.get("usages") or []) is not None:
        return []
    own = spec.get("username") == signer.common_name(request)
    return [r for r in RECOGNIZERS if own or not r.self_only]


def approved(csr: dict[str, Any], message: str) -> dict[str, Any]:
    """`csr` with the AutoApproved condition appended (the server stamps its times)."""
    csr.setdefault("status", {}).setdefault("conditions", []).append(
        {"type": "Approved", "status": "True", "reason": "AutoApproved", "message": message})
    return csr


class CSRApprovingController(CSRController):
    def __init__(self, client: ControllerClient, authorizer: Authorizer) -> None:
        super().__init__(client, authorizer, CONTROLLER, log)

    async def _review(self, csr: dict[str, Any], subresource: str) -> bool:
        attrs = Attributes(user=requester(csr), verb="create", api_group=GROUP, api_version="*",
                           resource="certificatesigningrequests", subresource=subresource, resource_request=True)
        return (await self.authorizer.authorize(attrs)).allowed

    async def handle(self, name: str, csr: dict[str, Any]) -> bool:
        tried = []
        for r in candidates(csr):
            tried.append(r.subresource)
            if not await self._review(csr, r.subresource):
                continue
            if not await self.permitted(name, "approve", signer.KUBE_APISERVER_CLIENT_KUBELET):
                return True
            uid = csr["metadata"].get("uid")

            def approve(cur: dict[str, Any], message: str = r.message) -> dict[str, Any]:
                return approved(cur, message) if cur["metadata"].get("uid") == uid and candidates(cur) else cur
            await self.client.update("certificatesigningrequests", None, name, approve, subresource="approval")
            return True
        if tried:
            log.info("recognized csr %r as %s but subject access review was not approved", name, tried)
        return True
