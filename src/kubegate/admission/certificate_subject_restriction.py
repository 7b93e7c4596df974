"""CertificateSubjectRestriction (upstream plugin/pkg/admission/certificates/subjectrestriction):
no `system:masters` organization through the kube-apiserver-client signer, whose certificates
would otherwise mint cluster-admins."""
from __future__ import annotations

import base64
import binascii

from cryptography import x509

from kubegate.admission.certificate_approval import is_csr
from kubegate.admission.interface import CREATE, CSRS, AdmissionRequest
from kubegate.api import errors
from kubegate.authn.user import SYSTEM_PRIVILEGED_GROUP
from kubegate.authz.signers import GROUP
from kubegate.pki.signer import KUBE_APISERVER_CLIENT, organizations


class CertificateSubjectRestriction:
    name = "CertificateSubjectRestriction"
    resources = CSRS

    async def validate(self, req: AdmissionRequest) -> None:
        if req.operation != CREATE or not is_csr(req, ""):
            return
        spec = (req.obj or {}).get("spec") or {}
        if spec.get("signerName") != KUBE_APISERVER_CLIENT:
            return
        name = req.name or str(((req.obj or {}).get("metadata") or {}).get("name") or "")
        try:
            csr = x509.load_pem_x509_csr(base64.b64decode(str(spec.get("request") or ""), validate=True))
        except (ValueError, binascii.Error) as e:
            raise errors.forbidden(req.resource.plural, name, f"failed to parse CSR: {e}", GROUP) from None
        if SYSTEM_PRIVILEGED_GROUP in organizations(csr):
            raise errors.forbidden(req.resource.plural, name,
                                   f"use of {KUBE_APISERVER_CLIENT} signer with {SYSTEM_PRIVILEGED_GROUP} group "
                                   "is not allowed", GROUP)
