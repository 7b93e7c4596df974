"""Pod Security configured through --admission-control-config-file (defaults and exemptions), and the
security-context validation and AppArmor annotation sync that pods get on create, on a real server."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.e2e.cluster import Cluster

CONFIG = """apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults:
      enforce: baseline
      enforce-version: latest
      warn: restricted
      warn-version: v1.30
    exemptions:
      usernames: [ci-bot]
      namespaces: [exempt-ns]
      runtimeClasses: [kata]
"""
PRIVILEGED = """apiVersion: v1
kind: Pod
metadata: {name: priv}
spec:
  %s
  containers:
  - {name: app, image: registry.k8s.io/pause:3.10, securityContext: {privileged: true}}
"""
PLAIN = """apiVersion: v1
kind: Pod
metadata: {name: plain}
spec:
  containers:
  - {name: app, image: registry.k8s.io/pause:3.10}
"""


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("psa-config")
    conf = base / "admission.yaml"
    conf.write_text(CONFIG)
    c = Cluster(base / "data", extra_args=["--admission-control-config-file", str(conf)]).start()
    yield c
    c.stop()


def _ns(c: Cluster, name: str, *labels: str) -> str:
    c.ok("create", "namespace", name)
    if labels:
        c.ok("label", "namespace", name, *labels)
    return name


def test_defaults_apply_to_unlabelled_namespaces(configured: Cluster) -> None:
    ns = _ns(configured, "plain-ns")
    r = configured.kubectl("-n", ns, "apply", "-f", "-", input=PRIVILEGED % "")
    assert r.code != 0
    assert ('pods "priv" is forbidden: violates PodSecurity "baseline:latest": privileged (container "app" must '
            'not set securityContext.privileged=true)') in r.stderr
    r = configured.kubectl("-n", ns, "apply", "-f", "-", input=PLAIN)
    assert r.code == 0, r.stderr
    assert 'Warning: would violate PodSecurity "restricted:v1.30": allowPrivilegeEscalation != false' in r.stderr


def test_namespace_labels_override_the_defaults(configured: Cluster) -> None:
    ns = _ns(configured, "labelled-privileged", "pod-security.kubernetes.io/enforce=privileged",
             "pod-security.kubernetes.io/warn=privileged")
    r = configured.kubectl("-n", ns, "apply", "-f", "-", input=PRIVILEGED % "")
    assert r.code == 0 and "Warning" not in r.stderr, r.stderr


def test_exempt_namespace_user_and_runtime_class(configured: Cluster) -> None:
    exempt = _ns(configured, "exempt-ns")
    configured.ok("-n", exempt, "apply", "-f", "-", input=PRIVILEGED % "")

    ns = _ns(configured, "exemptions")
    r = configured.kubectl("-n", ns, "apply", "-f", "-", input=PRIVILEGED % "runtimeClassName: kata")
    assert r.code == 0, r.stderr
    configured.ok("-n", ns, "delete", "pod", "priv")
    r = configured.kubectl("-n", ns, "apply", "-f", "-", input=PRIVILEGED % "runtimeClassName: gvisor")
    assert r.code != 0 and 'violates PodSecurity "baseline:latest"' in r.stderr

    configured.ok("-n", ns, "create", "rolebinding", "bots", "--clusterrole=admin", "--user=ci-bot",
                  "--user=someone")
    bot = configured.kubeconfig_for("ci-bot")
    r = configured.kubectl("-n", ns, "apply", "-f", "-", input=PRIVILEGED % "", kubeconfig=bot)
    assert r.code == 0, r.stderr
    configured.ok("-n", ns, "delete", "pod", "priv")
    r = configured.kubectl("-n", ns, "apply", "-f", "-", input=PRIVILEGED % "",
                           kubeconfig=configured.kubeconfig_for("someone"))
    assert r.code != 0 and 'violates PodSecurity "baseline:latest"' in r.stderr


def _pod(name: str, csc: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10", "securityContext": csc}]}}


def test_apparmor_field_and_annotation_are_synced_on_create(configured: Cluster) -> None:
    ns = _ns(configured, "apparmor", "pod-security.kubernetes.io/warn=privileged")
    status, _, body = configured.request("POST", f"/api/v1/namespaces/{ns}/pods",
                                         _pod("field", {"appArmorProfile": {"type": "Localhost",
                                                                            "localhostProfile": "k8s-nginx"}}))
    assert status == 201, body
    assert body["metadata"]["annotations"] == {"container.apparmor.security.beta.kubernetes.io/app": "localhost/k8s-nginx"}
    status, _, body = configured.request(
        "POST", f"/api/v1/namespaces/{ns}/pods",
        _pod("annotation", {}, {"container.apparmor.security.beta.kubernetes.io/app": "runtime/default"}))
    assert status == 201, body
    assert body["spec"]["containers"][0]["securityContext"] == {"appArmorProfile": {"type": "RuntimeDefault"}}


def test_bad_security_contexts_are_refused_with_upstreams_causes(configured: Cluster) -> None:
    ns = _ns(configured, "badsc", "pod-security.kubernetes.io/warn=privileged")
    status, _, body = configured.request(
        "POST", f"/api/v1/namespaces/{ns}/pods",
        _pod("bad", {"seccompProfile": {"type": "Localhost"}, "runAsUser": -1,
                     "appArmorProfile": {"type": "RuntimeDefault"}},
             {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}))
    assert status == 422, body
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"] == [
        {"reason": "FieldValueInvalid", "message": "Invalid value: -1: must be between 0 and 2147483647, inclusive",
         "field": "spec.containers[0].securityContext.runAsUser"},
        {"reason": "FieldValueRequired", "message": "Required value: must be set when seccomp type is Localhost",
         "field": "spec.containers[0].securityContext.seccompProfile.localhostProfile"},
        {"reason": "FieldValueForbidden", "message": "Forbidden: apparmor type in annotation and field must match",
         "field": "spec.containers[0].securityContext.appArmorProfile.type"},
    ]
    r = configured.kubectl("-n", ns, "run", "um", "--image=registry.k8s.io/pause:3.10", "--overrides",
                           '{"spec":{"containers":[{"name":"um","image":"registry.k8s.io/pause:3.10",'
                           '"securityContext":{"procMount":"Unmasked"}}]}}')
    assert r.code != 0
    assert ('spec.containers[0].securityContext.procMount: Invalid value: "Unmasked": `hostUsers` must be false to '
            'use `Unmasked`') in r.stderr


def test_unparsable_pod_security_configuration_stops_start_up(tmp_path: Path) -> None:
    conf = tmp_path / "admission.yaml"
    conf.write_text(CONFIG.replace("enforce: baseline", "enforce: strict"))
    c = Cluster(tmp_path / "data", extra_args=["--admission-control-config-file", str(conf)])
    with pytest.raises(RuntimeError) as e:
        c.start()
    assert "strict" in str(e.value)
