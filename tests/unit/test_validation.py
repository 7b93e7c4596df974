"""Validation: every golden 422 for object validation reproduced exactly, plus per-kind table tests."""
from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubegate.api import csr_strategy, errors
from kubegate.api.defaults import apply_defaults
from kubegate.api.resources import RESOURCES, Resource
from kubegate.api.validation import validate, validate_status
from kubegate.api.validation import names
from kubegate.api.gojson import unmarshal_object_error

from tests.fixtures import GOLDENS


def res(group: str, kind: str) -> Resource:
    return next(r for r in RESOURCES if r.group == group and r.kind == kind)


POD, CM, SECRET, NS = res("", "Pod"), res("", "ConfigMap"), res("", "Secret"), res("", "Namespace")
DEPLOY, RS = res("apps", "Deployment"), res("apps", "ReplicaSet")
RBAC = "rbac.authorization.k8s.io"
ROLE, CROLE, RB, CRB = res(RBAC, "Role"), res(RBAC, "ClusterRole"), res(RBAC, "RoleBinding"), \
    res(RBAC, "ClusterRoleBinding")
CSR = res("certificates.k8s.io", "CertificateSigningRequest")
NETPOL = res("networking.k8s.io", "NetworkPolicy")
LEASE = res("coordination.k8s.io", "Lease")
SC = res("storage.k8s.io", "StorageClass")
PVC = res("", "PersistentVolumeClaim")


def golden(path: str) -> dict[str, Any]:
    return json.loads((GOLDENS / path).read_text())


