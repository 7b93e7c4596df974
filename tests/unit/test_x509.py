"""X.509 client-certificate authentication and the authenticator chain around it."""
from __future__ import annotations

from asyncio import run

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubegate.authn import AuthenticationError, AuthRequest, AuthResult
from kubegate.authn.user import CREDENTIAL_ID_KEY
from kubegate.authn.x509 import X509Authenticator

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)


class Issued:
    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.cert = cert
        self.key = key

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str = "", orgs: tuple[str, ...] = (), uids: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs += [x509.NameAttribute(NameOID.USER_ID, u) for u in uids]
    if cn:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def make_cert(subject: x509.Name, issuer: Issued | None = None, *, ca: bool = False,
              eku: tuple[x509.ObjectIdentifier, ...] | None = (ExtendedKeyUsageOID.CLIENT_AUTH,),
              not_before: datetime = NOW - DAY, not_after: datetime = NOW + 365 * DAY,
              path_length: int | None = None) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
    elif eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    signer = issuer.key if issuer else key
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def ca(cn: str = "kubernetes", **kw) -> Issued:
    return make_cert(_name(cn), ca=True, not_before=NOW - 10 * DAY, not_after=NOW + 3650 * DAY, **kw)


@pytest.fixture(scope="module")
def root() -> Issued:
    return ca()


def auth(bundle: bytes, clock=lambda: NOW) -> X509Authenticator:
    return X509Authenticator(bundle, clock=clock)


def req(*certs: Issued) -> AuthRequest:
    return AuthRequest(headers={}, peer_certs=[c.der for c in certs], path="/api")


def test_valid_cert_maps_cn_o_uid_and_credential_id(root: Issued) -> None:
    leaf = make_cert(_name("jane", ("dev", "system:masters"), ("1234",)), root)
    result = run(auth(root.pem).authenticate(req(leaf)))
    assert result is not None
    user = result.user
    assert (user.name, user.groups, user.uid) == ("jane", ("dev", "system:masters"), "1234")
    assert user.extra == {CREDENTIAL_ID_KEY: (f"X509SHA256={hashlib.sha256(leaf.der).hexdigest()}",)}
    assert result.audiences == ()


def test_no_certificate_is_not_my_credentials(root: Issued) -> None:
    assert run(auth(root.pem).authenticate(AuthRequest(headers={}))) is None


def test_empty_cn_is_not_authenticated(root: Issued) -> None:
    leaf = make_cert(_name("", ("dev",)), root)
    assert run(auth(root.pem).authenticate(req(leaf))) is None


def test_expired_and_not_yet_valid(root: Issued) -> None:
    expired = make_cert(_name("old"), root, not_before=NOW - 30 * DAY, not_after=NOW - DAY)
    with pytest.raises(AuthenticationError, match="certificate has expired or is not yet valid: current time "
                       "2026-06-01T12:00:00Z is after 2026-05-31T12:00:00Z"):
        run(auth(root.pem).authenticate(req(expired)))
    future = make_cert(_name("new"), root, not_before=NOW + DAY)
    with pytest.raises(AuthenticationError, match="is before 2026-06-02T12:00:00Z"):
        run(auth(root.pem).authenticate(req(future)))


def test_other_ca_and_self_signed_are_rejected(root: Issued) -> None:
    other = ca("other-ca")
    leaf = make_cert(_name("mallory", ("system:masters",)), other)
    with pytest.raises(AuthenticationError, match="x509: certificate signed by unknown authority"):
        run(auth(root.pem).authenticate(req(leaf)))
    # same issuer name as the trusted CA, different key: the signature check fails
    impostor = ca("kubernetes")
    forged = make_cert(_name("mallory"), impostor)
    with pytest.raises(AuthenticationError, match="unknown authority"):
        run(auth(root.pem).authenticate(req(forged)))
    self_signed = make_cert(_name("mallory", ("system:masters",)))
    with pytest.raises(AuthenticationError, match="unknown authority"):
        run(auth(root.pem).authenticate(req(self_signed)))


def test_ext_key_usage_must_permit_client_auth(root: Issued) -> None:
    server_only = make_cert(_name("web"), root, eku=(ExtendedKeyUsageOID.SERVER_AUTH,))
    with pytest.raises(AuthenticationError, match="incompatible key usage"):
        run(auth(root.pem).authenticate(req(server_only)))
    both = make_cert(_name("web"), root, eku=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH))
    assert run(auth(root.pem).authenticate(req(both))) is not None
    # as Go: a certificate without the extension is not restricted
    unrestricted = make_cert(_name("any"), root, eku=None)
    assert run(auth(root.pem).authenticate(req(unrestricted))) is not None


def test_bundle_of_two_cas(root: Issued) -> None:
    second = ca("front-proxy-ca")
    bundle = root.pem + second.pem
    a = auth(bundle)
    for issuer, cn in ((root, "u1"), (second, "u2")):
        result = run(a.authenticate(req(make_cert(_name(cn), issuer))))
        assert result is not None and result.user.name == cn


def test_intermediate_from_presented_chain(root: Issued) -> None:
    inter = make_cert(_name("intermediate"), root, ca=True)
    leaf = make_cert(_name("chained", ("g",)), inter)
    a = auth(root.pem)
    result = run(a.authenticate(req(leaf, inter)))
    assert result is not None and result.user.groups == ("g",)
    with pytest.raises(AuthenticationError, match="unknown authority"):
        run(auth(root.pem).authenticate(req(leaf)))
    # a non-CA certificate cannot act as an intermediate
    not_ca = make_cert(_name("leafy"), root, eku=None)
    below = make_cert(_name("x"), not_ca)
    with pytest.raises(AuthenticationError, match="not authorized to sign other certificates"):
        run(auth(root.pem).authenticate(req(below, not_ca)))
    # path length 0 on the root forbids any intermediate
    strict = ca("strict", path_length=0)
    inter2 = make_cert(_name("i2"), strict, ca=True)
    with pytest.raises(AuthenticationError, match="path length"):
        run(auth(strict.pem).authenticate(req(make_cert(_name("y"), inter2), inter2)))


def test_multiple_uids_are_an_error(root: Issued) -> None:
    leaf = make_cert(_name("u", (), ("a", "b")), root)
    with pytest.raises(AuthenticationError, match=r"expected 1 UID, but found multiple: \[a b\]"):
        run(auth(root.pem).authenticate(req(leaf)))


def test_cache_skips_reverification_and_honours_not_after(root: Issued, monkeypatch) -> None:
    now = [NOW]
    a = auth(root.pem, clock=lambda: now[0])
    leaf = make_cert(_name("cached"), root, not_after=NOW + DAY)
    assert run(a.authenticate(req(leaf))) is not None
    calls: list[int] = []
    original = a._verify

    def counting(ders: list[bytes], t: datetime) -> tuple[AuthResult | None, datetime]:
        calls.append(1)
        return original(ders, t)

    monkeypatch.setattr(a, "_verify", counting)
    assert run(a.authenticate(req(leaf))) is not None
    assert calls == []
    now[0] = NOW + 2 * DAY
    with pytest.raises(AuthenticationError, match="expired"):
        run(a.authenticate(req(leaf)))
    assert calls == [1]


def test_cache_is_bounded(root: Issued) -> None:
    a = X509Authenticator(root.pem, cache_size=2, clock=lambda: NOW)
    for cn in ("a", "b", "c"):
        run(a.authenticate(req(make_cert(_name(cn), root))))
    assert len(a._cache) == 2
