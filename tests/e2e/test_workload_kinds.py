"""StatefulSet, DaemonSet, Job, CronJob, ReplicationController and PodTemplate through a real server:
kubectl apply/get, Pod Security warnings on their templates, upstream's 422s, RBAC and garbage collection."""
from __future__ import annotations

import json
import time
from typing import Any

from tests.e2e.cluster import Cluster

PRIVILEGED = 'would violate PodSecurity "baseline:latest": privileged (container "c" must not set ' \
             'securityContext.privileged=true)'


def _pod_template(labels: dict[str, str], restart: str = "Always", privileged: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "nginx:1.27"}
    if privileged:
        container["securityContext"] = {"privileged": True}
    return {"metadata": {"labels": labels}, "spec": {"restartPolicy": restart, "containers": [container]}}


def _manifests(privileged: bool = False) -> list[dict[str, Any]]:
    sel = {"matchLabels": {"app": "w"}}
    labels = {"app": "w"}
    return [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "sts"},
         "spec": {"serviceName": "sts", "replicas": 2, "selector": sel,
                  "template": _pod_template(labels, privileged=privileged)}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ds"},
         "spec": {"selector": sel, "template": _pod_template(labels, privileged=privileged)}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "job"},
         "spec": {"template": _pod_template({}, "Never", privileged)}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
         "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {
             "template": _pod_template({}, "OnFailure", privileged)}}}},
        {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
         "spec": {"template": _pod_template(labels, privileged=privileged)}},
        {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "pt"},
         "template": _pod_template(labels, privileged=privileged)},
    ]


def _apply(cluster: Cluster, ns: str, obj: dict[str, Any]) -> Any:
    return cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj))


def _headers(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines() if line.startswith("NAME")]


def test_apply_get_and_columns(cluster: Cluster, ns: str) -> None:
    for obj in _manifests():
        r = _apply(cluster, ns, obj)
        assert r.code == 0, r.stderr
    out = cluster.ok("get", "-n", ns, "sts,ds,job,cj,rc,podtemplates")
    assert _headers(out) == [
        ["NAME", "READY", "AGE"],
        ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE", "SELECTOR", "AGE"],
        ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
        ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"],
        ["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
        ["NAME", "CONTAINERS", "IMAGES", "POD", "LABELS"],
    ]
    rows = {line.split()[0]: line.split() for line in out.splitlines() if not line.startswith("NAME") and line}
    assert rows["statefulset.apps/sts"][1] == "0/2"
    assert rows["job.batch/job"][1:3] == ["Running", "0/1"]
    assert rows["cronjob.batch/cj"][1:5] == ["*/5", "*", "*", "*"]
    assert rows["replicationcontroller/rc"][1:4] == ["1", "0", "0"]
    # the category "all" names the new kinds too
    assert "statefulset.apps/sts" in cluster.ok("get", "-n", ns, "all", "-o", "name")
    job = json.loads(cluster.ok("get", "-n", ns, "job", "job", "-o", "json"))
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert job["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "job"
    assert (job["spec"]["backoffLimit"], job["spec"]["completionMode"]) == (6, "NonIndexed")
    ds = json.loads(cluster.ok("get", "-n", ns, "ds", "ds", "-o", "json"))
    assert ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"
    # the scale subresource of a ReplicationController selects by its label map
    cluster.ok("scale", "-n", ns, "rc", "rc", "--replicas=3")
    status, _, scale = cluster.request("GET", f"/api/v1/namespaces/{ns}/replicationcontrollers/rc/scale")
    assert status == 200 and scale["spec"]["replicas"] == 3 and scale["status"]["selector"] == "app=w"


def test_pod_security_warns_for_each_template_and_never_blocks(cluster: Cluster, ns: str) -> None:
    cluster.ok("label", "namespace", ns, "pod-security.kubernetes.io/warn=baseline",
               "pod-security.kubernetes.io/enforce=baseline")
    for obj in _manifests(privileged=True):
        r = _apply(cluster, ns, obj)
        assert r.code == 0, r.stderr
        assert f"Warning: {PRIVILEGED}" in r.stderr, (obj["kind"], r.stderr)


def test_bad_cron_schedule_is_refused_with_422(cluster: Cluster, ns: str) -> None:
    cj = _manifests()[3]
    cj["spec"]["schedule"] = "61 * * * *"
    status, _, body = cluster.request("POST", f"/apis/batch/v1/namespaces/{ns}/cronjobs", cj)
    assert status == 422
    assert body["reason"] == "Invalid"
    assert body["details"] == {"name": "cj", "group": "batch", "kind": "CronJob", "causes": [{
        "reason": "FieldValueInvalid", "field": "spec.schedule",
        "message": 'Invalid value: "61 * * * *": end of range (61) above maximum (59): 61'}]}
    assert body["message"] == ('CronJob.batch "cj" is invalid: spec.schedule: Invalid value: "61 * * * *": end of '
                               'range (61) above maximum (59): 61')


def test_selector_mismatch_and_job_restart_policy_are_refused(cluster: Cluster, ns: str) -> None:
    sts = _manifests()[0]
    sts["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    r = _apply(cluster, ns, sts)
    assert r.code != 0
    assert ('The StatefulSet "sts" is invalid: spec.template.metadata.labels: Invalid value: {"app":"w"}: '
            '`selector` does not match template `labels`') in r.stderr
    job = _manifests()[2]
    job["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    r = _apply(cluster, ns, job)
    assert r.code != 0
    assert 'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"' in r.stderr


def test_statefulset_update_rules(cluster: Cluster, ns: str) -> None:
    assert _apply(cluster, ns, _manifests()[0]).code == 0
    cluster.ok("scale", "-n", ns, "sts", "sts", "--replicas=4")
    r = cluster.kubectl("patch", "-n", ns, "sts", "sts", "--type=merge", "-p", '{"spec":{"serviceName":"x"}}')
    assert r.code != 0
    assert ("spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
            "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
            "forbidden") in r.stderr


def test_edit_role_may_create_workloads(cluster: Cluster, ns: str) -> None:
    cluster.ok("create", "rolebinding", "wk-edit", "-n", ns, "--clusterrole=edit", "--user=wk-editor")
    for resource in ("statefulsets", "daemonsets.apps", "jobs.batch", "cronjobs", "replicationcontrollers",
                     "statefulsets/scale"):
        assert cluster.ok("auth", "can-i", "create" if "/" not in resource else "update", resource, "-n", ns,
                          "--as", "wk-editor").strip() == "yes", resource
    # upstream's aggregated edit role names no podtemplates
    assert cluster.kubectl("auth", "can-i", "create", "podtemplates", "-n", ns, "--as", "wk-editor").stdout.strip() \
        == "no"


def test_garbage_collector_removes_jobs_of_a_deleted_cronjob(cluster: Cluster, ns: str) -> None:
    assert _apply(cluster, ns, _manifests()[3]).code == 0
    cj = json.loads(cluster.ok("get", "-n", ns, "cronjob", "cj", "-o", "json"))
    job = _manifests()[2]
    job["metadata"]["name"] = "cj-1"
    job["metadata"]["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "cj",
                                           "uid": cj["metadata"]["uid"], "controller": True}]
    assert _apply(cluster, ns, job).code == 0
    cluster.ok("delete", "-n", ns, "cronjob", "cj", "--wait=false")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if cluster.kubectl("get", "-n", ns, "job", "cj-1").code != 0:
            break
        time.sleep(0.2)
    r = cluster.kubectl("get", "-n", ns, "job", "cj-1")
    assert r.code != 0 and "NotFound" in r.stderr
