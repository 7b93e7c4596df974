"""The authenticating proxy (requestheader): which headers are read, and when they are trusted at all."""
from __future__ import annotations

from asyncio import run

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from multidict import CIMultiDict

from kubegate.authn import AuthenticationError, AuthRequest
from kubegate.authn.anonymous import AnonymousAuthenticator
from kubegate.authn.requestheader import (
    STANDARD, HeaderNames, RequestHeaderAuthenticator, RequestHeaderConfig, cleared_headers, go_path_unescape,
    user_from_headers, validate,
)
from kubegate.authn.union import build_request_authenticator
from kubegate.authn.user import ALL_AUTHENTICATED, ANONYMOUS
from kubegate.authn.x509 import X509Authenticator
from kubegate.pki import certs

KUBEADM = RequestHeaderConfig(("X-Remote-User",), ("X-Remote-Uid",), ("X-Remote-Group",), ("X-Remote-Extra-",),
                              ("front-proxy-client",))


def headers(*pairs: tuple[str, str]) -> CIMultiDict[str]:
    return CIMultiDict(pairs)


class PKI:
    def __init__(self) -> None:
        self.cluster_key = certs.new_key("ecdsa")
        self.cluster_ca = certs.self_signed_ca("kubernetes", self.cluster_key)
        self.proxy_key = certs.new_key("ecdsa")
        self.proxy_ca = certs.self_signed_ca("front-proxy-ca", self.proxy_key)

    def leaf(self, ca: x509.Certificate, ca_key: certs.PrivateKey, cn: str, orgs: tuple[str, ...] = ()) -> bytes:
        cert = certs.issue(ca, ca_key, cn=cn, orgs=orgs, client=True, key=certs.new_key("ecdsa"))
        return cert.public_bytes(Encoding.DER)

    def proxy(self, cn: str = "front-proxy-client") -> bytes:
        return self.leaf(self.proxy_ca, self.proxy_key, cn)

    def client(self, cn: str, orgs: tuple[str, ...] = ()) -> bytes:
        return self.leaf(self.cluster_ca, self.cluster_key, cn, orgs)


@pytest.fixture(scope="module")
def pki() -> PKI:
    return PKI()


def proxy_auth(pki: PKI, cfg: RequestHeaderConfig = KUBEADM) -> RequestHeaderAuthenticator:
    return RequestHeaderAuthenticator(certs.cert_pem(pki.proxy_ca), cfg)


def chain(pki: PKI) -> object:
    """kube-apiserver's chain: requestheader, x509 against the cluster CA, then anonymous."""
    return build_request_authenticator(
        [proxy_auth(pki), X509Authenticator(certs.cert_pem(pki.cluster_ca))], AnonymousAuthenticator())


# -- reading the headers ----------------------------------------------------------------------

def test_user_uid_groups_and_extra_from_headers() -> None:
    h = headers(("X-Remote-User", "alice"), ("X-Remote-Uid", "u-1"), ("X-Remote-Group", "devs"),
                ("x-remote-group", "ops,qa"), ("X-Remote-Group", ""),
                ("X-Remote-Extra-Scopes", "view"), ("x-remote-extra-scopes", "edit"),
                ("X-Remote-Extra-Acme.com%2Fproject", "p1"))
    u = user_from_headers(h, KUBEADM)
    assert u is not None
    assert (u.name, u.uid) == ("alice", "u-1")
    # every value of every group header, empty ones skipped, commas not split
    assert u.groups == ("devs", "ops,qa")
    # keys lower-cased, then percent-decoded
    assert dict(u.extra) == {"scopes": ("view", "edit"), "acme.com/project": ("p1",)}


def test_first_non_empty_username_header_wins() -> None:
    cfg = RequestHeaderConfig(("X-Remote-User", "X-Forwarded-User"))
    assert user_from_headers(headers(("X-Remote-User", ""), ("X-Forwarded-User", "bob")), cfg).name == "bob"
    assert user_from_headers(headers(("X-Forwarded-User", "bob"), ("X-Remote-User", "carol")), cfg).name == "carol"
    # Header.Get: only the first value of a repeated header counts
    assert user_from_headers(headers(("X-Remote-User", "a"), ("X-Remote-User", "b")), cfg).name == "a"


def test_no_username_is_not_authenticated() -> None:
    assert user_from_headers(headers(("X-Remote-Group", "system:masters")), KUBEADM) is None
    assert user_from_headers(headers(("X-Remote-User", "")), KUBEADM) is None
    # upstream's kube-apiserver defaults: no username headers configured, nobody is ever read
    assert user_from_headers(headers(("X-Remote-User", "alice")), RequestHeaderConfig()) is None


@pytest.mark.parametrize("raw,want", [
    ("plain", "plain"), ("a%2fb", "a/b"), ("a%2Fb%20c", "a/b c"), ("a+b", "a+b"),
    ("bad%zzkey", "bad%zzkey"), ("trail%2", "trail%2"), ("half%2fok%g1", "half%2fok%g1"),
])
def test_extra_key_unescaping_matches_go_path_unescape(raw: str, want: str) -> None:
    assert go_path_unescape(raw) == want


# -- when they are trusted ------------------------------------------------------------------

