"""Static tokens, basic auth, bootstrap tokens and the token cleaner, the WebSocket protocol token,
bad Authorization headers, and x509 against a bundle of several CAs: a real server, curl and kubectl."""
from __future__ import annotations

import base64
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubegate.pki import certs
from kubegate.pki.layout import init_pki
from tests.e2e.cluster import Cluster, Result, golden

TOKENS = ("admin-static-token,token-admin,1001,system:masters\n"
          "alice-static-token,alice,1002,developers\n"
          "bob-static-token,bob,1003\n")
PASSWORDS = 's3cret-pass,carol,2001,"ops,qa"\n'
SSR_BODY = '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}'
UNAUTHORIZED = golden("errors/401-bad-bearer-token.json")["response"]["body"]
TOKEN_CACHE_TTL = 10.0  # upstream's TokenSuccessCacheTTL: a success is remembered this long


@pytest.fixture(scope="module")
def tc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    d = tmp_path_factory.mktemp("tokens")
    (d / "tokens.csv").write_text(TOKENS)
    (d / "passwords.csv").write_text(PASSWORDS)
    c = Cluster(d / "data", ["--token-auth-file", str(d / "tokens.csv"), "--basic-auth-file",
                             str(d / "passwords.csv"), "--enable-bootstrap-token-auth"]).start()
    yield c
    c.stop()


def whoami(c: Cluster, *args: str) -> Result:
    return c.curl("/apis/authentication.k8s.io/v1/selfsubjectreviews", "-X", "POST", "-H",
                  "Content-Type: application/json", "-d", SSR_BODY, *args, admin=False)


def whoami_table(out: str) -> dict[str, str]:
    """`kubectl auth whoami`'s two-column table as {attribute: value}."""
    return {k: v.strip() for k, _, v in (line.partition(" ") for line in out.splitlines() if line.strip())}


def user_info(r: Result) -> dict[str, Any]:
    assert r.code == 201, r
    return json.loads(r.stdout)["status"]["userInfo"]


def bearer(token: str) -> tuple[str, str]:
    return "-H", f"Authorization: Bearer {token}"


def denied_as(r: Result, user: str) -> bool:
    """A 403 naming `user` (the body after the headers when curl ran with -i)."""
    body = r.stdout.partition("\n\n")[2] if r.stdout.startswith("HTTP/") else r.stdout
    return r.code == 403 and f'User "{user}" cannot' in json.loads(body)["message"]


def assert_unauthorized(r: Result) -> None:
    assert r.code == 401, r
    assert json.loads(r.stdout) == UNAUTHORIZED


def token_kubeconfig(c: Cluster, name: str, user: dict[str, str]) -> str:
    path = c.data_dir.parent / f"{name}.kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": "kubegate", "cluster": {"server": c.url, "certificate-authority": c.ca}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": "kubegate", "user": name}}]}))
    return str(path)


# --- static tokens -------------------------------------------------------------------------------

@pytest.mark.parametrize("token,golden_file", [
    ("admin-static-token", "selfsubjectreview-admin-token.json"),
    ("alice-static-token", "selfsubjectreview-alice-token.json"),
    ("bob-static-token", "selfsubjectreview-bob-token.json"),
])
def test_static_token_identities_match_upstream(tc: Cluster, token: str, golden_file: str) -> None:
    expected = golden(f"authn/{golden_file}")["response"]["body"]["status"]["userInfo"]
    assert user_info(whoami(tc, *bearer(token))) == expected


def test_static_token_with_kubectl(tc: Cluster) -> None:
    kc = token_kubeconfig(tc, "alice-token", {"token": "alice-static-token"})
    assert whoami_table(tc.ok("auth", "whoami", kubeconfig=kc)) == {
        "ATTRIBUTE": "VALUE", "Username": "alice", "UID": "1002", "Groups": "[developers system:authenticated]"}
    out = tc.ok("auth", "whoami", "-o", "json", kubeconfig=kc)
    assert json.loads(out)["status"]["userInfo"]["username"] == "alice"
    assert "username: alice" in tc.ok("auth", "whoami", "-o", "yaml", kubeconfig=kc)
    # RBAC sees the token's identity: alice may not list namespaces, token-admin (system:masters) may
    r = tc.kubectl("get", "namespaces", kubeconfig=kc)
    assert r.code == 1 and 'User "alice" cannot list resource "namespaces"' in r.stderr
    admin = token_kubeconfig(tc, "admin-token", {"token": "admin-static-token"})
    assert "kube-system" in tc.ok("get", "namespaces", kubeconfig=admin)


