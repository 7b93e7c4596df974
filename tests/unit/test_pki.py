"""kubegate init: kubeadm's PKI layout, kubeconfigs, reuse and refusal of inconsistent files."""

from __future__ import annotations

import base64
import datetime
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubegate.pki import PKIError, init_pki, load_kubeconfig, set_kubeconfig_server
from kubegate.pki.certs import (
    cert_pem,
    issue,
    key_matches,
    load_cert,
    load_key,
    load_pair,
    new_key,
    parse_key_pem,
    parse_public_key_pem,
    public_keys_equal,
    self_signed_ca,
    write_cert,
    write_key,
)
from kubegate.pki.kubeconfig import embedded_pem
from kubegate.pki.layout import InitResult, apiserver_url

NODE = "node-1"
ADVERTISE = "192.168.1.10"
EXTRA = ("api.example.com", "10.0.0.5", "*.apps.example.com")

CERT_NAMES = [
    "ca",
    "apiserver",
    "apiserver-kubelet-client",
    "front-proxy-ca",
    "front-proxy-client",
    "etcd/ca",
    "etcd/server",
    "etcd/peer",
    "etcd/healthcheck-client",
    "apiserver-etcd-client",
]
KUBECONFIGS = ["admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf"]


def _init(data_dir: Path, **kwargs: Any) -> InitResult:
    kwargs.setdefault("node_name", NODE)
    kwargs.setdefault("advertise_address", ADVERTISE)
    kwargs.setdefault("extra_sans", EXTRA)
    return init_pki(data_dir, **kwargs)


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, InitResult]:
    data_dir = tmp_path_factory.mktemp("layout") / "data"
    return data_dir, _init(data_dir)


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    _init(data_dir)
    return data_dir


