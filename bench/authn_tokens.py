"""Service-account token authentication cost.

1. GET one object with a bound service-account token vs the same GET with a client certificate,
   on the same server, the same RBAC grant and the same Python client, in alternating one-second
   slices over open connections (ratio: the median of adjacent pairs): the token path must reach
   at least 0.9x the certificate path (the 10 s success cache means a token's signature is
   verified once, not per request).
2. Uncached verifications per second (signature, claims, lookups; in-process) for RS256 and ES256.

Run alone: `.venv/bin/python bench/authn_tokens.py` (starts its own server).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Load, compare, get_ok, tls_context  # noqa: E402
from bench.run import fmt  # noqa: E402
from tests.e2e.cluster import Cluster  # noqa: E402

NS = "bench-tokens"
GRANT = f"""apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: reader, namespace: {NS}}}
rules:
- {{apiGroups: [""], resources: [configmaps], verbs: [get]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: reader, namespace: {NS}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}}
subjects:
- {{kind: ServiceAccount, name: reader, namespace: {NS}}}
- {{apiGroup: rbac.authorization.k8s.io, kind: User, name: cert-reader}}
"""


def token_vs_cert(c: Cluster, rounds: int, seconds: float) -> tuple[dict[str, float], dict[str, float], float]:
    """Both paths over `rounds` x `seconds` seconds each, and the median per-pair ratio token/cert."""
    c.ok("create", "namespace", NS)
    c.ok("apply", "-f", "-", input=GRANT)
    c.ok("-n", NS, "create", "configmap", "one", "--from-literal=k=v")
    c.ok("-n", NS, "create", "serviceaccount", "reader")
    c.ok("-n", NS, "create", "secret", "generic", "anchor")
    uid = c.ok("-n", NS, "get", "secret", "anchor", "-o", "jsonpath={.metadata.uid}")
    status, _, body = c.request("POST", f"/api/v1/namespaces/{NS}/serviceaccounts/reader/token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": "anchor", "uid": uid}}})
    assert status == 201, body
    token = body["status"]["token"]
    get = get_ok(f"{c.url}/api/v1/namespaces/{NS}/configmaps/one")
    # One-second slices, alternating: a busy neighbour hits both sides alike.
    with Load(tls_context(c), get, headers={"Authorization": f"Bearer {token}"}) as tok, \
            Load(tls_context(c, c.user_cert("cert-reader")), get) as cert:
        return compare(tok, cert, max(1, int(rounds * seconds)), 1.0)


class _Objects:
    """In-memory lookups for the pure verification loop: the SA and its bound Secret exist."""

    def __init__(self, sa_uid: str, secret_uid: str) -> None:
        self._sa = {"metadata": {"name": "reader", "uid": sa_uid}}
        self._secret = {"metadata": {"name": "anchor", "uid": secret_uid}}

    def service_account(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._sa

    def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._secret

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    def node(self, name: str) -> dict[str, Any] | None:
        return None


def verifications_per_second(key_type: str, seconds: float = 2.0) -> float:
    """Uncached `JWTAuthenticator.check` calls per second for one bound token."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from kubegate.serviceaccount.authenticator import BoundValidator, JWTAuthenticator
    from kubegate.serviceaccount.claims import Ref, bound_claims
    from kubegate.serviceaccount.keys import KeySet, Signer
    key: Any = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if key_type == "RS256"
                else ec.generate_private_key(ec.SECP256R1()))
    iss = "https://kubernetes.default.svc.cluster.local"
    token = Signer(key).sign(bound_claims(issuer=iss, namespace=NS, service_account=Ref("reader", "sa-uid"),
                                          audiences=[iss], now=int(time.time()), expiration_seconds=3600,
                                          jti="bench", secret=Ref("anchor", "secret-uid")))
    a = JWTAuthenticator([iss], KeySet([key.public_key()]), [iss], BoundValidator(_Objects("sa-uid", "secret-uid")))
    assert a.check(token, ()) is not None
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(50):
            a.check(token, ())
        n += 50
    return n / (time.perf_counter() - t0)


def main(c: Cluster, rounds: int, seconds: float) -> list[str]:
    """The rows `make bench` prints for service-account tokens."""
    tok, cert, ratio = token_vs_cert(c, rounds, seconds)
    rows = [fmt("GET one object (bound SA token)", tok, cert, base_name="client cert", ratio=ratio)]
    for alg in ("RS256", "ES256"):
        rows.append(f"{'uncached SA token verify ' + alg:<34} {verifications_per_second(alg):>9.0f} verifications/s "
                    "(in-process)")
    return rows


if __name__ == "__main__":
    tmp = Path(tempfile.mkdtemp(prefix="kubegate-bench-tokens-"))
    server = Cluster(tmp / "data").start()
    try:
        for row in main(server, int(os.environ.get("BENCH_ROUNDS", "3")), float(os.environ.get("BENCH_SECONDS", "5"))):
            print(row, flush=True)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
