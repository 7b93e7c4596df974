from __future__ import annotations

import pytest

from kubegate.protobuf import ProtobufError, decode_message, decode_object, encode_message, encode_object
from kubegate.protobuf.codec import format_duration, format_time, parse_duration, parse_time
from kubegate.protobuf.wire import decode_varint, encode_varint, to_signed

# Hand-computed from the proto facts: runtime.Unknown{typeMeta{apiVersion=1,kind=2}, raw=2,
# contentEncoding=3, contentType=4}; ObjectMeta writes every non-pointer field (1..8, Time empty);
# ConfigMap.data is field 2 with {key=1,value=2} entries.
TINY_CM = (b"k8s\x00"
           b"\x0a\x0f\x0a\x02v1\x12\x09ConfigMap"
           b"\x12\x1e"
           b"\x0a\x14\x0a\x02cm\x12\x00\x1a\x02ns\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00"
           b"\x12\x06\x0a\x01a\x12\x01b"
           b"\x1a\x00\x22\x00")


def test_tiny_configmap_bytes_match_upstream() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "ns"},
           "data": {"a": "b"}}
    assert encode_object(obj) == TINY_CM
    assert decode_object(TINY_CM) == {"kind": "ConfigMap", "apiVersion": "v1",
                                      "metadata": {"name": "cm", "namespace": "ns"}, "data": {"a": "b"}}


def test_configmap_field_order_follows_go_struct() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"b": "2", "a": "1"}},
           "data": {"z": "", "k": "v"}, "binaryData": {"bin": "AAEC"}, "immutable": True}
    out = decode_object(encode_object(obj))
    assert list(out) == ["kind", "apiVersion", "metadata", "immutable", "data", "binaryData"]
    assert out["metadata"]["labels"] == {"a": "1", "b": "2"}
    assert out["data"] == {"k": "v", "z": ""}
    assert out["binaryData"] == {"bin": "AAEC"}


def test_secret_bytes_and_pointer_false_survive() -> None:
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "d"},
           "immutable": False, "data": {"tls.key": "AP8=", "empty": ""}, "type": "Opaque"}
    out = decode_object(encode_object(obj))
    assert out == {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s", "namespace": "d"},
                   "immutable": False, "data": {"empty": "", "tls.key": "AP8="}, "type": "Opaque"}


def test_resourcequota_quantities_and_empty_status() -> None:
    obj = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
           "spec": {"hard": {"cpu": "500m", "pods": "10"}, "scopes": ["BestEffort"]}}
    out = decode_object(encode_object(obj))
    # status is a non-pointer struct: Go prints it as {} even when nothing was sent
    assert out["spec"] == {"hard": {"cpu": "500m", "pods": "10"}, "scopes": ["BestEffort"]}
    assert out["status"] == {}


def test_times_metadata_and_managed_fields() -> None:
    meta = {"name": "m", "creationTimestamp": "2026-11-23T11:16:50Z", "generation": 3,
            "deletionGracePeriodSeconds": 0,
            "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                               "time": "2026-11-23T11:16:50Z", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:data": {".": {}, "f:a": {}}}}]}
    data = encode_message("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", meta)
    out = decode_message("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", data)
    assert out == meta


def test_watch_event_embeds_object() -> None:
    ev = {"type": "ADDED", "object": {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "a"}}}
    out = decode_message("io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
                         encode_message("io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent", ev))
    assert out == ev


def test_negative_ints_use_ten_byte_varints() -> None:
    assert encode_varint(-1) == b"\xff" * 9 + b"\x01"
    v, pos = decode_varint(encode_varint(-5), 0)
    assert pos == 10 and to_signed(v, 32) == -5 and to_signed(v, 64) == -5
    st = {"code": -1, "status": "Failure"}
    out = decode_message("io.k8s.apimachinery.pkg.apis.meta.v1.Status",
                         encode_message("io.k8s.apimachinery.pkg.apis.meta.v1.Status", st))
    assert out["code"] == -1 and out["metadata"] == {}


def test_go_durations_and_times() -> None:
    assert format_duration(3600 * 10**9) == "1h0m0s"
    assert format_duration(90 * 10**9) == "1m30s"
    assert format_duration(1500 * 10**6) == "1.5s"
    assert format_duration(500 * 10**6) == "500ms"
    assert format_duration(0) == "0s"
    assert parse_duration("1h0m0s") == 3600 * 10**9 and parse_duration("1.5s") == 1500 * 10**6
    assert format_time(*parse_time("2026-11-23T11:16:50Z"), micro=False) == "2026-11-23T11:16:50Z"
    assert format_time(*parse_time("2026-11-23T11:16:50.123456Z"), micro=True) == "2026-11-23T11:16:50.123456Z"
    assert parse_time("2026-11-23T12:16:50+01:00")[0] == parse_time("2026-11-23T11:16:50Z")[0]


