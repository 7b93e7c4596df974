"""CertificateSigning (upstream plugin/pkg/admission/certificates/signing): an update of
`certificatesigningrequests/status` that changes `status.certificate` needs `sign` on the signer."""
from __future__ import annotations

from kubegate.admission.certificate_approval import is_csr, signer_name
from kubegate.admission.interface import CSRS, AdmissionRequest
from kubegate.api import errors
from kubegate.authz.signers import GROUP, authorized_for_signer
from kubegate.authz.types import Authorizer


class CertificateSigning:
    name = "CertificateSigning"
    resources = CSRS

    def __init__(self, authorizer: Authorizer) -> None:
        self.authorizer = authorizer

    async def validate(self, req: AdmissionRequest) -> None:
        if not is_csr(req, "status"):
            return
        new = ((req.obj or {}).get("status") or {}).get("certificate")
        old = ((req.old or {}).get("status") or {}).get("certificate")
        if (new or None) == (old or None):
            return
        signer = signer_name(req)
        if not await authorized_for_signer(self.authorizer, req.user, "sign", signer):
            raise errors.forbidden(req.resource.plural, req.name,
                                   f'user not permitted to sign requests with signerName "{signer}"', GROUP)
