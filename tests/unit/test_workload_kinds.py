"""StatefulSet, DaemonSet, Job, CronJob, ReplicationController and PodTemplate: defaulting, validation,
tables and warnings as upstream's strategies give them."""
from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import pytest

from kubegate.api import defaults, tables, validation, warnings
from kubegate.api.resources import Resource, lookup
from kubegate.api.validation.cron import parse_standard

UID = "0b7e1c1e-1111-2222-3333-444455556666"


def _r(group: str, plural: str) -> Resource:
    r = lookup(group, "v1", plural)
    assert r is not None
    return r


STS, DS = _r("apps", "statefulsets"), _r("apps", "daemonsets")
JOB, CJ = _r("batch", "jobs"), _r("batch", "cronjobs")
RC, PT = _r("", "replicationcontrollers"), _r("", "podtemplates")


def _template(labels: dict[str, str] | None = None, restart: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx:1.27"}]}
    if restart:
        spec["restartPolicy"] = restart
    meta = {"labels": labels} if labels is not None else {}
    return {"metadata": meta, "spec": spec}


def _workload(kind: str, spec: dict[str, Any], name: str = "w") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "uid": UID}, "spec": spec, "kind": kind}


def _created(r: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    """What the registry does before validation on create: defaults, then the create strategy."""
    defaults.apply_defaults(r, obj)
    defaults.prepare_for_create(r, obj)
    return obj


def _messages(r: Resource, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    return [f"{c.field}: {c.message}" for c in validation.validate(r, obj, old)]


# --- defaulting ------------------------------------------------------------------------------------

def test_statefulset_defaults() -> None:
    obj = _created(STS, _workload("StatefulSet", {"selector": {"matchLabels": {"a": "b"}},
                                                  "template": _template({"a": "b"}),
                                                  "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                                                            "spec": {}}]}))
    spec = obj["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert (spec["replicas"], spec["revisionHistoryLimit"]) == (1, 10)
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert spec["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert spec["volumeClaimTemplates"][0]["spec"]["volumeMode"] == "Filesystem"
    assert spec["volumeClaimTemplates"][0]["status"] == {"phase": "Pending"}
    assert obj["status"] == {"replicas": 0, "availableReplicas": 0}
    assert _messages(STS, obj) == []


def test_statefulset_ondelete_gets_no_rolling_update() -> None:
    obj = _created(STS, _workload("StatefulSet", {"selector": {"matchLabels": {"a": "b"}},
                                                  "updateStrategy": {"type": "OnDelete"},
                                                  "template": _template({"a": "b"})}))
    assert obj["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_daemonset_defaults_and_template_generation() -> None:
    obj = _created(DS, _workload("DaemonSet", {"selector": {"matchLabels": {"a": "b"}},
                                               "template": _template({"a": "b"})}))
    assert obj["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                             "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert obj["spec"]["revisionHistoryLimit"] == 10
    assert obj["metadata"]["annotations"] == {"deprecated.daemonset.template.generation": "1"}
    assert obj["status"] == {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                             "numberReady": 0}
    assert _messages(DS, obj) == []
    same = copy.deepcopy(obj)
    defaults.prepare_for_update(DS, same, obj)
    assert same["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"
    changed = copy.deepcopy(obj)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    defaults.prepare_for_update(DS, changed, obj)
    assert changed["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "2"


def test_job_defaults_and_generated_selector() -> None:
    obj = _created(JOB, _workload("Job", {"template": _template(restart="Never")}, name="pi"))
    spec = obj["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False and spec["manualSelector"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}}
    want = {"job-name": "pi", "batch.kubernetes.io/job-name": "pi", "controller-uid": UID,
            "batch.kubernetes.io/controller-uid": UID}
    assert spec["template"]["metadata"]["labels"] == want
    assert obj["metadata"]["labels"] == want  # a Job without labels takes its template's
    assert obj["status"] == {}
    assert _messages(JOB, obj) == []


def test_job_parallelism_only_and_failure_policy() -> None:
    obj = _created(JOB, _workload("Job", {"parallelism": 3, "podFailurePolicy": {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
        "template": _template(restart="Never")}))
    spec = obj["spec"]
    assert "completions" not in spec and spec["parallelism"] == 3
    assert spec["podReplacementPolicy"] == "Failed"
    assert spec["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"


def test_cronjob_defaults() -> None:
    obj = _created(CJ, _workload("CronJob", {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {
        "template": _template(restart="OnFailure")}}}))
    spec = obj["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"]) == ("Allow", False)
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 1)
    job_spec = spec["jobTemplate"]["spec"]
    assert "backoffLimit" not in job_spec  # JobSpec defaults apply to Jobs, not to the template
    assert job_spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    assert _messages(CJ, obj) == []


def test_replicationcontroller_defaults_selector_and_labels() -> None:
    obj = _created(RC, _workload("ReplicationController", {"template": _template({"app": "web"})}))
    assert obj["spec"]["selector"] == {"app": "web"}
    assert obj["metadata"]["labels"] == {"app": "web"}
    assert obj["spec"]["replicas"] == 1
    assert obj["status"] == {"replicas": 0}
    assert _messages(RC, obj) == []


def test_podtemplate_defaults() -> None:
    obj = _created(PT, {"metadata": {"name": "pt", "namespace": "ns"}, "template": _template({"a": "b"})})
    assert obj["template"]["spec"]["terminationGracePeriodSeconds"] == 30
    assert _messages(PT, obj) == []


# --- validation ------------------------------------------------------------------------------------

@pytest.mark.parametrize("r,kind", [(STS, "StatefulSet"), (DS, "DaemonSet")])
def test_selector_must_match_template(r: Resource, kind: str) -> None:
    obj = _created(r, _workload(kind, {"selector": {"matchLabels": {"app": "x"}}, "template": _template({"app": "y"})}))
    assert _messages(r, obj) == [
        'spec.template.metadata.labels: Invalid value: {"app":"y"}: `selector` does not match template `labels`']


def test_rc_selector_mismatch_and_restart_policy() -> None:
    obj = _created(RC, _workload("ReplicationController", {"selector": {"app": "x"},
                                                           "template": _template({"app": "y"}, "Never")}))
    assert _messages(RC, obj) == [
        'spec.template.metadata.labels: Invalid value: {"app":"y"}: `selector` does not match template `labels`',
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"']


def test_job_restart_policy_rules() -> None:
    obj = _created(JOB, _workload("Job", {"template": _template()}))
    assert _messages(JOB, obj) == ['spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", '
                                   '"Never"']
    obj = _created(JOB, _workload("Job", {"template": _template(restart="OnFailure"),
                                          "podFailurePolicy": {"rules": []}}))
    assert _messages(JOB, obj) == ['spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is '
                                   'supported when podFailurePolicy is specified']


def test_job_selector_not_generated_and_manual() -> None:
    obj = _created(JOB, _workload("Job", {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "x"}},
                                          "template": _template(restart="Never")}))
    msgs = _messages(JOB, obj)
    assert 'spec.selector: Invalid value: {"matchLabels":{"batch.kubernetes.io/controller-uid":"x"}}: `selector` ' \
           'not auto-generated' in msgs
    manual = _created(JOB, _workload("Job", {"manualSelector": True, "selector": {"matchLabels": {"app": "j"}},
                                             "template": _template({"app": "j"}, "Never")}))
    assert "batch.kubernetes.io/controller-uid" not in manual["spec"]["template"]["metadata"]["labels"]
    assert _messages(JOB, manual) == []


def test_job_template_immutable_but_scheduling_directives_of_a_suspended_job() -> None:
    old = _created(JOB, _workload("Job", {"suspend": True, "template": _template(restart="Never")}))
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "a"}
    assert _messages(JOB, new, old) == []
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox"
    msgs = _messages(JOB, new, old)
    assert len(msgs) == 1 and msgs[0].startswith("spec.template: Invalid value: ")
    assert msgs[0].endswith(": field is immutable")


def test_statefulset_update_forbidden_fields() -> None:
    old = _created(STS, _workload("StatefulSet", {"selector": {"matchLabels": {"a": "b"}},
                                                  "template": _template({"a": "b"})}))
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 3
    assert _messages(STS, new, old) == []
    new["spec"]["serviceName"] = "other"
    assert _messages(STS, new, old) == [
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
        "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"]


def test_statefulset_name_is_a_dns_label() -> None:
    obj = _created(STS, _workload("StatefulSet", {"selector": {"matchLabels": {"a": "b"}},
                                                  "template": _template({"a": "b"})}, name="a.b"))
    assert _messages(STS, obj) == ['metadata.name: Invalid value: "a.b": must not contain dots']


def test_daemonset_rolling_update_rules() -> None:
    obj = _created(DS, _workload("DaemonSet", {"selector": {"matchLabels": {"a": "b"}},
                                               "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
                                                   "maxUnavailable": 0, "maxSurge": 0}},
                                               "template": _template({"a": "b"})}))
    assert _messages(DS, obj) == ["spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 "
                                  "when maxSurge is 0"]


@pytest.mark.parametrize("schedule,error", [
    ("*/5 * * * *", ""),
    ("@hourly", ""),
    ("@every 1h30m", ""),
    ("0 0 1 jan-mar mon-fri", ""),
    ("bad", "expected exactly 5 fields, found 1: [bad]"),
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("61 * * * *", "end of range (61) above maximum (59): 61"),
    ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
    ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("@every x", 'failed to parse duration @every x: time: invalid duration "x"'),
    ("", "empty spec string"),
])
def test_cron_parser(schedule: str, error: str) -> None:
    assert parse_standard(schedule) == error


def test_cronjob_validation() -> None:
    obj = _created(CJ, _workload("CronJob", {"schedule": "bad", "timeZone": "Mars/Base",
                                             "jobTemplate": {"spec": {"template": _template(restart="Never")}}}))
    assert _messages(CJ, obj) == ['spec.schedule: Invalid value: "bad": expected exactly 5 fields, found 1: [bad]',
                                  'spec.timeZone: Invalid value: "Mars/Base": unknown time zone Mars/Base']
    obj = _created(CJ, _workload("CronJob", {"schedule": "TZ=UTC 0 * * * *",
                                             "jobTemplate": {"spec": {"template": _template(restart="Never")}}}))
    assert _messages(CJ, obj) == ['spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in '
                                  'schedule, use timeZone field instead']
    obj = _created(CJ, _workload("CronJob", {"schedule": "@daily", "jobTemplate": {"spec": {
        "selector": {"matchLabels": {"a": "b"}}, "template": _template({"a": "b"}, "Never")}}}, name="n" * 53))
    assert _messages(CJ, obj) == [
        'spec.jobTemplate.spec.selector: Invalid value: {"matchLabels":{"a":"b"}}: `selector` will be auto-generated',
        f'metadata.name: Invalid value: "{"n" * 53}": must be no more than 52 characters']


# --- tables and warnings ---------------------------------------------------------------------------

NOW = datetime(2025, 1, 1, 0, 10, tzinfo=timezone.utc)
CREATED = "2025-01-01T00:00:00Z"


def _names(r: Resource) -> list[str]:
    return [c.name for c in tables.columns_for(r)]


def _cells(r: Resource, obj: dict[str, Any]) -> list[Any]:
    obj["metadata"]["creationTimestamp"] = CREATED
    return tables.to_table(r, [obj], list_meta={}, now=NOW)["rows"][0]["cells"]


def test_table_columns_and_cells() -> None:
    assert _names(STS) == ["Name", "Ready", "Age", "Containers", "Images"]
    assert _names(DS) == ["Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age",
                          "Containers", "Images", "Selector"]
    assert _names(JOB) == ["Name", "Status", "Completions", "Duration", "Age", "Containers", "Images", "Selector"]
    assert _names(CJ) == ["Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age", "Containers",
                          "Images", "Selector"]
    assert _names(RC) == ["Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"]
    assert _names(PT) == ["Name", "Containers", "Images", "Pod Labels"]
    sts = _created(STS, _workload("StatefulSet", {"replicas": 3, "selector": {"matchLabels": {"a": "b"}},
                                                  "template": _template({"a": "b"})}))
    assert _cells(STS, sts) == ["w", "0/3", "10m", "c", "nginx:1.27"]
    job = _created(JOB, _workload("Job", {"template": _template(restart="Never")}))
    job["status"] = {"startTime": "2025-01-01T00:01:00Z", "completionTime": "2025-01-01T00:01:30Z", "succeeded": 1,
                     "conditions": [{"type": "Complete", "status": "True"}]}
    assert _cells(JOB, job)[:5] == ["w", "Complete", "1/1", "30s", "10m"]
    cj = _created(CJ, _workload("CronJob", {"schedule": "@hourly", "jobTemplate": {"spec": {
        "template": _template(restart="Never")}}}))
    assert _cells(CJ, cj)[:7] == ["w", "@hourly", "<none>", "False", 0, "<none>", "10m"]
    rc = _created(RC, _workload("ReplicationController", {"template": _template({"b": "2", "a": "1"})}))
    assert _cells(RC, rc) == ["w", 1, 0, 0, "10m", "c", "nginx:1.27", "a=1,b=2"]


def test_template_warnings_for_each_kind() -> None:
    bad_template = _template({"a": "b"}, "Always")
    bad_template["spec"]["nodeSelector"] = {"beta.kubernetes.io/os": "linux"}
    cases = [(STS, {"selector": {"matchLabels": {"a": "b"}}, "template": bad_template}, "spec.template"),
             (JOB, {"template": bad_template}, "spec.template"),
             (CJ, {"schedule": "@daily", "jobTemplate": {"spec": {"template": bad_template}}},
              "spec.jobTemplate.spec.template")]
    for r, spec, path in cases:
        obj = _workload(r.kind, copy.deepcopy(spec), name="has.dot")
        got = warnings.for_write(r, obj, None)
        assert any(w.startswith(f"{path}.spec.nodeSelector[beta.kubernetes.io/os]: deprecated") for w in got), got
        named = any(w.startswith("metadata.name: this is used in Pod names") for w in got)
        assert named is (r.kind != "StatefulSet")
