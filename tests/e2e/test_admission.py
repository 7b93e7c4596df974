"""The admission chain through a real server: default plugins shape pods as upstream's goldens do,
flags enable and disable plugins in upstream's order, the configuration file, dry run, warnings."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, golden

PAUSE = "registry.k8s.io/pause:3.10"


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": PAUSE}], **spec}}


def _wait_default_sa(c: Cluster, ns: str) -> None:
    for _ in range(100):
        code, _, _ = c.request("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/default")
        if code == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"no default ServiceAccount in {ns}")


def _without_volume_name(spec: dict[str, Any]) -> dict[str, Any]:
    """The generated kube-api-access-xxxxx name is random: compare the rest."""
    text = json.dumps(spec)
    for v in spec.get("volumes") or []:
        if v["name"].startswith("kube-api-access-"):
            text = text.replace(v["name"], "kube-api-access-*")
    return json.loads(text)


def test_default_plugins_shape_pods_as_upstream(cluster: Cluster, ns: str) -> None:
    _wait_default_sa(cluster, ns)
    for f in ("pod-default-sa.json", "pod-automount-false.json", "pod-own-volume-mount-conflict.json"):
        g = golden(f"serviceaccounts/{f}")
        code, _, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/pods", g["request"]["body"])
        assert code == 201, body
        want = _without_volume_name(g["response"]["body"]["spec"])
        assert _without_volume_name(body["spec"]) == want
        assert body["status"]["qosClass"] == g["response"]["body"]["status"]["qosClass"]


def test_service_account_inherits_pull_secrets_and_missing_account(cluster: Cluster, ns: str) -> None:
    cluster.ok("create", "serviceaccount", "puller", "-n", ns)
    cluster.ok("patch", "serviceaccount", "puller", "-n", ns, "-p", '{"imagePullSecrets":[{"name":"regcred"}]}')
    for f in ("pod-inherits-image-pull-secrets.json", "pod-deprecated-serviceaccount-field.json"):
        g = golden(f"serviceaccounts/{f}")
        code, _, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/pods", g["request"]["body"])
        assert code == 201, body
        assert _without_volume_name(body["spec"]) == _without_volume_name(g["response"]["body"]["spec"])
    g = golden("serviceaccounts/pod-missing-serviceaccount.json")
    code, _, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/pods", g["request"]["body"])
    assert code == 403
    assert body == json.loads(json.dumps(g["response"]["body"]).replace("golden-sa", ns))


def test_automount_false_on_the_account(cluster: Cluster, ns: str) -> None:
    cluster.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts",
                    {"metadata": {"name": "quiet"}, "automountServiceAccountToken": False})
    g = golden("serviceaccounts/pod-sa-automount-false.json")
    code, _, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/pods", g["request"]["body"])
    assert code == 201, body
    assert body["spec"] == g["response"]["body"]["spec"]


def test_limit_ranger_goldens(cluster: Cluster, ns: str) -> None:
    _wait_default_sa(cluster, ns)
    g = golden("admission/limitrange-create.json")
    code, _, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/limitranges", g["request"]["body"])
    assert code == 201, body
    assert body["spec"] == g["response"]["body"]["spec"]
    for f in ("limitrange-defaults-applied.json", "limitrange-partial-defaults.json"):
        g = golden(f"admission/{f}")
        code, _, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/pods", g["request"]["body"])
        assert code == 201, body
        want = g["response"]["body"]
        assert body["metadata"]["annotations"] == want["metadata"]["annotations"]
        assert _without_volume_name(body["spec"]) == _without_volume_name(want["spec"])
        assert body["status"]["qosClass"] == want["status"]["qosClass"]
    g = golden("admission/limitrange-max-exceeded.json")
    code, _, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/pods", g["request"]["body"])
    assert (code, body) == (403, g["response"]["body"])


def test_kubectl_dry_run_runs_admission_without_storing(cluster: Cluster, ns: str) -> None:
    _wait_default_sa(cluster, ns)
    out = cluster.ok("run", "dry", "--image", PAUSE, "-n", ns, "--dry-run=server", "-o", "json")
    pod = json.loads(out)
    assert pod["spec"]["serviceAccountName"] == "default"
    assert any(v["name"].startswith("kube-api-access-") for v in pod["spec"]["volumes"])
    r = cluster.kubectl("get", "pod", "dry", "-n", ns)
    assert r.code != 0 and "NotFound" in r.stderr


def test_immortal_namespace_delete_from_curl(cluster: Cluster) -> None:
    g = golden("admission/delete-kube-system-namespace.json")
    r = cluster.curl("/api/v1/namespaces/kube-system", "-X", "DELETE")
    assert r.code == 403
    assert json.loads(r.stdout) == g["response"]["body"]


def test_flags_order_deny_and_config_file(fresh_cluster: Cluster, tmp_path: Path) -> None:
    conf = tmp_path / "admission.yaml"
    conf.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins: []\n")
    c = fresh_cluster
    c.extra_args = ["--enable-admission-plugins", "AlwaysDeny,AlwaysPullImages,NamespaceAutoProvision",
                    "--disable-admission-plugins", "ServiceAccount", "--admission-control-config-file", str(conf)]
    c.start()
    # NamespaceAutoProvision runs before AlwaysDeny: the namespace is made, the pod refused.
    code, _, body = c.request("POST", "/api/v1/namespaces/auto/pods", _pod("p"))
    assert code == 403
    assert body["message"] == 'pods "p" is forbidden: admission control is denying all modifications'
    assert body["details"] == {"name": "p", "kind": "pods"}
    assert c.request("GET", "/api/v1/namespaces/auto")[0] == 200
    r = c.kubectl("create", "configmap", "x", "-n", "default")
    assert r.code != 0
    assert 'configmaps "x" is forbidden: admission control is denying all modifications' in r.stderr
    # Subresources are admitted too: a pod binding is refused before the pod is even looked up.
    code, _, body = c.request("POST", "/api/v1/namespaces/default/pods/ghost/binding",
                              {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "ghost"},
                               "target": {"kind": "Node", "name": "n1"}})
    assert (code, body["message"]) == (403, 'pods "ghost" is forbidden: admission control is denying all modifications')


def test_pull_policy_tolerations_and_anti_affinity(fresh_cluster: Cluster) -> None:
    c = fresh_cluster
    c.extra_args = ["--enable-admission-plugins",
                    "AlwaysPullImages,ExtendedResourceToleration,LimitPodHardAntiAffinityTopology",
                    "--default-unreachable-toleration-seconds", "60"]
    c.start()
    _wait_default_sa(c, "default")
    pod = _pod("gpu")
    pod["spec"]["containers"][0]["resources"] = {"requests": {"example.com/gpu": "1"},
                                                 "limits": {"example.com/gpu": "1"}}
    code, _, body = c.request("POST", "/api/v1/namespaces/default/pods", pod)
    assert code == 201, body
    assert body["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    assert body["spec"]["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 60},
        {"key": "example.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    anti = _pod("spread", affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"a": "b"}}, "topologyKey": "topology.kubernetes.io/zone"}]}})
    code, _, body = c.request("POST", "/api/v1/namespaces/default/pods", anti)
    assert code == 403
    assert body["message"] == ('pods "spread" is forbidden: affinity.PodAntiAffinity.RequiredDuringScheduling has '
                               'TopologyKey topology.kubernetes.io/zone but only key kubernetes.io/hostname is allowed')


@pytest.mark.parametrize("args, message", [
    (["--enable-admission-plugins", "Bogus"], 'enable-admission-plugins plugin "Bogus" is unknown'),
    (["--admission-control-config-file", "{conf}"], "failed to read plugin config: error converting YAML to JSON"),
])
def test_bad_admission_options_stop_start_up(tmp_path: Path, args: list[str], message: str) -> None:
    conf = tmp_path / "bad.yaml"
    conf.write_text("plugins: [\n")
    c = Cluster(tmp_path / "data", [a.replace("{conf}", str(conf)) for a in args])
    with pytest.raises(RuntimeError) as e:
        c.start()
    assert message in str(e.value)


def test_resource_quota_goldens(cluster: Cluster, ns: str) -> None:
    _wait_default_sa(cluster, ns)
    g = golden("admission/resourcequota-create.json")
    code, _, quota = cluster.request("POST", f"/api/v1/namespaces/{ns}/resourcequotas", g["request"]["body"])
    assert code == 201, quota
    # Admission waits for the ResourceQuota controller's first count (resourcequota-status.json).
    want = golden("admission/resourcequota-status.json")["response"]["body"]["status"]
    for _ in range(300):
        if cluster.request("GET", f"/api/v1/namespaces/{ns}/resourcequotas/tiny")[2].get("status"):
            break
        time.sleep(0.1)
    assert cluster.request("GET", f"/api/v1/namespaces/{ns}/resourcequotas/tiny")[2]["status"] == want
    for f in ("resourcequota-must-specify.json", "resourcequota-first-pod.json", "resourcequota-exceeded.json"):
        g = golden(f"admission/{f}")
        code, _, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/pods", g["request"]["body"])
        assert code == g["response"]["status"], body
        if code == 403:
            assert body == json.loads(json.dumps(g["response"]["body"]).replace("golden-quota", ns))
    # The admitted pod was charged before it was stored.
    used = cluster.request("GET", f"/api/v1/namespaces/{ns}/resourcequotas/tiny")[2]["status"]["used"]
    assert used == {"configmaps": "1", "pods": "1", "requests.cpu": "100m"}
    code, _, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "one"}})
    assert code == 201, body
    g = golden("admission/resourcequota-exceeded-configmaps.json")
    code, _, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps", g["request"]["body"])
    assert (code, body) == (403, json.loads(json.dumps(g["response"]["body"]).replace("golden-quota", ns)))
    r = cluster.kubectl("create", "configmap", "three", "-n", ns)
    assert r.code != 0 and "exceeded quota: tiny, requested: configmaps=1, used: configmaps=2" in r.stderr


def test_event_rate_limit_from_config_file(fresh_cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "erl.yaml").write_text("apiVersion: eventratelimit.admission.k8s.io/v1alpha1\nkind: Configuration\n"
                                       "limits:\n- type: Namespace\n  qps: 1\n  burst: 2\n")
    conf = tmp_path / "admission.yaml"
    conf.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n"
                    "- name: EventRateLimit\n  path: erl.yaml\n")
    c = fresh_cluster
    c.extra_args = ["--enable-admission-plugins", "EventRateLimit", "--admission-control-config-file", str(conf)]
    c.start()
    event = {"metadata": {"generateName": "e-"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
             "reason": "Test", "message": "m"}
    codes = [c.request("POST", "/api/v1/namespaces/default/events", event)[0] for _ in range(2)]
    code, _, body = c.request("POST", "/api/v1/namespaces/default/events", event)
    assert codes == [201, 201]
    assert (code, body) == (429, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": "Too many requests: limit reached on type Namespace for key default",
                                  "reason": "TooManyRequests", "code": 429})
    # A dry run is not limited; another namespace has its own bucket.
    assert c.request("POST", "/api/v1/namespaces/default/events?dryRun=All", event)[0] == 201
    event["involvedObject"]["namespace"] = "kube-system"
    assert c.request("POST", "/api/v1/namespaces/kube-system/events", event)[0] == 201


def test_image_policy_webhook(fresh_cluster: Cluster, tmp_path: Path) -> None:
    from aiohttp import web

    from tests.local_tls import LocalCA, ThreadedServer, server_context

    reviews: list[dict[str, Any]] = []

    async def review(request: web.Request) -> web.Response:
        body = await request.json()
        reviews.append(body)
        bad = [c["image"] for c in body["spec"]["containers"] if "evil" in c["image"]]
        status: dict[str, Any] = {"allowed": not bad, "auditAnnotations": {"checked": "yes"}}
        if bad:
            status["reason"] = f"image {bad[0]} currently blacklisted"
        return web.json_response({"apiVersion": "imagepolicy.k8s.io/v1alpha1", "kind": "ImageReview",
                                  "status": status})

    app = web.Application()
    app.router.add_post("/review", review)
    ca = LocalCA()
    server = ThreadedServer(app, server_context(ca)).start()
    try:
        kubeconfig = tmp_path / "imagepolicy.kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "w", "cluster": {"server": server.url + "/review",
                                                   "certificate-authority": str(ca.write(tmp_path))}}],
            "contexts": [{"name": "c", "context": {"cluster": "w"}}]}))
        conf = tmp_path / "admission.yaml"
        conf.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n"
                        "- name: ImagePolicyWebhook\n  configuration:\n    imagePolicy:\n"
                        f"      kubeConfigFile: {kubeconfig}\n      allowTTL: 50\n      denyTTL: 50\n"
                        "      retryBackoff: 500\n      defaultAllow: false\n")
        c = fresh_cluster
        c.extra_args = ["--enable-admission-plugins", "ImagePolicyWebhook", "--admission-control-config-file",
                        str(conf)]
        c.start()
        _wait_default_sa(c, "default")
        c.ok("run", "good", "--image", PAUSE, "--annotations", "team.image-policy.k8s.io/ticket=42")
        assert reviews[0]["spec"] == {"containers": [{"image": PAUSE}],
                                      "annotations": {"team.image-policy.k8s.io/ticket": "42"},
                                      "namespace": "default"}
        r = c.kubectl("run", "bad", "--image", "example.com/evil:1")
        assert r.code != 0
        assert ('pods "bad" is forbidden: image policy webhook backend denied one or more images: image '
                'example.com/evil:1 currently blacklisted') in r.stderr
    finally:
        server.stop()
    # The service is gone and defaultAllow is false: pods with images not in the cache are refused.
    r = c.kubectl("run", "later", "--image", "nginx:1.27")
    assert r.code != 0 and 'pods "later" is forbidden: Post ' in r.stderr