@pytest.mark.parametrize("body, message", [
    (b'{"kind":"ConfigMap"}', "does not appear to be a protobuf message"),
    (b"k8s\x00\x0a\x05\x0a\x02v1", "invalid protobuf envelope"),
    (b"k8s\x00\x0a\x04\x0a\x02v1", "kind is not set"),
    (b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Widget", 'no kind "Widget" is registered for version "v1"'),
    (b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x03\x0a\x05a", "invalid protobuf for ConfigMap"),
])
def test_malformed_input(body: bytes, message: str) -> None:
    with pytest.raises(ProtobufError, match=message):
        decode_object(body)


def test_encode_rejects_wrong_types() -> None:
    with pytest.raises(ProtobufError, match="illegal base64"):
        encode_object({"apiVersion": "v1", "kind": "Secret", "data": {"a": "!!"}})
    with pytest.raises(ProtobufError, match="expected a string"):
        encode_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 5}})


# ---------------------------------------------------------------------------------------------- round trips
# Each case: a JSON body as a client sends it, and the JSON upstream prints for the decoded Go object
# (non-pointer structs without omitempty print as {}, pointer zero values survive).

POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
       "spec": {"containers": [{
           "name": "app", "image": "nginx:1.27", "command": ["nginx"], "args": ["-g", "daemon off;"],
           "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
           "env": [{"name": "A", "value": "1"},
                   {"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
           "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
           "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True},
                            {"name": "data", "mountPath": "/data"}],
           "securityContext": {"runAsNonRoot": False, "allowPrivilegeEscalation": False,
                               "capabilities": {"drop": ["ALL"]}}}],
           "volumes": [{"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}},
                       {"name": "data", "emptyDir": {}},
                       {"name": "sec", "secret": {"secretName": "s", "optional": True}},
                       {"name": "claim", "persistentVolumeClaim": {"claimName": "pvc"}}],
           "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                            "tolerationSeconds": 300}]}}

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "ns"},
              "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "d"}},
                       "template": {"metadata": {"labels": {"app": "d"}},
                                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
                       "strategy": {"type": "RollingUpdate",
                                    "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}}}}

ROLEBINDING = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "rb", "namespace": "ns"},
               "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
                            {"kind": "ServiceAccount", "name": "default", "namespace": "ns"}],
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}}

CLUSTERROLE = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "agg"},
               "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/agg": "true"}}]},
               "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]},
                         {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]}

CSR = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": "csr"},
       "spec": {"request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K",
                "signerName": "kubernetes.io/kube-apiserver-client", "expirationSeconds": 86400,
                "usages": ["digital signature", "key encipherment", "client auth"],
                "username": "alice", "groups": ["system:authenticated"], "extra": {"scopes": ["a", "b"]}}}

SSAR = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {},
        "spec": {"resourceAttributes": {"namespace": "ns", "verb": "get", "resource": "pods"}}}

TOKENREQUEST = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {"name": "sa"},
                "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600,
                         "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u-1"}}}

LEASE = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l", "namespace": "kube-system"},
         "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40,
                  "renewTime": "2026-11-23T11:16:50.123456Z", "leaseTransitions": 0}}

EVENT = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "ns"},
         "eventTime": "2026-11-23T11:16:50.000001Z", "reportingController": "kubegate/test",
         "reportingInstance": "i-1", "action": "Testing", "reason": "Tested", "type": "Normal",
         "regarding": {"kind": "Pod", "namespace": "ns", "name": "p"}, "note": "hello"}

NETPOL = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np", "namespace": "ns"},
          "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                   "ingress": [{"ports": [{"protocol": "TCP", "port": 8080, "endPort": 8090},
                                          {"port": "https"}],
                                "from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}]}}

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}

SERVICEACCOUNT = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder", "namespace": "ns"},
                  "automountServiceAccountToken": False}


def _with(obj: dict, **extra: object) -> dict:
    return {**obj, **extra}


