"""CertificateApproval (upstream plugin/pkg/admission/certificates/approval): an update of
`certificatesigningrequests/approval` needs `approve` on the CSR's signer."""
from __future__ import annotations

from kubegate.admission.interface import CSRS, AdmissionRequest
from kubegate.api import errors
from kubegate.authz.signers import GROUP, authorized_for_signer
from kubegate.authz.types import Authorizer


def is_csr(req: AdmissionRequest, subresource: str) -> bool:
    return req.resource.group == GROUP and req.resource.plural == "certificatesigningrequests" \
        and req.subresource == subresource


def signer_name(req: AdmissionRequest) -> str:
    """The stored CSR's signer: the spec of a subresource update is the stored one anyway."""
    obj = req.old if req.old is not None else req.obj
    return str(((obj or {}).get("spec") or {}).get("signerName") or "")


class CertificateApproval:
    name = "CertificateApproval"
    resources = CSRS

    def __init__(self, authorizer: Authorizer) -> None:
        self.authorizer = authorizer

    async def validate(self, req: AdmissionRequest) -> None:
        if not is_csr(req, "approval"):
            return
        signer = signer_name(req)
        if not await authorized_for_signer(self.authorizer, req.user, "approve", signer):
            raise errors.forbidden(req.resource.plural, req.name,
                                   f'user not permitted to approve requests with signerName "{signer}"', GROUP)
