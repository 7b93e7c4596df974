"""Certificate expiry tables, renewal, rotation decisions and revocation (pure code over a temp PKI)."""
from __future__ import annotations

import asyncio
import base64
import datetime
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from kubegate.authn import AuthenticationError, AuthRequest
from kubegate.authn.x509 import X509Authenticator
from kubegate.pki import certs, renewal, revocation
from kubegate.pki.layout import PKIPaths, init_pki
from kubegate.server.health import HealthEndpoint

NOW = datetime.datetime(2026, 1, 2, 15, 4, tzinfo=datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKIPaths:
    d = tmp_path_factory.mktemp("pki") / "data"
    init_pki(d, node_name="node1")
    return PKIPaths(d)


def _copy(pki: PKIPaths, tmp_path: Path) -> PKIPaths:
    import shutil
    shutil.copytree(pki.data_dir, tmp_path / "data")
    return PKIPaths(tmp_path / "data")


def test_short_human_duration() -> None:
    cases = [(-5, "<invalid>"), (-1, "0s"), (0, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h"),
             (86399, "23h"), (86400, "1d"), (364 * 86400 + 86399, "364d"), (365 * 86400, "1y"),
             (3650 * 86400, "10y")]
    assert [renewal.short_human_duration(datetime.timedelta(seconds=s)) for s, _ in cases] == [w for _, w in cases]


def test_tabwrite_is_gos_tabwriter() -> None:
    # tabwriter(minwidth 10, padding 3): the widest cell + 3, at least 10; the last cell as is.
    out = renewal.tabwrite(["A\tBBBBBBBBBBBB\tlast  ", "CCC\t\tx", "", "H\tI"])
    assert out == ("A         BBBBBBBBBBBB   last  \n"
                   "CCC                      x\n"
                   "\n"
                   "H         I\n")


def test_check_expiration_tables(pki: PKIPaths) -> None:
    apiserver = certs.load_cert(pki.cert("apiserver"))
    now = apiserver.not_valid_after_utc - datetime.timedelta(days=100, hours=1)
    out = renewal.check_expiration(pki, now)
    lines = out.splitlines()
    assert lines[0] == ("CERTIFICATE                EXPIRES                  RESIDUAL TIME   "
                        "CERTIFICATE AUTHORITY   EXTERNALLY MANAGED")
    names = [line.split()[0] for line in lines[1:12]]
    assert names == sorted(r.name for r in renewal.CERTIFICATES)
    expires = apiserver.not_valid_after_utc.strftime("%b %d, %Y %H:%M UTC")
    assert f"apiserver                  {expires}   100d            ca                      no      " in lines
    assert lines[12] == ""
    assert lines[13] == "CERTIFICATE AUTHORITY   EXPIRES                  RESIDUAL TIME   EXTERNALLY MANAGED"
    assert [line.split()[0] for line in lines[14:]] == ["ca", "etcd-ca", "front-proxy-ca"]
    assert "etcd-peer" in out and "front-proxy-ca   " not in lines[14]


def test_check_expiration_missing_and_external(pki: PKIPaths, tmp_path: Path) -> None:
    p = _copy(pki, tmp_path)
    p.kubeconfig("scheduler.conf").unlink()
    p.key("front-proxy-ca").unlink()
    lines = renewal.check_expiration(p, NOW).splitlines()
    assert "!MISSING! scheduler.conf" in [line.rstrip() for line in lines]
    fp = next(line for line in lines if line.startswith("front-proxy-client"))
    assert fp.split()[-1] == "yes"
    fpca = next(line for line in lines if line.startswith("front-proxy-ca "))
    assert fpca.split()[-1] == "yes"
    # Renewal refuses a leaf of an external CA (kubeadm's "Detected external" case).
    before = p.cert("front-proxy-client").read_bytes()
    assert renewal.renew(p, "front-proxy-client") is False
    assert p.cert("front-proxy-client").read_bytes() == before


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sorted(san.get_values_for_type(x509.DNSName)), sorted(str(i) for i in san.get_values_for_type(x509.IPAddress))


def test_renew_keeps_subject_sans_usages_and_changes_key(pki: PKIPaths, tmp_path: Path) -> None:
    p = _copy(pki, tmp_path)
    for name in ("apiserver", "etcd/server"):
        old = certs.load_cert(p.cert(name))
        old_key = p.key(name).read_bytes()
        assert renewal.renew(p, name.replace("/", "-"), now=renewal.utcnow() + 30 * DAY)
        new, key = certs.load_pair(p.cert(name), p.key(name))
        assert new.subject == old.subject and _sans(new) == _sans(old)
        eku = new.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == list(old.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        assert new.serial_number != old.serial_number and p.key(name).read_bytes() != old_key
        assert new.not_valid_after_utc > old.not_valid_after_utc
        ca = "etcd/ca" if name.startswith("etcd") else "ca"
        assert certs.is_signed_by(new, certs.load_cert(p.cert(ca)))
    assert ExtendedKeyUsageOID.CLIENT_AUTH in new.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value


def test_renew_kubeconfig_replaces_only_credentials(pki: PKIPaths, tmp_path: Path) -> None:
    p = _copy(pki, tmp_path)
    path = p.kubeconfig("admin.conf")
    before = yaml.safe_load(path.read_text())
    assert renewal.renew(p, "admin.conf")
    after = yaml.safe_load(path.read_text())
    assert after["clusters"] == before["clusters"] and after["contexts"] == before["contexts"]
    user = after["users"][0]["user"]
    assert user["client-certificate-data"] != before["users"][0]["user"]["client-certificate-data"]
    cert = certs.parse_cert_pem(base64.b64decode(user["client-certificate-data"]))
    key = certs.parse_key_pem(base64.b64decode(user["client-key-data"]))
    assert certs.key_matches(cert, key)
    assert cert.subject.rfc4514_string() == "CN=kubernetes-admin,O=kubeadm:cluster-admins"
    assert path.stat().st_mode & 0o777 == 0o600


def test_renew_unknown_name(pki: PKIPaths) -> None:
    with pytest.raises(certs.PKIError, match="ca is not a valid certificate for this cluster"):
        renewal.renew(pki, "ca")


def _leaf(not_before: datetime.datetime, not_after: datetime.datetime) -> x509.Certificate:
    key = certs.new_key("ecdsa")
    ca = certs.self_signed_ca("test-ca", key, now=not_before + certs.CERTIFICATE_BACKDATE)
    return certs.issue(ca, key, cn="x", client=True, key=key, days=(not_after - not_before).days,
                       now=not_before)


def test_renewal_due_after_two_thirds_of_life() -> None:
    start = NOW - 30 * DAY
    cert = _leaf(start, start + 30 * DAY)  # NotBefore is the CA's, 5 minutes earlier
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert not renewal.renewal_due(cert, cert.not_valid_before_utc + life * 0.6)
    assert renewal.renewal_due(cert, cert.not_valid_before_utc + life * 0.7)
    # A one-year leaf of a ten-year-old CA counts a year of life, not eleven.
    old_ca_leaf = _leaf(NOW - 3650 * DAY, NOW + 300 * DAY)
    assert not renewal.renewal_due(old_ca_leaf, NOW)
    assert renewal.renewal_due(old_ca_leaf, NOW + 250 * DAY)


def test_expiry_warnings(pki: PKIPaths) -> None:
    apiserver = certs.load_cert(pki.cert("apiserver"))
    assert renewal.expiry_warnings(pki, apiserver.not_valid_after_utc - 31 * DAY) == []
    soon = renewal.expiry_warnings(pki, apiserver.not_valid_after_utc - 12 * DAY)
    expires = apiserver.not_valid_after_utc.strftime("%b %d, %Y %H:%M UTC")
    assert f"certificate apiserver expires on {expires} (in 12d)" in soon
    assert not any("certificate ca " in w for w in soon)
    late = renewal.expiry_warnings(pki, apiserver.not_valid_after_utc + DAY)
    assert f"certificate apiserver expired on {expires}" in late


def test_readyz_verbose_shows_warnings_without_failing() -> None:
    ep = HealthEndpoint("readyz", [("ping", lambda: None)], warnings=lambda: ["certificate apiserver expires soon"])
    assert ep.render("", {"verbose": ""}, []) == (
        200, "[+]ping ok\n[!]certificate apiserver expires soon\nreadyz check passed\n")
    assert ep.render("", {}, []) == (200, "ok")


# --- revocation -------------------------------------------------------------------------------


def test_parse_serial() -> None:
    assert revocation.parse_serial("serial=0A1B") == 0xA1B
    assert revocation.parse_serial("0a:1b") == 0xA1B
    assert revocation.parse_serial("0x0A1B") == 0xA1B
    for bad in ("", "xyz", "0", "12 34"):
        with pytest.raises(certs.PKIError, match="invalid serial"):
            revocation.parse_serial(bad)


def _cm(data: dict[str, str]) -> dict[str, object]:
    return {"metadata": {"namespace": revocation.NAMESPACE, "name": revocation.CONFIGMAP}, "data": data}


def test_revocation_set_follows_the_configmap() -> None:
    s = revocation.RevocationSet()
    s.handle("ADDED", _cm({"a1b": "2026-01-02T15:04:00Z", "not-hex": "2026-01-02T15:04:00Z"}), None)
    assert 0xA1B in s and 0xA1C not in s
    other = _cm({"a1c": "2026-01-02T15:04:00Z"})
    other["metadata"] = {"namespace": "default", "name": revocation.CONFIGMAP}
    s.handle("ADDED", other, None)
    assert 0xA1C not in s
    s.handle("DELETED", None, _cm({"a1b": "2026-01-02T15:04:00Z"}))
    assert 0xA1B not in s


def test_crl_is_signed_by_the_ca_and_lists_serials() -> None:
    key = certs.new_key("ecdsa")
    ca = certs.self_signed_ca("kubernetes", key)
    crl = revocation.build_crl(ca, key, {0xA1B: NOW}, NOW)
    assert crl.is_signature_valid(ca.public_key())
    assert crl.issuer == ca.subject
    entry = crl.get_revoked_certificate_by_serial_number(0xA1B)
    assert entry is not None and entry.revocation_date_utc == NOW
    assert crl.next_update_utc == NOW + revocation.CRL_VALIDITY
    other = certs.new_key("ecdsa")
    assert not crl.is_signature_valid(other.public_key())


def test_x509_rejects_revoked_serial_even_when_cached() -> None:
    from cryptography.hazmat.primitives.serialization import Encoding
    key = certs.new_key("ecdsa")
    ca = certs.self_signed_ca("kubernetes", key)
    leaf = certs.issue(ca, key, cn="alice", client=True, key=certs.new_key("ecdsa"))
    revoked = revocation.RevocationSet()
    authn = X509Authenticator(certs.cert_pem(ca), revoked=revoked)
    req = AuthRequest(headers={}, peer_certs=[leaf.public_bytes(Encoding.DER)], path="/api")
    res = asyncio.run(authn.authenticate(req))
    assert res is not None and res.user.name == "alice"
    revoked.handle("ADDED", _cm({revocation.serial_key(leaf.serial_number): "2026-01-02T15:04:00Z"}), None)
    with pytest.raises(AuthenticationError, match="revoked"):
        asyncio.run(authn.authenticate(req))