ROUND_TRIPS = [
    (POD, _with(POD, status={})),
    (DEPLOYMENT, _with(DEPLOYMENT, spec={**DEPLOYMENT["spec"], "template": {
        "metadata": {"labels": {"app": "d"}},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {}}]}}}, status={})),
    (ROLEBINDING, ROLEBINDING),
    (CLUSTERROLE, CLUSTERROLE),
    (CSR, _with(CSR, status={})),
    (SSAR, _with(SSAR, status={"allowed": False})),
    (TOKENREQUEST, _with(TOKENREQUEST, status={"token": "", "expirationTimestamp": None})),
    (LEASE, LEASE),
    # value Times print as null and value structs as {} even with omitempty
    (EVENT, _with(EVENT, deprecatedSource={}, deprecatedFirstTimestamp=None, deprecatedLastTimestamp=None)),
    (NETPOL, _with(NETPOL, spec={**NETPOL["spec"], "ingress": [{**NETPOL["spec"]["ingress"][0]}]})),
    (NAMESPACE, _with(NAMESPACE, spec={}, status={})),
    (SERVICEACCOUNT, SERVICEACCOUNT),
]


@pytest.mark.parametrize("body, printed", ROUND_TRIPS, ids=[b["kind"] for b, _ in ROUND_TRIPS])
def test_round_trip_matches_go_json(body: dict, printed: dict) -> None:
    wire = encode_object(body)
    assert decode_object(wire) == {"kind": body["kind"], "apiVersion": body["apiVersion"], **printed}
    assert encode_object(decode_object(wire)) == wire  # canonical: re-encoding is byte-identical


def test_pod_pointer_false_and_go_field_order() -> None:
    out = decode_object(encode_object(POD))
    sc = out["spec"]["containers"][0]["securityContext"]
    assert sc == {"capabilities": {"drop": ["ALL"]}, "runAsNonRoot": False, "allowPrivilegeEscalation": False}
    # Go struct order, not the order the client wrote: readOnly comes before mountPath in VolumeMount
    assert list(out["spec"]["containers"][0]["volumeMounts"][0]) == ["name", "readOnly", "mountPath"]
    assert list(out["spec"]) == ["volumes", "containers", "tolerations"]


def test_int_or_string_and_replicas_zero_on_the_wire() -> None:
    wire = encode_object(DEPLOYMENT)
    # DeploymentSpec.replicas is *int32: an explicit 0 is written (field 1, varint 0)
    spec = decode_message("io.k8s.api.apps.v1.Deployment", _unknown_raw(wire))["spec"]
    assert spec["replicas"] == 0
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 1, "maxSurge": "25%"}
    ru = encode_message("io.k8s.api.apps.v1.RollingUpdateDeployment", {"maxSurge": "25%"})
    # IntOrString{type=1 (string), intVal=0, strVal="25%"} as field 2; maxUnavailable (nil pointer) absent
    assert ru == b"\x12\x09\x08\x01\x10\x00\x1a\x0325%"


def _unknown_raw(wire: bytes) -> bytes:
    from kubegate.protobuf.wire import iter_fields
    return next(v for n, _, v in iter_fields(wire[4:]) if n == 2)  # type: ignore[return-value]


def test_lists_and_list_wrappers() -> None:
    lst = {"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "7"},
           "items": [{"metadata": {"name": "a"}, "data": {"k": "v"}}]}
    assert decode_object(encode_object(lst)) == {"kind": "ConfigMapList", "apiVersion": "v1", **{
        "metadata": {"resourceVersion": "7"}, "items": [{"metadata": {"name": "a"}, "data": {"k": "v"}}]}}
    res = {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
           "verbs": ["get", "list"], "shortNames": ["po"]}
    data = encode_message("io.k8s.apimachinery.pkg.apis.meta.v1.APIResource", res)
    # metav1.Verbs is a message {repeated string items = 1} at field 4
    assert b"\x22\x0b\x0a\x03get\x0a\x04list" in data
    assert decode_message("io.k8s.apimachinery.pkg.apis.meta.v1.APIResource", data) == res
    no_verbs = decode_message("io.k8s.apimachinery.pkg.apis.meta.v1.APIResource", b"\x0a\x01x")
    assert no_verbs["verbs"] is None


def test_every_registered_kind_encodes_its_empty_object() -> None:
    from kubegate.schema import definitions
    kinds = {g for d in definitions().values() for g in d.gvks}
    assert len(kinds) > 120
    for group, version, kind in kinds:
        api_version = f"{group}/{version}" if group else version
        out = decode_object(encode_object({"apiVersion": api_version, "kind": kind}))
        assert (out["kind"], out["apiVersion"]) == (kind, api_version)