def _cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def _orgs(cert: x509.Certificate) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def _ext(cert: x509.Certificate, cls: type[Any]) -> x509.Extension[Any]:
    return cert.extensions.get_extension_for_class(cls)


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        san = _ext(cert, x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return san.get_values_for_type(x509.DNSName), [str(i) for i in san.get_values_for_type(x509.IPAddress)]


def _kubeconfig_client(data_dir: Path, file: str) -> tuple[x509.Certificate, bytes, bytes]:
    config = load_kubeconfig(data_dir / file)
    cert_pem = embedded_pem(config, "client-certificate-data")
    key_pem = embedded_pem(config, "client-key-data")
    assert cert_pem is not None and key_pem is not None
    return x509.load_pem_x509_certificate(cert_pem), cert_pem, key_pem


# --- layout contents --------------------------------------------------------------------------


def test_every_file_is_created_with_kubeadm_modes(layout: tuple[Path, InitResult]) -> None:
    data_dir, result = layout
    pki = data_dir / "pki"
    for name in CERT_NAMES:
        assert (pki / f"{name}.crt").stat().st_mode & 0o777 == 0o644
        assert (pki / f"{name}.key").stat().st_mode & 0o777 == 0o600
    for name in ("sa.key", "sa.pub"):
        assert (pki / name).stat().st_mode & 0o777 == 0o600
    for name in KUBECONFIGS:
        assert (data_dir / name).stat().st_mode & 0o777 == 0o600
    assert data_dir.stat().st_mode & 0o777 == 0o700
    assert result.reused == []
    assert len(result.created) == 2 * len(CERT_NAMES) + 2 + len(KUBECONFIGS)
    assert result.server == "https://192.168.1.10:6443"
    assert result.warnings == []
    # No temp files from the atomic writes are left behind.
    assert not [p for p in data_dir.rglob(".*")]


@pytest.mark.parametrize(
    ("name", "cn"), [("ca", "kubernetes"), ("front-proxy-ca", "front-proxy-ca"), ("etcd/ca", "etcd-ca")]
)
def test_ca_certificates(layout: tuple[Path, InitResult], name: str, cn: str) -> None:
    data_dir, _ = layout
    cert, key = load_pair(data_dir / "pki" / f"{name}.crt", data_dir / "pki" / f"{name}.key")
    assert cert.subject == cert.issuer
    assert cert.subject.rfc4514_string() == f"CN={cn}"
    cert.verify_directly_issued_by(cert)
    bc = _ext(cert, x509.BasicConstraints)
    assert bc.critical and bc.value.ca is True
    ku = _ext(cert, x509.KeyUsage)
    assert ku.critical
    assert (ku.value.digital_signature, ku.value.key_encipherment, ku.value.key_cert_sign) == (True, True, True)
    assert _sans(cert) == ([cn], [])
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    now = datetime.datetime.now(datetime.timezone.utc)
    backdate = now - cert.not_valid_before_utc
    assert datetime.timedelta(minutes=4) < backdate < datetime.timedelta(minutes=6)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == datetime.timedelta(days=3650, minutes=5)


LEAVES = [
    # name, ca, cn, orgs, ekus, dns, ips
    (
        "apiserver",
        "ca",
        "kube-apiserver",
        [],
        [ExtendedKeyUsageOID.SERVER_AUTH],
        [
            "*.apps.example.com",
            "api.example.com",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "localhost",
            "node-1",
        ],
        ["10.96.0.1", "127.0.0.1", "192.168.1.10", "10.0.0.5"],
    ),
    ("apiserver-kubelet-client", "ca", "kube-apiserver-kubelet-client", [], [ExtendedKeyUsageOID.CLIENT_AUTH], [], []),
    ("front-proxy-client", "front-proxy-ca", "front-proxy-client", [], [ExtendedKeyUsageOID.CLIENT_AUTH], [], []),
    (
        "etcd/server",
        "etcd/ca",
        "node-1",
        [],
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        ["localhost", "node-1"],
        ["192.168.1.10", "127.0.0.1", "::1"],
    ),
    (
        "etcd/peer",
        "etcd/ca",
        "node-1",
        [],
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        ["localhost", "node-1"],
        ["192.168.1.10", "127.0.0.1", "::1"],
    ),
    ("etcd/healthcheck-client", "etcd/ca", "kube-etcd-healthcheck-client", [], [ExtendedKeyUsageOID.CLIENT_AUTH], [], []),
    ("apiserver-etcd-client", "etcd/ca", "kube-apiserver-etcd-client", [], [ExtendedKeyUsageOID.CLIENT_AUTH], [], []),
]


@pytest.mark.parametrize(("name", "ca", "cn", "orgs", "ekus", "dns", "ips"), LEAVES, ids=[leaf[0] for leaf in LEAVES])
def test_leaf_certificates(
    layout: tuple[Path, InitResult],
    name: str,
    ca: str,
    cn: str,
    orgs: list[str],
    ekus: list[x509.ObjectIdentifier],
    dns: list[str],
    ips: list[str],
) -> None:
    data_dir, _ = layout
    pki = data_dir / "pki"
    cert, _key = load_pair(pki / f"{name}.crt", pki / f"{name}.key")
    ca_cert = load_cert(pki / f"{ca}.crt")
    cert.verify_directly_issued_by(ca_cert)
    assert _cn(cert) == cn and _orgs(cert) == orgs
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == ekus
    assert _sans(cert) == (dns, ips)
    bc = _ext(cert, x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False
    ku = _ext(cert, x509.KeyUsage).value
    assert (ku.digital_signature, ku.key_encipherment, ku.key_cert_sign) == (True, True, False)
    aki = _ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == _ext(ca_cert, x509.SubjectKeyIdentifier).value.digest
    # kubeadm: NotBefore is the CA's NotBefore, NotAfter one year from now.
    assert cert.not_valid_before_utc == ca_cert.not_valid_before_utc
    remaining = cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(days=364, hours=23) < remaining <= datetime.timedelta(days=365)


@pytest.mark.parametrize(
    ("file", "user", "orgs"),
    [
        ("admin.conf", "kubernetes-admin", ["kubeadm:cluster-admins"]),
        ("super-admin.conf", "kubernetes-super-admin", ["system:masters"]),
        ("controller-manager.conf", "system:kube-controller-manager", []),
        ("scheduler.conf", "system:kube-scheduler", []),
    ],
)
def test_kubeconfigs(layout: tuple[Path, InitResult], file: str, user: str, orgs: list[str]) -> None:
    data_dir, _ = layout
    ca_pem = (data_dir / "pki" / "ca.crt").read_bytes()
    config = load_kubeconfig(data_dir / file)
    cert, cert_pem, key_pem = _kubeconfig_client(data_dir, file)
    assert config == {
        "apiVersion": "v1",
        "clusters": [
            {
                "cluster": {
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                    "server": "https://192.168.1.10:6443",
                },
                "name": "kubernetes",
            }
        ],
        "contexts": [{"context": {"cluster": "kubernetes", "user": user}, "name": f"{user}@kubernetes"}],
        "current-context": f"{user}@kubernetes",
        "kind": "Config",
        "preferences": {},
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": base64.b64encode(cert_pem).decode(),
                    "client-key-data": base64.b64encode(key_pem).decode(),
                },
            }
        ],
    }
    assert _cn(cert) == user and _orgs(cert) == orgs
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
    key = parse_key_pem(key_pem)
    assert key_matches(cert, key)
    assert key_pem.startswith(b"-----BEGIN EC PRIVATE KEY-----\n")
    # clientcmd writes keys alphabetically and never wraps the base64 blobs.
    text = (data_dir / file).read_text()
    assert text.startswith("apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: ")
    assert len(text.splitlines()) == 19