def test_unknown_truncated_and_oversized_tokens_get_upstreams_401(tc: Cluster) -> None:
    g = golden("errors/401-bad-bearer-token.json")
    r = tc.curl(g["request"]["path"], "-i", *bearer("this-is-not-a-valid-token"), admin=False)
    head, _, body = r.stdout.partition("\n\n")
    assert r.code == g["response"]["status"] and json.loads(body) == g["response"]["body"]
    assert "Content-Type: application/json" in head and "Cache-Control: no-cache, private" in head
    assert "WWW-Authenticate" not in head
    g = golden("errors/401-bad-bearer-token-nonresource.json")
    r = tc.curl(g["request"]["path"], *bearer("this-is-not-a-valid-token"), admin=False)
    assert r.code == 401 and json.loads(r.stdout) == g["response"]["body"]
    for token in ("alice-static-toke", "alice-static-token.", "Alice-static-token", "x" * 60000):
        assert_unauthorized(tc.curl("/api/v1/namespaces", *bearer(token), admin=False))
    # a header beyond the server's header size limit is refused before authentication: never served,
    # never 500 (kube-apiserver's limit is 1 MiB for all headers, answered with 431)
    r = tc.curl("/version", *bearer("x" * 100_000), admin=False)
    assert 400 <= r.code < 500


def test_malformed_authorization_headers(tc: Cluster) -> None:
    # Not bearer credentials at all: the request is anonymous (200 for /version, 403 elsewhere)
    for header in ("Bearer", "Bearer ", "Token alice-static-token", "Bearer\talice-static-token", "bearer"):
        r = tc.curl("/version", "-H", f"Authorization: {header}", admin=False)
        assert r.code == 200, header
        r = tc.curl("/api/v1/namespaces", "-H", f"Authorization: {header}", admin=False)
        assert denied_as(r, "system:anonymous"), header
    # the scheme is case-insensitive
    assert user_info(whoami(tc, "-H", "Authorization: bEaReR alice-static-token"))["username"] == "alice"
    # an extra space makes the token ignored, with upstream's Warning on the response
    r = tc.curl("/api/v1/namespaces", "-i", "-H", "Authorization: Bearer  alice-static-token", admin=False)
    assert denied_as(r, "system:anonymous")
    assert ('Warning: 299 - "the provided Authorization header contains extra space before the bearer token, '
            'and is ignored"') in r.stdout
    # the Warning is not added otherwise
    r = tc.curl("/version", "-i", *bearer("alice-static-token"), admin=False)
    assert r.code == 200 and "Warning" not in r.stdout


def test_bad_credentials_never_fall_back_to_anonymous_with_anonymous_disabled(tmp_path: Path) -> None:
    (tmp_path / "tokens.csv").write_text(TOKENS)
    c = Cluster(tmp_path / "data", ["--anonymous-auth=false", "--token-auth-file", str(tmp_path / "tokens.csv")])
    c.start()
    try:
        assert_unauthorized(c.curl("/version", admin=False))
        assert_unauthorized(c.curl("/version", *bearer("nope"), admin=False))
        assert c.curl("/version", *bearer("bob-static-token"), admin=False).code == 200
    finally:
        c.stop()


# --- basic auth ----------------------------------------------------------------------------------

def test_basic_auth(tc: Cluster) -> None:
    assert user_info(whoami(tc, "-u", "carol:s3cret-pass")) == {
        "username": "carol", "uid": "2001", "groups": ["ops", "qa", "system:authenticated"]}
    kc = token_kubeconfig(tc, "carol-basic", {"username": "carol", "password": "s3cret-pass"})
    assert whoami_table(tc.ok("auth", "whoami", kubeconfig=kc))["Username"] == "carol"
    log = tc.log.read_text()
    assert "--basic-auth-file is enabled" in log and "s3cret-pass" not in log


@pytest.mark.parametrize("args", [
    ("-u", "carol:wrong"),
    ("-u", "carol:"),
    ("-u", "mallory:s3cret-pass"),
    ("-H", "Authorization: Basic !!!not-base64!!!"),
    ("-H", "Authorization: Basic " + base64.b64encode(b"carol-without-colon").decode()),
    ("-H", "Authorization: Basic Y2Fyb2w6czNjcmV0LXBhc3M"),  # valid except for the missing padding
])
def test_bad_basic_credentials_are_401(tc: Cluster, args: tuple[str, str]) -> None:
    assert_unauthorized(tc.curl("/version", *args, admin=False))
    assert_unauthorized(tc.curl("/api/v1/namespaces", *args, admin=False))


def test_basic_auth_is_off_without_the_flag(tmp_path: Path) -> None:
    # as upstream since 1.19, a server without --basic-auth-file treats Basic credentials as absent
    c = Cluster(tmp_path / "data").start()
    try:
        assert c.curl("/version", "-u", "carol:s3cret-pass", admin=False).code == 200
        r = c.curl("/api/v1/namespaces", "-u", "carol:s3cret-pass", admin=False)
        assert denied_as(r, "system:anonymous")
    finally:
        c.stop()


