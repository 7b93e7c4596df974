"""CSR write paths: the registry strategies, the subresource update rules and the three
certificate admission plugins (upstream strategy.go, validation.go, plugin/pkg/admission/certificates)."""
from __future__ import annotations

import asyncio
import base64
import copy
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubegate.admission.certificate_approval import CertificateApproval
from kubegate.admission.certificate_signing import CertificateSigning
from kubegate.admission.certificate_subject_restriction import CertificateSubjectRestriction
from kubegate.admission.interface import CREATE, UPDATE, AdmissionRequest
from kubegate.api import csr_strategy
from kubegate.api.errors import StatusError
from kubegate.api.resources import RESOURCES
from kubegate.api.validation import certificates
from kubegate.authn.user import UserInfo
from kubegate.authz.types import Attributes, AuthzResult, Decision
from tests.fixtures import GOLDENS

CSR_RESOURCE = next(r for r in RESOURCES if r.plural == "certificatesigningrequests")
NOW = "2026-11-23T12:00:00Z"


def golden(name: str) -> dict[str, Any]:
    return json.loads((GOLDENS / "certificates" / name).read_text())


def request_b64(cn: str, orgs: list[str] = ()) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] + [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o)
                                                             for o in orgs]
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs)).sign(key, hashes.SHA256())
    return base64.b64encode(csr.public_bytes(serialization.Encoding.PEM)).decode()