def test_proxy_certificate_makes_headers_trusted(pki: PKI) -> None:
    req = AuthRequest(headers=headers(("X-Remote-User", "alice"), ("X-Remote-Group", "devs")),
                      peer_certs=[pki.proxy()])
    res = run(proxy_auth(pki).authenticate(req))
    assert res is not None and res.user.name == "alice" and res.user.groups == ("devs",)


def test_no_certificate_means_not_mine(pki: PKI) -> None:
    assert run(proxy_auth(pki).authenticate(AuthRequest(headers=headers(("X-Remote-User", "alice"))))) is None


def test_certificate_from_another_ca_fails(pki: PKI) -> None:
    req = AuthRequest(headers=headers(("X-Remote-User", "alice")), peer_certs=[pki.client("front-proxy-client")])
    with pytest.raises(AuthenticationError, match="x509: certificate signed by unknown authority"):
        run(proxy_auth(pki).authenticate(req))


def test_cn_outside_allowed_names_fails(pki: PKI) -> None:
    req = AuthRequest(headers=headers(("X-Remote-User", "alice")), peer_certs=[pki.proxy("rogue-proxy")])
    with pytest.raises(AuthenticationError) as e:
        run(proxy_auth(pki).authenticate(req))
    assert str(e.value) == "x509: subject with cn=rogue-proxy is not in the allowed list"


def test_empty_allowed_names_accept_any_cn_from_the_ca(pki: PKI) -> None:
    cfg = RequestHeaderConfig(("X-Remote-User",))
    req = AuthRequest(headers=headers(("X-Remote-User", "alice")), peer_certs=[pki.proxy("anything")])
    assert run(proxy_auth(pki, cfg).authenticate(req)).user.name == "alice"


def test_verified_proxy_without_username_is_not_mine(pki: PKI) -> None:
    req = AuthRequest(headers=headers(("X-Remote-Group", "system:masters")), peer_certs=[pki.proxy()])
    assert run(proxy_auth(pki).authenticate(req)) is None


def test_in_the_chain_a_normal_client_cert_ignores_the_headers(pki: PKI) -> None:
    req = AuthRequest(headers=headers(("X-Remote-User", "admin"), ("X-Remote-Group", "system:masters")),
                      peer_certs=[pki.client("alice", ("devs",))])
    res = run(chain(pki).authenticate(req))
    assert res.user.name == "alice" and res.user.groups == ("devs", ALL_AUTHENTICATED)


def test_in_the_chain_headers_without_a_cert_stay_anonymous(pki: PKI) -> None:
    req = AuthRequest(headers=headers(("X-Remote-User", "admin"), ("X-Remote-Group", "system:masters")))
    assert run(chain(pki).authenticate(req)).user.name == ANONYMOUS


def test_in_the_chain_a_trusted_proxy_user_gets_system_authenticated(pki: PKI) -> None:
    req = AuthRequest(headers=headers(("X-Remote-User", "alice")), peer_certs=[pki.proxy()])
    assert run(chain(pki).authenticate(req)).user.groups == (ALL_AUTHENTICATED,)


def test_in_the_chain_a_disallowed_proxy_is_refused_not_anonymous(pki: PKI) -> None:
    req = AuthRequest(headers=headers(("X-Remote-User", "alice")), peer_certs=[pki.proxy("rogue-proxy")])
    with pytest.raises(AuthenticationError):
        run(chain(pki).authenticate(req))


# -- flags and header clearing --------------------------------------------------------------

def test_validate_rejects_blank_values_and_warns_without_standard_names() -> None:
    errs, warnings = validate(RequestHeaderConfig((" ",), group_headers=("X-Remote-Group", "")))
    assert errs == ['empty value in "requestheader-username-headers"', 'empty value in "requestheader-group-headers"']
    _, warnings = validate(RequestHeaderConfig(("X-Forwarded-User",), extra_prefixes=("X-Extra-",)))
    assert warnings == [
        "--requestheader-username-headers is set without specifying the standard X-Remote-User header - "
        "API aggregation will not work",
        "--requestheader-extra-headers-prefix is set without specifying the standard X-Remote-Extra- header "
        "prefix - API aggregation will not work"]
    assert validate(KUBEADM) == ([], [])


def test_cleared_headers_cover_standard_and_configured_names() -> None:
    names = cleared_headers(RequestHeaderConfig(("X-Forwarded-User",), extra_prefixes=("X-Extra-",)))
    for h in ("x-remote-user", "X-Remote-Uid", "X-REMOTE-GROUP", "X-Remote-Extra-Foo", "X-Forwarded-User",
              "x-extra-bar"):
        assert names.matches(h), h
    assert not names.matches("X-Remote-Userx") and not names.matches("Authorization")
    assert cleared_headers(None) == cleared_headers(STANDARD)


def test_without_drops_only_matching_headers_and_none_when_clean() -> None:
    names = HeaderNames.of(("X-Remote-User",), ("X-Remote-Extra-",))
    assert names.without(headers(("Accept", "application/json"))) is None
    out = names.without(headers(("Accept", "a"), ("X-Remote-User", "u"), ("x-remote-extra-k", "v"), ("Accept", "b")))
    assert out == [("Accept", "a"), ("Accept", "b")]