# --- bootstrap tokens ----------------------------------------------------------------------------

def _rfc3339(seconds_from_now: float) -> str:
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds_from_now)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def create_bootstrap_secret(c: Cluster, token_id: str, secret: str, namespace: str = "kube-system",
                            **data: str) -> None:
    string_data = {"token-id": token_id, "token-secret": secret, "usage-bootstrap-authentication": "true",
                   "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token", **data}
    manifest = {"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
                "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": namespace},
                "stringData": {k: v for k, v in string_data.items() if v}}
    c.ok("apply", "-f", "-", input=json.dumps(manifest))


def wait_until_gone(c: Cluster, token_id: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.kubectl("-n", "kube-system", "get", "secret", f"bootstrap-token-{token_id}").code != 0:
            return
        time.sleep(0.25)
    raise AssertionError(f"the token cleaner did not delete bootstrap-token-{token_id}")


def test_bootstrap_token_lifecycle(tc: Cluster) -> None:
    """create -> works -> expires -> the cleaner deletes it -> 401 once the 10 s success cache lapses."""
    create_bootstrap_secret(tc, "abcdef", "0123456789abcdef", expiration=_rfc3339(4))
    token = "abcdef.0123456789abcdef"
    used_at = time.monotonic()
    assert user_info(whoami(tc, *bearer(token))) == {
        "username": "system:bootstrap:abcdef",
        "groups": ["system:bootstrappers", "system:bootstrappers:kubeadm:default-node-token", "system:authenticated"]}
    kc = token_kubeconfig(tc, "bootstrap", {"token": token})
    assert "system:bootstrap:abcdef" in tc.ok("auth", "whoami", "-o", "yaml", kubeconfig=kc)
    wait_until_gone(tc, "abcdef")
    time.sleep(max(0.0, used_at + TOKEN_CACHE_TTL + 0.5 - time.monotonic()))
    assert_unauthorized(whoami(tc, *bearer(token)))
    r = tc.kubectl("auth", "whoami", kubeconfig=kc)
    assert r.code == 1 and "Unauthorized" in r.stderr


def test_bootstrap_tokens_that_must_not_authenticate(tc: Cluster) -> None:
    create_bootstrap_secret(tc, "nousag", "0123456789abcdef", **{"usage-bootstrap-authentication": ""})
    create_bootstrap_secret(tc, "badgrp", "0123456789abcdef", **{"auth-extra-groups": "system:masters"})
    create_bootstrap_secret(tc, "otherns", "0123456789abcdef", namespace="default")
    create_bootstrap_secret(tc, "goodid", "0123456789abcdef", expiration=_rfc3339(3600))
    for token in ("nousag.0123456789abcdef", "badgrp.0123456789abcdef", "otherns.0123456789abcdef",
                  "goodid.0123456789abcdee", "goodid.0123456789abcde", "zzzzzz.0123456789abcdef"):
        assert_unauthorized(whoami(tc, *bearer(token)))
    assert user_info(whoami(tc, *bearer("goodid.0123456789abcdef")))["username"] == "system:bootstrap:goodid"
    # not expired: the cleaner leaves them alone
    for token_id in ("nousag", "badgrp", "goodid"):
        tc.ok("-n", "kube-system", "get", "secret", f"bootstrap-token-{token_id}")


def test_expired_bootstrap_token_is_rejected_and_cleaned(tc: Cluster) -> None:
    create_bootstrap_secret(tc, "oldtok", "0123456789abcdef", expiration="2020-01-01T00:00:00Z")
    assert_unauthorized(whoami(tc, *bearer("oldtok.0123456789abcdef")))
    wait_until_gone(tc, "oldtok")
    create_bootstrap_secret(tc, "garbag", "0123456789abcdef", expiration="next tuesday")
    assert_unauthorized(whoami(tc, *bearer("garbag.0123456789abcdef")))
    wait_until_gone(tc, "garbag")


# --- WebSocket protocol token --------------------------------------------------------------------

def ws(token: str, *others: str) -> tuple[str, ...]:
    proto = "base64url.bearer.authorization.k8s.io." + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
    return ("-H", "Connection: Upgrade", "-H", "Upgrade: websocket",
            "-H", "Sec-WebSocket-Protocol: " + ", ".join((proto, *others)))


def test_websocket_protocol_token(tc: Cluster) -> None:
    r = tc.curl("/api/v1/namespaces", *ws("alice-static-token", "v5.channel.k8s.io"), admin=False)
    assert denied_as(r, "alice")
    r = tc.curl("/api/v1/namespaces/default", *ws("admin-static-token", "v5.channel.k8s.io"), admin=False)
    assert r.code == 200 and json.loads(r.stdout)["metadata"]["name"] == "default"
    assert_unauthorized(tc.curl("/version", *ws("not-a-token", "v5.channel.k8s.io"), admin=False))
    assert_unauthorized(tc.curl("/version", *ws("alice-static-token"), admin=False))  # no other subprotocol
    # without the WebSocket upgrade headers the protocol header means nothing: anonymous
    proto_only = ws("admin-static-token", "v5.channel.k8s.io")[-2:]
    r = tc.curl("/api/v1/namespaces", *proto_only, admin=False)
    assert denied_as(r, "system:anonymous")


# --- startup errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("flag,content,message", [
    ("--token-auth-file", "t1,alice,1\nt2,bob\n",
     "token file '{path}' must have at least 3 columns (token, user name, user uid), found 2"),
    ("--token-auth-file", 't1,"alice,1\n', 'parse error on line 1, column 13: extraneous or missing " in quoted-field'),
    ("--basic-auth-file", "onlypassword\n",
     "password file '{path}' must have at least 3 columns (password, user name, user uid), found 1"),
])
def test_bad_auth_files_stop_the_server(tmp_path: Path, flag: str, content: str, message: str) -> None:
    path = tmp_path / "auth.csv"
    path.write_text(content)
    p = subprocess.run([sys.executable, "-m", "kubegate.cli.main", "up", "--data-dir", str(tmp_path / "data"),
                        "--secure-port", "0", flag, str(path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert f"error: {message.format(path=path)}" in p.stderr
    p = subprocess.run([sys.executable, "-m", "kubegate.cli.main", "up", "--data-dir", str(tmp_path / "data"),
                        "--secure-port", "0", flag, str(tmp_path / "missing.csv")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and f"error: open {tmp_path / 'missing.csv'}: no such file or directory" in p.stderr


# --- x509 with a bundle of several CAs -----------------------------------------------------------

def _leaf(ca: x509.Certificate, ca_key: Any, cn: str, not_before: datetime.datetime,
          not_after: datetime.datetime, out: Path) -> tuple[str, str]:
    key = certs.new_key("ecdsa")
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    crt, k = out / f"{cn}.crt", out / f"{cn}.key"
    crt.write_bytes(certs.cert_pem(cert))
    k.write_bytes(certs.key_pem(key))
    return str(crt), str(k)


def test_client_ca_bundle_of_several_cas(tmp_path: Path) -> None:
    data = tmp_path / "data"
    init_pki(data)
    now = datetime.datetime.now(datetime.timezone.utc)
    team_key, stranger_key = certs.new_key("ecdsa"), certs.new_key("ecdsa")
    team_ca = certs.self_signed_ca("team-ca", team_key)
    stranger_ca = certs.self_signed_ca("stranger-ca", stranger_key)
    bundle = tmp_path / "client-ca-bundle.crt"
    bundle.write_bytes(certs.cert_pem(team_ca) + (data / "pki" / "ca.crt").read_bytes())
    (tmp_path / "tokens.csv").write_text(TOKENS)
    c = Cluster(data, ["--client-ca-file", str(bundle), "--token-auth-file", str(tmp_path / "tokens.csv")]).start()
    try:
        hour = datetime.timedelta(hours=1)
        from_team = _leaf(team_ca, team_key, "dana", now - hour, now + hour, tmp_path)
        assert user_info(whoami(c, "--cert", from_team[0], "--key", from_team[1]))["username"] == "dana"
        # the cluster CA, second in the bundle, still works (admin.conf's certificate)
        assert c.curl("/api/v1/namespaces/default").code == 200
        expired = _leaf(team_ca, team_key, "expired", now - 48 * hour, now - 24 * hour, tmp_path)
        not_yet = _leaf(team_ca, team_key, "early", now + 24 * hour, now + 48 * hour, tmp_path)
        other_ca = _leaf(stranger_ca, stranger_key, "mallory", now - hour, now + hour, tmp_path)
        g = golden("errors/401-client-cert-unknown-ca.json")
        for crt, key in (expired, not_yet, other_ca):
            for path in ("/api/v1/namespaces", "/version"):
                r = c.curl(path, "--cert", crt, "--key", key, admin=False)
                assert r.code == 401 and json.loads(r.stdout) == g["response"]["body"], (crt, path, r)
        # union semantics: the certificate's error is remembered, but a valid token alongside it wins
        r = whoami(c, "--cert", expired[0], "--key", expired[1], *bearer("alice-static-token"))
        assert user_info(r)["username"] == "alice"
    finally:
        c.stop()