def messages(causes: list[Any]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


# -- strategies ----------------------------------------------------------------------------

def test_create_records_the_requesting_user_not_the_clients_claim() -> None:
    obj = {"spec": {"username": "forged", "groups": ["system:masters"], "request": "x"}, "status": {"certificate": "y"}}
    user = UserInfo("kubernetes-admin", "", ("system:masters", "system:authenticated"),
                    {"authentication.kubernetes.io/credential-id": ("X509SHA256=ab",)})
    csr_strategy.prepare_for_create(obj, user)
    want = golden("csr-create.json")["response"]["body"]["spec"]
    assert obj["spec"]["username"] == "kubernetes-admin" and "uid" not in obj["spec"]
    assert obj["spec"]["groups"] == want["groups"]
    assert obj["spec"]["extra"] == {"authentication.kubernetes.io/credential-id": ["X509SHA256=ab"]}
    assert obj["status"] == {}


def test_main_update_keeps_spec_and_status_as_golden() -> None:
    g = golden("csr-update-spec.json")
    stored = golden("csr-signed.json")["response"]["body"]
    new = copy.deepcopy(stored)
    new["spec"]["usages"] = g["request"]["body"]["spec"]["usages"]
    new["status"] = {}
    assert csr_strategy.update(new, stored, "", NOW) == []
    assert new["spec"] == g["response"]["body"]["spec"] and new["status"] == stored["status"]


def test_approval_stamps_condition_times_and_keeps_the_rest() -> None:
    g = golden("csr-approve.json")
    stored = golden("csr-get-pending.json")["response"]["body"]
    new = copy.deepcopy(g["request"]["body"])
    new["spec"]["usages"] = ["digital signature"]  # ignored: spec never changes
    assert csr_strategy.update(new, stored, "approval", NOW) == []
    cond = new["status"]["conditions"][0]
    assert cond["lastUpdateTime"] == cond["lastTransitionTime"] == NOW
    want = g["response"]["body"]
    assert new["spec"] == want["spec"]
    assert {k: v for k, v in cond.items() if not k.startswith("last")} == \
        {k: v for k, v in want["status"]["conditions"][0].items() if not k.startswith("last")}


def test_approving_a_denied_csr_is_invalid_as_golden() -> None:
    g = golden("csr-approve-again.json")
    stored = golden("csr-approve.json")["response"]["body"]
    new = copy.deepcopy(g["request"]["body"])
    csr_strategy.prepare_for_update(new, stored, "approval", NOW)
    causes = certificates.csr_approval(new, stored)
    assert [c.message for c in causes] == [c["message"] for c in g["response"]["body"]["details"]["causes"]]
    assert [c.field for c in causes] == ["status.conditions"]


def test_status_cannot_add_approval_and_reverts_changed_instances() -> None:
    stored = golden("csr-approve.json")["response"]["body"]
    added = copy.deepcopy(stored)
    added["status"]["conditions"].append({"type": "Denied", "status": "True"})
    assert 'status.conditions: Forbidden: updates may not add a condition of type "Denied"' in \
        messages(csr_strategy.update(added, stored, "status", NOW))
    changed = copy.deepcopy(stored)
    changed["status"]["conditions"][0]["message"] = "rewritten"
    assert csr_strategy.update(changed, stored, "status", NOW) == []
    assert changed["status"]["conditions"] == stored["status"]["conditions"]


def test_certificate_set_once_through_status_only() -> None:
    pending = golden("csr-approve.json")["response"]["body"]
    signed = golden("csr-signed.json")["response"]["body"]
    cert = signed["status"]["certificate"]
    via_status = copy.deepcopy(pending)
    via_status["status"]["certificate"] = cert
    assert csr_strategy.update(via_status, pending, "status", NOW) == []
    via_approval = copy.deepcopy(pending)
    via_approval["status"]["certificate"] = cert
    csr_strategy.update(via_approval, pending, "approval", NOW)
    assert "certificate" not in via_approval["status"]  # the approval path keeps the stored status
    again = copy.deepcopy(signed)
    again["status"]["certificate"] = pending["spec"]["request"]
    assert messages(certificates.update_rules(again, signed, certificate=True)) == [
        "status.certificate: Forbidden: updates may not modify existing certificate content"]
    assert messages(certificates.update_rules(via_status, pending)) == [
        "status.certificate: Forbidden: updates may not set certificate content"]


def test_removing_a_condition_is_forbidden() -> None:
    stored = golden("csr-server-auth-usage-failed.json")["response"]["body"]
    new = copy.deepcopy(stored)
    new["status"]["conditions"] = new["status"]["conditions"][:1]
    assert messages(csr_strategy.update(new, stored, "status", NOW)) == [
        'status.conditions: Forbidden: updates may not remove a condition of type "Failed"']


def test_approved_condition_must_be_true() -> None:
    obj = golden("csr-approve.json")["response"]["body"]
    obj = copy.deepcopy(obj)
    obj["status"]["conditions"][0]["status"] = "False"
    assert messages(certificates.csr(obj, None)) == [
        'status.conditions[0].status: Unsupported value: "False": supported values: "True"']


# -- admission -----------------------------------------------------------------------------

class Policy:
    """An authorizer allowing exactly the (user, verb, resource, name) tuples given."""

    def __init__(self, *allowed: tuple[str, str, str, str]) -> None:
        self.allowed = set(allowed)
        self.asked: list[Attributes] = []

    async def authorize(self, attrs: Attributes) -> AuthzResult:
        self.asked.append(attrs)
        ok = (attrs.user.name, attrs.verb, attrs.resource, attrs.name) in self.allowed
        return AuthzResult(Decision.ALLOW if ok else Decision.NO_OPINION)


def areq(op: str, obj: dict[str, Any] | None, old: dict[str, Any] | None, sub: str, user: str) -> AdmissionRequest:
    name = ((obj or old or {}).get("metadata") or {}).get("name", "")
    return AdmissionRequest(op, CSR_RESOURCE, "", name, UserInfo(user), obj, old, subresource=sub)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_approval_needs_approve_on_signer_or_domain_wildcard() -> None:
    stored = golden("csr-get-pending.json")["response"]["body"]
    new = golden("csr-approve.json")["request"]["body"]
    policy = Policy(("carol", "approve", "signers", "kubernetes.io/*"))
    plugin = CertificateApproval(policy)
    run(plugin.validate(areq(UPDATE, new, stored, "approval", "carol")))
    assert [a.name for a in policy.asked] == ["kubernetes.io/kube-apiserver-client", "kubernetes.io/*"]
    assert policy.asked[0].api_group == "certificates.k8s.io" and policy.asked[0].api_version == "*"
    with pytest.raises(StatusError) as e:
        run(plugin.validate(areq(UPDATE, new, stored, "approval", "alice")))
    assert e.value.code == 403
    assert e.value.message == ('certificatesigningrequests.certificates.k8s.io "golden-user" is forbidden: user not '
                               'permitted to approve requests with signerName "kubernetes.io/kube-apiserver-client"')
    run(plugin.validate(areq(UPDATE, new, stored, "status", "alice")))  # other paths are not its business


def test_signing_checks_sign_only_when_the_certificate_changes() -> None:
    pending = golden("csr-approve.json")["response"]["body"]
    signed = golden("csr-signed.json")["response"]["body"]
    plugin = CertificateSigning(Policy())
    run(plugin.validate(areq(UPDATE, pending, pending, "status", "mallory")))
    with pytest.raises(StatusError) as e:
        run(plugin.validate(areq(UPDATE, signed, pending, "status", "mallory")))
    assert e.value.message.endswith(
        'is forbidden: user not permitted to sign requests with signerName "kubernetes.io/kube-apiserver-client"')
    run(CertificateSigning(Policy(("ca", "sign", "signers", "kubernetes.io/kube-apiserver-client"))).validate(
        areq(UPDATE, signed, pending, "status", "ca")))


def test_subject_restriction_refuses_system_masters_as_golden() -> None:
    g = golden("csr-system-masters.json")
    plugin = CertificateSubjectRestriction()
    with pytest.raises(StatusError) as e:
        run(plugin.validate(areq(CREATE, g["request"]["body"], None, "", "kubernetes-admin")))
    body = g["response"]["body"]
    assert (e.value.code, e.value.message) == (body["code"], body["message"])
    other = copy.deepcopy(g["request"]["body"])
    other["spec"]["signerName"] = "example.com/masters"
    run(plugin.validate(areq(CREATE, other, None, "", "kubernetes-admin")))
    run(plugin.validate(areq(CREATE, golden("csr-create.json")["request"]["body"], None, "", "kubernetes-admin")))


def test_subject_restriction_reports_unparsable_requests() -> None:
    obj = {"metadata": {"name": "junk"}, "spec": {"signerName": "kubernetes.io/kube-apiserver-client",
                                                  "request": base64.b64encode(b"garbage").decode()}}
    with pytest.raises(StatusError) as e:
        run(CertificateSubjectRestriction().validate(areq(CREATE, obj, None, "", "u")))
    assert e.value.code == 403 and "failed to parse CSR" in e.value.message


def test_request_signed_by_another_key_is_invalid() -> None:
    good = base64.b64decode(request_b64("a"))
    der = x509.load_pem_x509_csr(good).public_bytes(serialization.Encoding.DER)
    tampered = bytearray(der)
    tampered[-5] ^= 0xFF  # the signature no longer matches the named key
    pem = b"-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(bytes(tampered)) + \
        b"-----END CERTIFICATE REQUEST-----\n"
    assert certificates.csr_request_error(pem) == "x509: ECDSA verification failure"
    assert certificates.csr_request_error(good) is None