# ---------------------------------------------------------------------------------------------- real kubectl bodies

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"
KUBECTL_CREATES = {
    "ConfigMap": ["create", "configmap", "x", "--from-literal=a=b"],
    "Deployment": ["create", "deployment", "d", "--image=nginx", "--replicas=0"],
    "RoleBinding": ["create", "rolebinding", "rb", "--role=r", "--user=alice", "--serviceaccount=ns:sa"],
    "ClusterRole": ["create", "clusterrole", "agg", "--aggregation-rule=a=b"],
    "Namespace": ["create", "namespace", "team"],
    "Secret": ["create", "secret", "generic", "s", "--from-literal=k=v"],
    "CronJob": ["create", "cronjob", "cj", "--image=busybox", "--schedule=* * * * *"],
    "Service": ["create", "service", "clusterip", "svc", "--tcp=80:8080"],
    "ResourceQuota": ["create", "quota", "q", "--hard=cpu=1,pods=2"],
}
# What upstream's JSON serializer prints for the objects kubectl sends (cf. `--dry-run=client -o json`).
KUBECTL_PRINTED = {
    "ConfigMap": {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x", "namespace": "ns"},
                  "data": {"a": "b"}},
    "Deployment": {"kind": "Deployment", "apiVersion": "apps/v1",
                   "metadata": {"name": "d", "namespace": "ns", "labels": {"app": "d"}},
                   "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "d"}},
                            "template": {"metadata": {"labels": {"app": "d"}},
                                         "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                                                  "resources": {}}]}},
                            "strategy": {}},
                   "status": {}},
    "ClusterRole": {"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "agg"},
                    "rules": None, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}},
    "Secret": {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s", "namespace": "ns"},
               "data": {"k": "dg=="}},
    "Service": {"kind": "Service", "apiVersion": "v1",
                "metadata": {"name": "svc", "namespace": "ns", "labels": {"app": "svc"}},
                "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                         "selector": {"app": "svc"}, "type": "ClusterIP"},
                "status": {"loadBalancer": {}}},
    "ResourceQuota": {"kind": "ResourceQuota", "apiVersion": "v1", "metadata": {"name": "q", "namespace": "ns"},
                      "spec": {"hard": {"cpu": "1", "pods": "2"}}, "status": {}},
}


@pytest.fixture(scope="module")
def kubectl_bodies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Protobuf bodies real kubectl POSTs, recorded by a throwaway HTTPS server."""
    import datetime
    import os
    import ssl
    import subprocess
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    if not os.access(KUBECTL, os.X_OK):
        pytest.skip("kubectl 1.33 is not installed")
    d = tmp_path_factory.mktemp("kubectl")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1)).sign(key, hashes.SHA256()))
    (d / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "tls.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    posted: dict[str, bytes] = {}

    class Recorder(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # kubectl create posts straight away; anything else is a 404
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            posted[self.path.split("?")[0].rsplit("/", 1)[-1]] = body
            self.send_response(201)
            self.send_header("Content-Type", self.headers.get("Content-Type") or "")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "tls.crt", d / "tls.key")
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    env = dict(os.environ, HOME=str(d), KUBECONFIG=str(d / "absent"))
    base = [KUBECTL, f"--server=https://127.0.0.1:{srv.server_address[1]}", "--insecure-skip-tls-verify",
            "--token=x", "-n", "ns"]
    try:
        procs = {k: subprocess.Popen([*base, *args, "--validate=false", "-o", "name"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for k, args in KUBECTL_CREATES.items()}
        for p in procs.values():
            p.wait(timeout=60)
    finally:
        srv.shutdown()
    resources = {"ConfigMap": "configmaps", "Deployment": "deployments", "RoleBinding": "rolebindings",
                 "ClusterRole": "clusterroles", "Namespace": "namespaces", "Secret": "secrets",
                 "CronJob": "cronjobs", "Service": "services", "ResourceQuota": "resourcequotas"}
    return {k: posted[r] for k, r in resources.items() if r in posted}


@pytest.mark.parametrize("kind", sorted(KUBECTL_CREATES))
def test_real_kubectl_protobuf_bodies_decode(kubectl_bodies: dict[str, bytes], kind: str) -> None:
    body = kubectl_bodies[kind]
    assert body.startswith(b"k8s\x00")
    obj = decode_object(body)
    assert obj["kind"] == kind
    if kind in KUBECTL_PRINTED:
        assert obj == KUBECTL_PRINTED[kind]
    # gogo's marshallers and ours agree byte for byte
    assert encode_object(obj) == body