def status_for(resource: Resource, obj: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the server answers: defaults, then validation, rendered as the 422 Status."""
    obj = copy.deepcopy(obj)
    if resource.namespaced:
        obj.setdefault("metadata", {}).setdefault("namespace", "golden")
    apply_defaults(resource, obj)
    causes = validate(resource, obj, old)
    assert causes, "expected validation to fail"
    return errors.invalid(resource.kind, obj["metadata"].get("name", ""), causes, resource.group).status()


def assert_golden(path: str, resource: Resource, obj: dict[str, Any] | None = None,
                  old: dict[str, Any] | None = None) -> None:
    g = golden(path)
    body = obj if obj is not None else g["request"]["body"]
    assert status_for(resource, body, old) == g["response"]["body"]


def causes_of(resource: Resource, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    obj = copy.deepcopy(obj)
    if resource.namespaced:
        obj.setdefault("metadata", {}).setdefault("namespace", "ns")
    apply_defaults(resource, obj)
    return [f"{c.field}: {c.message}" for c in validate(resource, obj, old)]


# --- goldens ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("path,resource", [
    ("errors/422-invalid-name.json", CM),
    ("errors/422-missing-name.json", CM),
    ("errors/422-name-too-long.json", NS),
    ("errors/422-pod-multiple-causes.json", POD),
    ("errors/422-secret-invalid-key.json", SECRET),
    ("secrets/secret-basic-auth-empty.json", SECRET),
    ("secrets/secret-dockerconfigjson-invalid.json", SECRET),
    ("secrets/secret-ssh-auth-missing-key.json", SECRET),
    ("secrets/secret-tls-missing-key.json", SECRET),
    ("certificates/csr-invalid-request.json", CSR),
    ("certificates/csr-invalid-usage.json", CSR),
    ("certificates/csr-legacy-unknown-signer.json", CSR),
    ("certificates/csr-missing-signer.json", CSR),
    ("certificates/csr-short-expiration.json", CSR),
])
def test_golden_create_422(path: str, resource: Resource) -> None:
    assert_golden(path, resource)


@pytest.mark.parametrize("path,name,size", [
    ("errors/422-configmap-too-large.json", "toolarge", 1153024),
    ("errors/422-configmap-just-under-3mib.json", "huge3", 3145528),
])
def test_golden_configmap_too_large(path: str, name: str, size: int) -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"big": "x" * size}}
    assert_golden(path, CM, obj)


def test_golden_secret_too_large_data_and_stringdata() -> None:
    blob = base64.b64encode(b"y" * 1153024).decode()
    assert_golden("secrets/secret-too-large-data.json", SECRET,
                  {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "too-big-data"}, "data": {"blob": blob}})
    assert_golden("secrets/secret-too-large.json", SECRET,
                  {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "too-big"},
                   "stringData": {"blob": "x" * 1153024}})


def _stored(path: str) -> dict[str, Any]:
    obj = golden(path)["response"]["body"]
    obj["metadata"].pop("managedFields", None)
    return obj


def test_golden_secret_immutable_updates() -> None:
    old = _stored("secrets/secret-immutable-create.json")
    unset = copy.deepcopy(old)
    unset["immutable"] = False
    assert_golden("secrets/secret-immutable-unset.json", SECRET, unset, old)
    changed = copy.deepcopy(old)
    changed["data"] = {"k": "Y2hhbmdlZA=="}
    assert_golden("secrets/secret-immutable-update.json", SECRET, changed, old)


def test_golden_secret_type_immutable() -> None:
    g = golden("errors/422-secret-type-immutable.json")
    new = g["request"]["body"]
    old = copy.deepcopy(new)
    old["type"] = "Opaque"
    assert_golden("errors/422-secret-type-immutable.json", SECRET, new, old)


def test_golden_csr_approval_mutually_exclusive() -> None:
    g = golden("certificates/csr-approve-again.json")
    new = g["request"]["body"]
    old = _stored("certificates/csr-approve.json")
    csr_strategy.prepare_for_update(new, old, "approval", "2026-11-23T11:17:56Z")  # as the registry does first
    causes = validate_status(CSR, new, old, "approval")
    got = errors.invalid(CSR.kind, "golden-user", causes, CSR.group).status()
    assert got == g["response"]["body"]


def test_pod_update_forbidden_prefix_matches_golden() -> None:
    g = golden("patch/strategic-merge-forbidden-field.json")
    want = g["response"]["body"]["details"]["causes"][0]
    old = {"metadata": {"name": "patch-me", "namespace": "p", "uid": "u", "creationTimestamp": "t"},
           "spec": {"containers": [{"name": "app", "image": "img:1"}]}}
    apply_defaults(POD, old)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["env"] = [{"name": "A", "value": "b"}]
    (cause,) = validate(POD, new, old)
    assert (cause.field, cause.reason) == (want["field"], want["reason"])
    prefix = want["message"].split("\n", 1)[0]
    assert cause.message.split("\n", 1)[0] == prefix
    assert '"env"' in cause.message


# --- golden successes stay valid --------------------------------------------------------------------

@pytest.mark.parametrize("path,resource", [
    ("secrets/kubectl-create-secret-docker-registry.json", SECRET),
    ("secrets/kubectl-create-secret-tls.json", SECRET),
    ("secrets/secret-custom-type.json", SECRET),
    ("secrets/secret-empty-key-value.json", SECRET),
    ("secrets/secret-stringdata.json", SECRET),
    ("errors/201-generate-name.json", CM),
    ("namespaces/create-namespace.json", NS),
    ("podsecurity/enforce-restricted-deployment.json", DEPLOY),
    ("admission/limitrange-create.json", res("", "LimitRange")),
    ("admission/resourcequota-create.json", res("", "ResourceQuota")),
    ("certificates/csr-create.json", CSR),
    ("serviceaccounts/create-sa-automount-false.json", res("", "ServiceAccount")),
])
def test_golden_accepted_objects_validate(path: str, resource: Resource) -> None:
    obj = copy.deepcopy(golden(path)["request"]["body"])
    m = obj.setdefault("metadata", {})
    if not m.get("name") and m.get("generateName"):
        m["name"] = m["generateName"] + "abcde"
    assert causes_of(resource, obj) == []


# --- names -----------------------------------------------------------------------------------------

def test_name_validators() -> None:
    assert names.is_dns1123_label("a.b") == ["must not contain dots"]
    assert names.name_is_dns_subdomain("gen-", True) == []
    assert names.path_segment_name("..", False) == ["may not be '..'"]
    assert names.path_segment_name("a/b%", False) == ["may not contain '/'", "may not contain '%'"]
    assert names.is_qualified_name("example.com/") == ["name part must be non-empty",
                                                        "name part " + names.regex_error(
                                                            "must consist of alphanumeric characters, '-', '_' or '.',"
                                                            " and must start and end with an alphanumeric character",
                                                            "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]",
                                                            "MyName", "my.name", "123-abc")]
    assert names.is_label_value("x" * 64)[0] == "must be no more than 63 bytes"
    assert names.is_config_map_key("..x") == ["must not start with '..'"]
    assert names.is_valid_port_name("a--b") == ["must not contain consecutive hyphens"]


@pytest.mark.parametrize("data,err", [
    (b'{"auths":{}}', None),
    (b"null", None),
    (b"{not json", "invalid character 'n' looking for beginning of object key string"),
    (b"", "unexpected end of JSON input"),
    (b'{"a" 1}', "invalid character '1' after object key"),
    (b'{"a":1 "b"}', "invalid character '\"' after object key:value pair"),
    (b"[1]", "json: cannot unmarshal array into Go value of type map[string]interface {}"),
    (b"{} x", "invalid character 'x' after top-level value"),
    (b'{"a":tru}', "invalid character '}' in literal true (expecting 'e')"),
    (b'{"a":', "unexpected end of JSON input"),
])
def test_go_json_errors(data: bytes, err: str | None) -> None:
    assert unmarshal_object_error(data) == err


# --- meta --------------------------------------------------------------------------------------

def test_meta_update_immutable_fields() -> None:
    old = {"metadata": {"name": "a", "namespace": "ns", "uid": "1", "creationTimestamp": "t"}, "data": {}}
    new = copy.deepcopy(old)
    new["metadata"]["uid"] = "2"
    assert causes_of(CM, new, old) == ['metadata.uid: Invalid value: "2": field is immutable']


def test_meta_cluster_scoped_rejects_namespace_and_annotations_limit() -> None:
    obj = {"metadata": {"name": "a", "namespace": "x", "annotations": {"k": "v" * (256 * 1024)}}}
    assert causes_of(NS, obj) == ["metadata.namespace: Forbidden: not allowed on this type",
                                  "metadata.annotations: Too long: may not be more than 262144 bytes"]


def test_meta_owner_references_and_generate_name() -> None:
    obj = {"metadata": {"generateName": "Bad_", "ownerReferences": [{"kind": "X"}]}, "data": {}}
    got = causes_of(CM, obj)
    assert got[0].startswith('metadata.generateName: Invalid value: "Bad_": a lowercase RFC 1123 subdomain')
    assert "metadata.name: Required value: name or generateName is required" in got
    assert 'metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty' in got
    assert 'metadata.ownerReferences.uid: Invalid value: "": uid must not be empty' in got


# --- core kinds ---------------------------------------------------------------------------------

def test_configmap_immutable_and_duplicate_keys() -> None:
    old = {"metadata": {"name": "c", "namespace": "ns"}, "immutable": True, "data": {"a": "1"}}
    new = copy.deepcopy(old)
    new["data"]["a"] = "2"
    assert causes_of(CM, new, old) == ["data: Forbidden: field is immutable when `immutable` is set"]
    dup = {"metadata": {"name": "c"}, "data": {"a": "1"}, "binaryData": {"a": "MQ=="}}
    assert causes_of(CM, dup) == ['data[a]: Invalid value: "a": duplicate of key present in binaryData',
                                  'binaryData[a]: Invalid value: "a": duplicate of key present in data']


def test_secret_service_account_token_requires_annotation() -> None:
    obj = {"metadata": {"name": "s"}, "type": "kubernetes.io/service-account-token"}
    assert causes_of(SECRET, obj) == [
        "metadata.annotations[kubernetes.io/service-account.name]: Required value"]


def _pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx:1"}]}
    base.update(spec)
    return {"metadata": {"name": "p"}, "spec": base}


def test_pod_valid_and_container_rules() -> None:
    assert causes_of(POD, _pod()) == []
    bad = _pod(containers=[
        {"name": "a", "image": "x", "imagePullPolicy": "Sometimes",
         "ports": [{"containerPort": 70000}, {"containerPort": 80, "protocol": "ICMP"}],
         "env": [{"name": ""}], "volumeMounts": [{"name": "missing", "mountPath": "/m"}],
         "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}},
        {"name": "a", "image": ""},
    ], volumes=[{"name": "v"}, {"name": "v", "emptyDir": {}, "hostPath": {"path": "/"}}], dnsPolicy="Foo")
    got = causes_of(POD, bad)
    assert got == [
        "spec.volumes[0]: Required value: must specify a volume type",
        'spec.volumes[1].name: Duplicate value: "v"',
        "spec.volumes[1].emptyDir: Forbidden: may not specify more than 1 volume type",
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        'spec.containers[0].ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
        "spec.containers[0].env[0].name: Required value",
        'spec.containers[0].volumeMounts[0].name: Not found: "missing"',
        'spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", '
        '"IfNotPresent", "Never"',
        'spec.containers[0].resources.requests[cpu]: Invalid value: "2": must be less than or equal to cpu '
        'limit of 1',
        'spec.containers[1].name: Duplicate value: "a"',
        "spec.containers[1].image: Required value",
        'spec.dnsPolicy: Unsupported value: "Foo": supported values: "ClusterFirst", "ClusterFirstWithHostNet", '
        '"Default", "None"',
    ]


def test_pod_update_allows_image_change() -> None:
    old = _pod()
    old["metadata"]["namespace"] = "ns"
    apply_defaults(POD, old)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:2"
    new["spec"]["activeDeadlineSeconds"] = 10
    assert validate(POD, new, old) == []


def test_namespace_finalizer_names() -> None:
    obj = {"metadata": {"name": "n"}, "spec": {"finalizers": ["custom"]}}
    assert causes_of(NS, obj) == [
        'spec.finalizers: Invalid value: "custom": name is neither a standard finalizer name nor is it fully '
        'qualified']


def test_pvc_rules() -> None:
    obj = {"metadata": {"name": "c"}, "spec": {"accessModes": ["ReadWriteOncePod", "Bogus"]}}
    assert causes_of(PVC, obj) == [
        'spec.accessModes: Unsupported value: "Bogus": supported values: "ReadOnlyMany", "ReadWriteMany", '
        '"ReadWriteOnce", "ReadWriteOncePod"',
        "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes",
        "spec.resources[storage]: Required value",
    ]


# --- apps ----------------------------------------------------------------------------------------

def _deploy(sel: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": "d"}, "spec": {
        "selector": sel, "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [{"name": "a", "image": "i"}]}}}}


def test_deployment_selector_rules() -> None:
    assert causes_of(DEPLOY, _deploy({"matchLabels": {"app": "a"}}, {"app": "a"})) == []
    assert causes_of(DEPLOY, _deploy({"matchLabels": {"app": "a"}}, {"app": "b"})) == [
        'spec.template.metadata.labels: Invalid value: {"app":"b"}: `selector` does not match template `labels`']
    assert causes_of(RS, _deploy({}, {"app": "b"})) == [
        "spec.selector: Invalid value: {}: empty selector is invalid for deployment"]
    neg = _deploy({"matchLabels": {"app": "a"}}, {"app": "a"})
    neg["spec"]["replicas"] = -1
    neg["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert causes_of(DEPLOY, neg) == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"']


def test_deployment_selector_immutable() -> None:
    old = _deploy({"matchLabels": {"app": "a"}}, {"app": "a", "v": "1"})
    old["metadata"]["namespace"] = "ns"
    apply_defaults(DEPLOY, old)
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"v": "1"}}
    assert causes_of(DEPLOY, new, old) == [
        'spec.selector: Invalid value: {"matchLabels":{"v":"1"}}: field is immutable']


# --- rbac --------------------------------------------------------------------------------------

def test_rbac_rules() -> None:
    role = {"metadata": {"name": "r"}, "rules": [
        {"verbs": ["get"], "nonResourceURLs": ["/x"], "resources": ["pods"]},
        {"resources": ["pods"]}]}
    assert causes_of(ROLE, role) == [
        'rules[0].nonResourceURLs: Invalid value: ["/x"]: namespaced rules cannot apply to non-resource URLs',
        'rules[0].nonResourceURLs: Invalid value: ["/x"]: rules cannot apply to both regular resources and '
        'non-resource URLs',
        "rules[1].verbs: Required value: verbs must contain at least one value",
        "rules[1].apiGroups: Required value: resource rules must supply at least one api group",
    ]
    assert causes_of(CROLE, {"metadata": {"name": "system:x"}, "rules": [{"verbs": ["get"],
                                                                         "nonResourceURLs": ["/x"]}]}) == []


def test_rbac_bindings() -> None:
    rb = {"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": "r"},
          "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Robot", "name": "x"},
                       {"kind": "ServiceAccount", "name": "sa"}]}
    assert causes_of(RB, rb) == [
        'subjects[1].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"']
    crb = {"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": "r"},
           "subjects": [{"kind": "ServiceAccount", "name": "sa"}]}
    assert causes_of(CRB, crb) == [
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
        "subjects[0].namespace: Required value"]
    old = {"metadata": {"name": "b", "namespace": "ns"}, "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "r"}}
    new = copy.deepcopy(old)
    new["roleRef"]["name"] = "other"
    assert causes_of(RB, new, old) == [
        'roleRef: Invalid value: {"APIGroup":"rbac.authorization.k8s.io","Kind":"Role","Name":"other"}: '
        'cannot change roleRef']


# --- certificates ------------------------------------------------------------------------------

def _csr_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    req = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "u")])).sign(key, hashes.SHA256())
    return base64.b64encode(req.public_bytes(serialization.Encoding.PEM)).decode()


def test_csr_rules() -> None:
    spec = {"request": _csr_pem(), "signerName": "example.com/foo", "usages": ["client auth", "client auth"]}
    assert causes_of(CSR, {"metadata": {"name": "Any_Name"}, "spec": spec}) == [
        'spec.usages[1]: Duplicate value: "client auth"']
    spec = {"request": _csr_pem(), "signerName": "nodomain", "usages": ["client auth"]}
    assert causes_of(CSR, {"metadata": {"name": "c"}, "spec": spec}) == [
        'spec.signerName: Invalid value: "nodomain": must be a fully qualified domain and path of the form '
        "'example.com/signer-name'"]


# --- networking -----------------------------------------------------------------------------------

def test_networkpolicy_rules() -> None:
    spec = {"podSelector": {}, "ingress": [{
        "ports": [{"port": "http", "endPort": 90}, {"port": 90, "endPort": 80}, {"endPort": 5},
                  {"protocol": "ICMP"}],
        "from": [{}, {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16", "10.0.0.0/8"]},
                      "podSelector": {}}]}], "policyTypes": ["Ingress", "Sideways"]}
    assert causes_of(NETPOL, {"metadata": {"name": "n"}, "spec": spec}) == [
        "spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
        "spec.ingress[0].ports[1].endPort: Invalid value: 80: must be greater than or equal to `port`",
        "spec.ingress[0].ports[2].endPort: Invalid value: 5: may not be specified when `port` is not specified",
        'spec.ingress[0].ports[3].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"',
        "spec.ingress[0].from[0]: Required value: must specify a peer",
        'spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: "11.0.0.0/16": must be a strict subset of '
        "`cidr`",
        'spec.ingress[0].from[1].ipBlock.except[1]: Invalid value: "10.0.0.0/8": must be a strict subset of '
        "`cidr`",
        "spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer",
        'spec.policyTypes[1]: Unsupported value: "Sideways": supported values: "Ingress", "Egress"',
    ]


# --- coordination / storage --------------------------------------------------------------------

def test_lease_and_storageclass() -> None:
    assert causes_of(LEASE, {"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 0}}) == [
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]
    assert causes_of(SC, {"metadata": {"name": "s"}}) == ["provisioner: Required value"]
    old = {"metadata": {"name": "s"}, "provisioner": "x.io/p", "parameters": {"a": "1"}}
    apply_defaults(SC, old)
    new = copy.deepcopy(old)
    new["parameters"] = {"a": "2"}
    assert causes_of(SC, new, old) == ["parameters: Forbidden: updates to parameters are forbidden."]


def test_limitrange_ordering_messages() -> None:
    lr = {"metadata": {"name": "l", "namespace": "n"}, "spec": {"limits": [{
        "type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"},
        "default": {"memory": "1Gi"}, "defaultRequest": {"memory": "2Gi"}}]}}
    causes = [(c.field, c.message) for c in validate(res("", "LimitRange"), lr)]
    assert causes == [
        ("spec.limits[0].min[cpu]", 'Invalid value: "2": min value 2 is greater than max value 1'),
        ("spec.limits[0].defaultRequest[memory]",
         'Invalid value: "2Gi": default request value 2Gi is greater than default limit value 1Gi'),
    ]