def test_service_account_key_pair_is_rsa_2048(layout: tuple[Path, InitResult]) -> None:
    data_dir, _ = layout
    key = load_key(data_dir / "pki" / "sa.key")
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert (data_dir / "pki" / "sa.key").read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    pub = (data_dir / "pki" / "sa.pub").read_bytes()
    assert pub.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    assert public_keys_equal(parse_public_key_pem(pub), key.public_key())


# --- interoperability -------------------------------------------------------------------------


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)


def test_openssl_verifies_serving_and_client_certificates(layout: tuple[Path, InitResult], tmp_path: Path) -> None:
    data_dir, _ = layout
    pki = data_dir / "pki"
    ok = _openssl("verify", "-CAfile", str(pki / "ca.crt"), "-purpose", "sslserver", str(pki / "apiserver.crt"))
    assert ok.returncode == 0 and ok.stdout.strip() == f"{pki / 'apiserver.crt'}: OK"
    _, admin_pem, _ = _kubeconfig_client(data_dir, "admin.conf")
    admin = tmp_path / "admin.crt"
    admin.write_bytes(admin_pem)
    ok = _openssl("verify", "-CAfile", str(pki / "ca.crt"), "-purpose", "sslclient", str(admin))
    assert ok.returncode == 0 and ok.stdout.strip() == f"{admin}: OK"
    ok = _openssl("verify", "-CAfile", str(pki / "etcd/ca.crt"), "-purpose", "sslserver", str(pki / "etcd/server.crt"))
    assert ok.returncode == 0
    # A certificate from another CA is rejected: the check above can fail.
    bad = _openssl("verify", "-CAfile", str(pki / "front-proxy-ca.crt"), str(pki / "apiserver.crt"))
    assert bad.returncode != 0
    subject = _openssl("x509", "-in", str(admin), "-noout", "-subject", "-nameopt", "RFC2253")
    assert subject.stdout.strip() == "subject=CN=kubernetes-admin,O=kubeadm:cluster-admins"


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> ssl.SSLObject:
    """Run a TLS handshake over memory BIOs; return the server side."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(10):
        for side, obj in (("c", c), ("s", s)):
            if not done[side]:
                try:
                    obj.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return s
    raise AssertionError("handshake did not finish")


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1", "kubernetes.default.svc", "192.168.1.10", "x.apps.example.com"])
def test_python_ssl_mutual_tls(layout: tuple[Path, InitResult], tmp_path: Path, hostname: str) -> None:
    data_dir, _ = layout
    pki = data_dir / "pki"
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pki / "apiserver.crt", pki / "apiserver.key")
    server.load_verify_locations(cafile=pki / "ca.crt")
    server.verify_mode = ssl.CERT_OPTIONAL
    _, cert_pem, key_pem = _kubeconfig_client(data_dir, "admin.conf")
    (tmp_path / "c.crt").write_bytes(cert_pem)
    (tmp_path / "c.key").write_bytes(key_pem)
    client = ssl.create_default_context(cafile=pki / "ca.crt")
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    client.load_cert_chain(tmp_path / "c.crt", tmp_path / "c.key")
    peer = _handshake(server, client, hostname).getpeercert()
    assert peer is not None
    assert peer["subject"] == ((("organizationName", "kubeadm:cluster-admins"),), (("commonName", "kubernetes-admin"),))


def test_python_ssl_rejects_unlisted_hostname(layout: tuple[Path, InitResult]) -> None:
    data_dir, _ = layout
    pki = data_dir / "pki"
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pki / "apiserver.crt", pki / "apiserver.key")
    client = ssl.create_default_context(cafile=pki / "ca.crt")
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _handshake(server, client, "evil.example.com")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kubectl_reads_admin_conf(layout: tuple[Path, InitResult]) -> None:
    data_dir, _ = layout
    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(data_dir / "admin.conf"), "config", "view", "--minify", "-o",
         "jsonpath={.current-context} {.clusters[0].cluster.server} {.users[0].name}"],
        capture_output=True, text=True, check=True,
    )
    assert out.stdout == "kubernetes-admin@kubernetes https://192.168.1.10:6443 kubernetes-admin"


def test_kubernetes_python_client_loads_admin_conf(layout: tuple[Path, InitResult]) -> None:
    from kubernetes import client, config

    data_dir, _ = layout
    configuration = client.Configuration()
    config.load_kube_config(str(data_dir / "admin.conf"), client_configuration=configuration)
    assert configuration.host == "https://192.168.1.10:6443"
    assert Path(configuration.ssl_ca_cert).read_bytes() == (data_dir / "pki" / "ca.crt").read_bytes()
    assert x509.load_pem_x509_certificate(Path(configuration.cert_file).read_bytes()).subject.rfc4514_string() == (
        "CN=kubernetes-admin,O=kubeadm:cluster-admins"
    )


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_cacert_and_client_cert(layout: tuple[Path, InitResult], tmp_path: Path) -> None:
    data_dir, _ = layout
    pki = data_dir / "pki"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / "apiserver.crt", pki / "apiserver.key")
    ctx.load_verify_locations(cafile=pki / "ca.crt")
    ctx.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: list[Any] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with ctx.wrap_socket(conn, server_side=True) as tls:
            seen.append(tls.getpeercert())
            tls.recv(4096)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    _, cert_pem, key_pem = _kubeconfig_client(data_dir, "admin.conf")
    (tmp_path / "c.crt").write_bytes(cert_pem)
    (tmp_path / "c.key").write_bytes(key_pem)
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "5", "--cacert", str(pki / "ca.crt"), "--cert", str(tmp_path / "c.crt"),
         "--key", str(tmp_path / "c.key"), f"https://localhost:{port}/"],
        capture_output=True, text=True, check=False,
    )
    thread.join(5)
    listener.close()
    assert (out.returncode, out.stdout) == (0, "ok"), out.stderr
    assert seen[0]["subject"][1] == (("commonName", "kubernetes-admin"),)


# --- reuse and refusal ------------------------------------------------------------------------


def _snapshot(data_dir: Path) -> dict[Path, tuple[int, bytes]]:
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in data_dir.rglob("*") if p.is_file()}


def test_second_run_reuses_everything_untouched(fresh: Path) -> None:
    before = _snapshot(fresh)
    result = _init(fresh)
    assert result.created == []
    assert sorted(result.reused) == sorted(before)
    assert _snapshot(fresh) == before
    assert result.messages[0] == "[certs] Using existing ca certificate authority"
    assert "[certs] Using existing apiserver certificate and key on disk" in result.messages
    assert '[certs] Using the existing "sa" key' in result.messages
    assert f'[kubeconfig] Using existing kubeconfig file: "{fresh / "admin.conf"}"' in result.messages


def test_missing_leaf_is_issued_from_existing_ca(fresh: Path) -> None:
    pki = fresh / "pki"
    ca_before = (pki / "ca.crt").read_bytes()
    (pki / "apiserver.crt").unlink()
    (pki / "apiserver.key").unlink()
    (fresh / "scheduler.conf").unlink()
    (pki / "sa.pub").unlink()
    result = _init(fresh)
    assert result.created == [pki / "apiserver.crt", pki / "apiserver.key", pki / "sa.pub", fresh / "scheduler.conf"]
    assert (pki / "ca.crt").read_bytes() == ca_before
    load_cert(pki / "apiserver.crt").verify_directly_issued_by(load_cert(pki / "ca.crt"))
    assert '[certs] Generating "apiserver" certificate and key' in result.messages


def test_key_not_matching_certificate_is_refused(fresh: Path) -> None:
    pki = fresh / "pki"
    shutil.copy(pki / "front-proxy-client.key", pki / "apiserver.key")
    with pytest.raises(PKIError) as err:
        _init(fresh)
    assert str(err.value) == (
        f"the private key {pki / 'apiserver.key'} does not match the public key in the certificate "
        f"{pki / 'apiserver.crt'}"
    )


def test_leaf_from_another_ca_is_refused(fresh: Path) -> None:
    pki = fresh / "pki"
    other_key = new_key("ecdsa")
    other_ca = self_signed_ca("kubernetes", other_key)
    leaf_key = new_key("ecdsa")
    leaf = issue(other_ca, other_key, cn="front-proxy-client", client=True, key=leaf_key)
    write_cert(pki / "front-proxy-client.crt", leaf, overwrite=True)
    write_key(pki / "front-proxy-client.key", leaf_key, overwrite=True)
    with pytest.raises(PKIError) as err:
        _init(fresh)
    assert str(err.value) == (
        f"the certificate {pki / 'front-proxy-client.crt'} is not signed by the CA {pki / 'front-proxy-ca.crt'}"
    )


def test_half_a_pair_is_refused(fresh: Path) -> None:
    pki = fresh / "pki"
    (pki / "ca.key").unlink()
    with pytest.raises(PKIError, match=f"found {pki / 'ca.crt'} but not {pki / 'ca.key'}"):
        _init(fresh)


def test_new_extra_san_on_existing_apiserver_cert_is_refused(fresh: Path) -> None:
    pki = fresh / "pki"
    with pytest.raises(PKIError) as err:
        _init(fresh, extra_sans=(*EXTRA, "new.example.com", "10.0.0.6"))
    assert str(err.value).startswith(
        f"the certificate {pki / 'apiserver.crt'} is not valid for new.example.com, 10.0.0.6; remove"
    )


def test_kubeconfig_with_another_ca_is_refused(fresh: Path) -> None:
    path = fresh / "admin.conf"
    config = yaml.safe_load(path.read_text())
    other = self_signed_ca("kubernetes", new_key("ecdsa"))
    config["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(cert_pem(other)).decode()
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(PKIError) as err:
        _init(fresh)
    assert str(err.value) == f'a kubeconfig file "{path}" exists already but has got the wrong CA cert'


def test_kubeconfig_server_on_another_port_warns_then_set_server_fixes_it(fresh: Path) -> None:
    result = _init(fresh, secure_port=16443)
    path = fresh / "admin.conf"
    assert result.warnings[0] == (
        f'a kubeconfig file "{path}" exists already but has an unexpected API Server URL: '
        "expected: https://192.168.1.10:16443, got: https://192.168.1.10:6443"
    )
    before = load_kubeconfig(path)
    assert set_kubeconfig_server(path, "https://192.168.1.10:16443") is True
    after = load_kubeconfig(path)
    assert after["clusters"][0]["cluster"]["server"] == "https://192.168.1.10:16443"
    after["clusters"][0]["cluster"]["server"] = before["clusters"][0]["cluster"]["server"]
    assert after == before
    assert path.stat().st_mode & 0o777 == 0o600
    mtime = path.stat().st_mtime_ns
    assert set_kubeconfig_server(path, "https://192.168.1.10:16443") is False
    assert path.stat().st_mtime_ns == mtime
    for name in KUBECONFIGS[1:]:
        assert set_kubeconfig_server(fresh / name, "https://192.168.1.10:16443") is True
    assert _init(fresh, secure_port=16443).warnings == []


# --- options ----------------------------------------------------------------------------------


def test_rsa_key_type(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _init(data_dir, key_type="rsa")
    pki = data_dir / "pki"
    for name in ("ca", "apiserver", "etcd/server"):
        key = load_key(pki / f"{name}.key")
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
        assert (pki / f"{name}.key").read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    _, _, key_pem = _kubeconfig_client(data_dir, "admin.conf")
    assert key_pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    ok = _openssl("verify", "-CAfile", str(pki / "ca.crt"), str(pki / "apiserver.crt"))
    assert ok.returncode == 0


def test_defaults_without_advertise_address(tmp_path: Path) -> None:
    result = init_pki(tmp_path / "d", node_name="Host-A")
    assert result.server == "https://127.0.0.1:6443"
    cert = load_cert(tmp_path / "d" / "pki" / "apiserver.crt")
    assert _sans(cert)[1] == ["10.96.0.1", "127.0.0.1"]
    etcd = load_cert(tmp_path / "d" / "pki" / "etcd" / "server.crt")
    assert _sans(etcd) == (["Host-A", "localhost"], ["127.0.0.1", "::1"])
    assert load_kubeconfig(tmp_path / "d" / "admin.conf")["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"


def test_invalid_extra_san_is_dropped_with_kubeadm_warning(tmp_path: Path) -> None:
    result = init_pki(tmp_path / "d", node_name=NODE, extra_sans=["bad_name", "Upper.example.com"])
    assert result.warnings == [
        "[certificates] WARNING: 'bad_name' was not added to the 'apiserver' SAN, because it is not a valid IP "
        "or RFC-1123 compliant DNS entry",
        "[certificates] WARNING: 'Upper.example.com' was not added to the 'apiserver' SAN, because it is not a "
        "valid IP or RFC-1123 compliant DNS entry",
    ]


def test_invalid_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PKIError, match="unsupported key type 'dsa'"):
        init_pki(tmp_path / "d", key_type="dsa")
    with pytest.raises(PKIError) as err:
        init_pki(tmp_path / "d", advertise_address="my-host")
    assert str(err.value) == (
        "error parsing LocalAPIEndpoint AdvertiseAddress my-host: is not a valid textual representation of an IP address"
    )
    assert not (tmp_path / "d").exists()


def test_apiserver_url_brackets_ipv6() -> None:
    assert apiserver_url("fd00::10", 6443) == "https://[fd00::10]:6443"
    assert apiserver_url(None, 16443) == "https://127.0.0.1:16443"


# --- certs helpers ----------------------------------------------------------------------------


def test_write_key_never_overwrites_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    first, second = new_key("ecdsa"), new_key("ecdsa")
    write_key(path, first)
    with pytest.raises(FileExistsError):
        write_key(path, second)
    assert load_key(path).private_numbers() == first.private_numbers()  # type: ignore[union-attr]
    write_key(path, second, overwrite=True)
    assert load_key(path).private_numbers() == second.private_numbers()  # type: ignore[union-attr]
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.key"]


def test_load_pair_and_bad_pem(tmp_path: Path) -> None:
    key = new_key("ecdsa")
    ca = self_signed_ca("x", key)
    (tmp_path / "x.crt").write_bytes(b"not a certificate")
    with pytest.raises(PKIError, match="does not contain a valid PEM certificate"):
        load_cert(tmp_path / "x.crt")
    with pytest.raises(PKIError, match="couldn't load the private key file"):
        load_key(tmp_path / "missing.key")
    with pytest.raises(PKIError, match="must have at least one ExtKeyUsage"):
        issue(ca, key, cn="y", key=new_key("ecdsa"))
