"""The csrsigning controller (upstream pkg/controller/certificates/signer): signs approved CSRs of
the kubernetes.io/kube-apiserver-client, kube-apiserver-client-kubelet and kubelet-serving signers
with the cluster signing CA (--cluster-signing-cert-file/--cluster-signing-key-file).

It acts as `system:serviceaccount:kube-system:certificate-controller`: the status update is
authorized as such, and so is `sign` on the signer (what CertificateSigning admission checks).
A request breaking its signer's rules gets a Failed condition (SignerValidationFailure) instead
of a certificate; unapproved, denied, failed and already issued CSRs are left alone.
"""
from __future__ import annotations

import base64
import datetime
import logging
from collections.abc import Callable
from typing import Any

from cryptography import x509

from kubegate.api.objects import now_rfc3339
from kubegate.authz.types import Authorizer
from kubegate.controllers.client import ControllerClient
from kubegate.controllers.csr_controller import CSRController
from kubegate.pki import signer
from kubegate.pki.certs import PrivateKey, cert_pem

log = logging.getLogger("kubegate.csrsigning")

CONTROLLER = "certificate-controller"


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def has_true(csr: dict[str, Any], ctype: str) -> bool:
    return any(isinstance(c, dict) and c.get("type") == ctype and c.get("status") == "True"
               for c in (csr.get("status") or {}).get("conditions") or [])


def is_approved(csr: dict[str, Any]) -> bool:
    return has_true(csr, "Approved") and not has_true(csr, "Denied")


def outcome(csr: dict[str, Any], ca_cert: x509.Certificate, ca_key: PrivateKey, max_duration: datetime.timedelta,
            now: datetime.datetime) -> dict[str, Any] | None:
    """What the signer writes to status for `csr`: {"certificate": b64} or {"failed": message};
    None when it leaves the CSR alone."""
    status = csr.get("status") or {}
    if status.get("certificate") or not is_approved(csr) or has_true(csr, "Failed"):
        return None
    spec = csr.get("spec") or {}
    name, usages = str(spec.get("signerName") or ""), list(spec.get("usages") or [])
    if name not in signer.SIGNERS:
        return None
    try:
        request = signer.parse_request(str(spec.get("request") or ""))
        signer.check(name, request, usages)
        ttl = signer.duration(spec.get("expirationSeconds"), max_duration)
        cert = signer.sign(request, usages, ttl, ca_cert, ca_key, now)
    except signer.SignerError as e:
        return {"failed": str(e)}
    return {"certificate": base64.b64encode(cert_pem(cert)).decode()}


class CSRSigningController(CSRController):
    def __init__(self, client: ControllerClient, authorizer: Authorizer, ca_cert: x509.Certificate,
                 ca_key: PrivateKey, max_duration: datetime.timedelta,
                 clock: Callable[[], datetime.datetime] = _utcnow) -> None:
        super().__init__(client, authorizer, "csrsigning", log)
        self.ca_cert, self.ca_key = ca_cert, ca_key
        self.max_duration = max_duration
        self.clock = clock

    async def handle(self, name: str, csr: dict[str, Any]) -> bool:
        result = outcome(csr, self.ca_cert, self.ca_key, self.max_duration, self.clock())
        if result is None:
            return True
        signer_name = str(csr["spec"].get("signerName"))
        if "certificate" in result and not await self.permitted(name, "sign", signer_name):
            return True
        uid = csr["metadata"].get("uid")

        def write(cur: dict[str, Any]) -> dict[str, Any]:
            if cur["metadata"].get("uid") != uid or (cur.get("status") or {}).get("certificate"):
                return cur  # replaced or already issued meanwhile: nothing to write
            status = cur.setdefault("status", {})
            if "certificate" in result:
                status["certificate"] = result["certificate"]
            else:
                status.setdefault("conditions", []).append({
                    "type": "Failed", "status": "True", "reason": "SignerValidationFailure",
                    "message": result["failed"], "lastUpdateTime": now_rfc3339()})
            return cur
        await self.client.update("certificatesigningrequests", None, name, write, subresource="status")
        if "certificate" in result:
            log.info("signed certificate signing request %s for %s", name, signer_name)
        return True
