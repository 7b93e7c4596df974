"""kubectl, unchanged, against a real kubegate server."""
from __future__ import annotations

import json
import subprocess
import time

from tests.e2e.cluster import KUBECTL, Cluster


def test_version_selects_server_minor(cluster: Cluster) -> None:
    out = cluster.ok("version", "-o", "json")
    v = json.loads(out)
    assert v["serverVersion"]["minor"] == "36"
    assert v["serverVersion"]["gitVersion"].startswith("v1.36.")


def test_system_namespaces_and_default_rbac(cluster: Cluster) -> None:
    names = cluster.ok("get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}").split()
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= set(names)
    roles = cluster.ok("get", "clusterroles", "-o", "name").split()
    assert "clusterrole.rbac.authorization.k8s.io/cluster-admin" in roles
    assert "clusterrole.rbac.authorization.k8s.io/system:controller:namespace-controller" in roles


def test_get_table_columns(cluster: Cluster, ns: str) -> None:
    cluster.ok("-n", ns, "create", "configmap", "cfg", "--from-literal=a=1", "--from-literal=b=2")
    out = cluster.ok("-n", ns, "get", "configmaps")
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "DATA", "AGE"]
    assert any(r.split()[:2] == ["cfg", "2"] for r in rows)


def test_create_typed_commands_send_protobuf(cluster: Cluster, ns: str) -> None:
    # These typed commands POST protobuf bodies; they must decode.
    cluster.ok("-n", ns, "create", "secret", "generic", "s1", "--from-literal=password=hunter2")
    assert cluster.ok("-n", ns, "get", "secret", "s1", "-o", "jsonpath={.data.password}") == "aHVudGVyMg=="
    cluster.ok("-n", ns, "create", "deployment", "web", "--image=nginx:1.27", "--replicas=2")
    dep = json.loads(cluster.ok("-n", ns, "get", "deployment", "web", "-o", "json"))
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    cluster.ok("-n", ns, "create", "role", "reader", "--verb=get,list", "--resource=pods")
    cluster.ok("-n", ns, "create", "rolebinding", "rb", "--role=reader", "--user=alice")
    rb = json.loads(cluster.ok("-n", ns, "get", "rolebinding", "rb", "-o", "json"))
    assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}
    assert rb["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]


def test_apply_patch_label_delete(cluster: Cluster, ns: str) -> None:
    manifest = f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: applied
  namespace: {ns}
data:
  one: "1"
"""
    assert "configmap/applied created" in cluster.ok("apply", "-f", "-", input=manifest)
    assert "configmap/applied configured" in cluster.ok("apply", "-f", "-", input=manifest.replace('"1"', '"2"'))
    cm = json.loads(cluster.ok("-n", ns, "get", "cm", "applied", "-o", "json"))
    assert cm["data"] == {"one": "2"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in cm["metadata"]["annotations"]
    cluster.ok("-n", ns, "patch", "cm", "applied", "--type=merge", "-p", '{"data":{"two":"2"}}')
    cluster.ok("-n", ns, "patch", "cm", "applied", "--type=json", "-p", '[{"op":"remove","path":"/data/one"}]')
    cluster.ok("-n", ns, "patch", "cm", "applied", "-p", '{"data":{"three":"3"}}')  # strategic
    cm = json.loads(cluster.ok("-n", ns, "get", "cm", "applied", "-o", "json"))
    assert cm["data"] == {"two": "2", "three": "3"}
    cluster.ok("-n", ns, "label", "cm", "applied", "tier=web")
    assert cluster.ok("-n", ns, "get", "cm", "-l", "tier=web", "-o", "name").strip() == "configmap/applied"
    # the root CA publisher's ConfigMap is the only other one, as upstream
    assert cluster.ok("-n", ns, "get", "cm", "-l", "tier!=web", "-o", "name").strip() == "configmap/kube-root-ca.crt"
    assert 'configmap "applied" deleted' in cluster.ok("-n", ns, "delete", "cm", "applied")
    r = cluster.kubectl("-n", ns, "get", "cm", "applied")
    assert r.code == 1 and 'configmaps "applied" not found' in r.stderr


def test_strategic_patch_merges_containers_by_name(cluster: Cluster, ns: str) -> None:
    cluster.ok("-n", ns, "create", "deployment", "app", "--image=busybox:1")
    patch = '{"spec":{"template":{"spec":{"containers":[{"name":"busybox","image":"busybox:2"}]}}}}'
    cluster.ok("-n", ns, "patch", "deployment", "app", "-p", patch)
    dep = json.loads(cluster.ok("-n", ns, "get", "deployment", "app", "-o", "json"))
    containers = dep["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == ["busybox:2"]
    assert containers[0]["imagePullPolicy"] == "IfNotPresent"
    assert dep["metadata"]["generation"] == 2


def test_output_formats_and_jsonpath(cluster: Cluster, ns: str) -> None:
    cluster.ok("-n", ns, "create", "configmap", "fmt", "--from-literal=k=v")
    y = cluster.ok("-n", ns, "get", "cm", "fmt", "-o", "yaml")
    assert "kind: ConfigMap" in y and "k: v" in y
    assert cluster.ok("-n", ns, "get", "cm", "fmt", "-o", "jsonpath={.data.k}") == "v"
    d = json.loads(cluster.ok("-n", ns, "get", "cm", "fmt", "-o", "json"))
    assert d["metadata"]["namespace"] == ns and d["metadata"]["uid"]
    assert int(d["metadata"]["resourceVersion"]) > 0


def test_describe(cluster: Cluster, ns: str) -> None:
    cluster.ok("-n", ns, "create", "configmap", "desc", "--from-literal=key=value")
    out = cluster.ok("-n", ns, "describe", "configmap", "desc")
    assert "Name:" in out and "desc" in out and "key:" in out and "value" in out


def test_api_resources_and_versions(cluster: Cluster) -> None:
    out = cluster.ok("api-resources")
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    for name in ("pods", "deployments", "roles", "certificatesigningrequests", "networkpolicies", "leases",
                 "storageclasses", "events"):
        assert name in lines, name
    assert "po" in lines["pods"].split() and "true" in lines["pods"].split()
    versions = cluster.ok("api-versions").split()
    for gv in ("v1", "apps/v1", "rbac.authorization.k8s.io/v1", "certificates.k8s.io/v1",
               "networking.k8s.io/v1", "coordination.k8s.io/v1", "events.k8s.io/v1", "storage.k8s.io/v1"):
        assert gv in versions


def test_explain(cluster: Cluster) -> None:
    out = cluster.ok("explain", "pods.spec.containers.image")
    assert "FIELD: image <string>" in out
    out = cluster.ok("explain", "deployment.spec.replicas")
    assert "replicas" in out and "<integer>" in out


def test_wait_and_delete_namespace(cluster: Cluster) -> None:
    cluster.ok("create", "namespace", "to-delete")
    cluster.ok("-n", "to-delete", "create", "configmap", "inside", "--from-literal=a=b")
    cluster.ok("delete", "namespace", "to-delete", "--wait=false")
    cluster.ok("wait", "--for=delete", "namespace/to-delete", "--timeout=20s")
    r = cluster.kubectl("get", "namespace", "to-delete")
    assert r.code == 1 and "NotFound" in r.stderr


def test_get_watch(cluster: Cluster, ns: str) -> None:
    env_conf = cluster.admin_conf
    p = subprocess.Popen([KUBECTL, "--cache-dir", str(cluster.cache_dir), "--kubeconfig", env_conf, "-n", ns,
                          "get", "configmaps", "--watch", "--output-watch-events",
                          "--request-timeout=20s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        cluster.ok("-n", ns, "create", "configmap", "watched", "--from-literal=a=b")
        cluster.ok("-n", ns, "delete", "configmap", "watched")
        time.sleep(1.5)
    finally:
        p.terminate()
        out, _ = p.communicate(timeout=10)
    rows = [line.split()[:2] for line in out.splitlines()]
    assert ["ADDED", "watched"] in rows
    assert ["DELETED", "watched"] in rows


def test_proxy(cluster: Cluster) -> None:
    p = subprocess.Popen([KUBECTL, "--cache-dir", str(cluster.cache_dir), "--kubeconfig", cluster.admin_conf,
                          "proxy", "--port=0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        line = p.stdout.readline()  # "Starting to serve on 127.0.0.1:PORT"
        port = line.strip().rsplit(":", 1)[1]
        out = subprocess.run(["curl", "-s", f"http://127.0.0.1:{port}/api/v1/namespaces/default"],
                             capture_output=True, text=True, timeout=10).stdout
        assert json.loads(out)["metadata"]["name"] == "default"
    finally:
        p.terminate()
        p.communicate(timeout=10)


def test_events_in_both_groups_share_storage(cluster: Cluster, ns: str) -> None:
    ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
          "metadata": {"name": "e1", "namespace": ns},
          "eventTime": "2026-11-23T10:00:00.000000Z", "reportingController": "kubegate.test/ctl",
          "reportingInstance": "ctl-1", "action": "Testing", "reason": "Tested", "type": "Normal",
          "note": "hello from events.k8s.io", "regarding": {"kind": "Pod", "name": "p", "namespace": ns}}
    status, _, created = cluster.request("POST", f"/apis/events.k8s.io/v1/namespaces/{ns}/events", ev)
    assert status == 201, created
    assert created["apiVersion"] == "events.k8s.io/v1" and created["note"] == "hello from events.k8s.io"
    core = json.loads(cluster.ok("-n", ns, "get", "events.v1.", "e1", "-o", "json"))
    assert core["apiVersion"] == "v1"
    assert core["message"] == "hello from events.k8s.io"
    assert core["involvedObject"]["name"] == "p"
    out = cluster.ok("-n", ns, "get", "events")
    assert "Tested" in out and "hello from events.k8s.io" in out
