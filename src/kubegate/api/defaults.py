"""Upstream's defaulting (SetDefaults_* plus the create-time strategy fields), applied in place.

Returned objects must look like upstream's, so this also materialises what Go's encoder always emits
(non-omitempty structs such as `status: {}` and container `resources: {}`).
"""
from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from kubegate.api.resources import Resource
from kubegate.api.validation.batch import CONTROLLER_UID_LABELS, JOB_NAME_LABELS
from kubegate.api.validation.core import APPARMOR_CONTAINER_PREFIX, apparmor_profile

Defaulter = Callable[[dict[str, Any]], None]

_DEFAULT_MODE = 420  # 0644, the default file mode of secret/configMap/downwardAPI/projected volumes
_MODE_DEFAULTED_SOURCES = frozenset({"secret", "configMap", "downwardAPI", "projected"})
_QOS_RESOURCES = ("cpu", "memory")


def _dict(obj: dict[str, Any], key: str) -> dict[str, Any]:
    v = obj.get(key)
    if not isinstance(v, dict):
        v = {}
        obj[key] = v
    return v


def _items(v: Any) -> list[dict[str, Any]]:
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


# --- pods ----------------------------------------------------------------------------------------

def _pull_policy(image: str) -> str:
    """Always for `:latest` or an untagged image, else IfNotPresent (digests count as tags)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "Always"
    return "Always" if last.rsplit(":", 1)[1] == "latest" else "IfNotPresent"


def _probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    http = probe.get("httpGet")
    if isinstance(http, dict):
        http.setdefault("path", "/")
        http.setdefault("scheme", "HTTP")
    grpc = probe.get("grpc")
    if isinstance(grpc, dict):
        grpc.setdefault("service", "")


def _field_ref(ref: Any) -> None:
    if isinstance(ref, dict):
        ref.setdefault("apiVersion", "v1")


def _container(c: dict[str, Any], host_network: bool) -> None:
    c.setdefault("resources", {})
    res = c["resources"]
    if isinstance(res, dict) and isinstance(res.get("limits"), dict) and res["limits"]:
        # requests default to limits for every resource that has only a limit
        req = _dict(res, "requests")
        for k, v in res["limits"].items():
            req.setdefault(k, v)
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = _pull_policy(str(c.get("image") or ""))
    for p in _items(c.get("ports")):
        p.setdefault("protocol", "TCP")
        if host_network and "hostPort" not in p and "containerPort" in p:
            p["hostPort"] = p["containerPort"]
    for e in _items(c.get("env")):
        vf = e.get("valueFrom")
        if isinstance(vf, dict):
            _field_ref(vf.get("fieldRef"))
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(c.get(key))


def _downward_items(dapi: dict[str, Any]) -> None:
    for item in _items(dapi.get("items")):
        _field_ref(item.get("fieldRef"))


def _volume(v: dict[str, Any]) -> None:
    # A volume names one source: walk its own few keys rather than probing every source that has defaults.
    for key, src in v.items():
        if not isinstance(src, dict):
            continue
        if key in _MODE_DEFAULTED_SOURCES:
            src.setdefault("defaultMode", _DEFAULT_MODE)
            if key == "projected":
                for source in _items(src.get("sources")):
                    tok = source.get("serviceAccountToken")
                    if isinstance(tok, dict):
                        tok.setdefault("expirationSeconds", 3600)
                    dsrc = source.get("downwardAPI")
                    if isinstance(dsrc, dict):
                        _downward_items(dsrc)
            elif key == "downwardAPI":
                _downward_items(src)
        elif key == "hostPath":
            src.setdefault("type", "")
        elif key == "iscsi":
            src.setdefault("iscsiInterface", "default")


def pod_spec(spec: dict[str, Any]) -> None:
    """SetDefaults_PodSpec and the container/volume defaults under it (also used for pod templates)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    host_network = spec.get("hostNetwork") is True
    for key in ("initContainers", "containers"):
        for c in _items(spec.get(key)):
            _container(c, host_network)
    for v in _items(spec.get("volumes")):
        _volume(v)


def _pod_template(spec: dict[str, Any]) -> None:
    template = _dict(spec, "template")
    pod_spec(_dict(template, "spec"))


def qos_class(spec: dict[str, Any]) -> str:
    """GetPodQOS over cpu and memory of all regular and init containers."""
    requests: dict[str, bool] = {}
    limits: dict[str, bool] = {}
    guaranteed = True
    containers = _items(spec.get("containers")) + _items(spec.get("initContainers"))
    for c in containers:
        res = c.get("resources") if isinstance(c.get("resources"), dict) else {}
        req = res.get("requests") if isinstance(res.get("requests"), dict) else {}
        lim = res.get("limits") if isinstance(res.get("limits"), dict) else {}
        for name in _QOS_RESOURCES:
            if name in req and str(req[name]) not in ("0", ""):
                requests[name] = True
            if name in lim and str(lim[name]) not in ("0", ""):
                limits[name] = True
        if not all(name in lim for name in _QOS_RESOURCES):
            guaranteed = False
        elif any(str(req.get(name, lim[name])) != str(lim[name]) for name in _QOS_RESOURCES):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(n) for n in _QOS_RESOURCES):
        return "Guaranteed"
    return "Burstable"


def _pod(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    pod_spec(spec)
    spec.setdefault("enableServiceLinks", True)
    # set at create by the Priority admission plugin when no priorityClassName is given
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    status = _dict(obj, "status")
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", qos_class(spec))


# --- other kinds ---------------------------------------------------------------------------------

def _deployment(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("replicas", 1)
    _pod_template(spec)
    strategy = _dict(spec, "strategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = _dict(strategy, "rollingUpdate")
        ru.setdefault("maxUnavailable", "25%")
        ru.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    obj.setdefault("status", {})


def _replicaset(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("replicas", 1)
    _pod_template(spec)
    # ReplicaSetStatus.replicas is not omitempty
    _dict(obj, "status").setdefault("replicas", 0)


def _statefulset(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = _dict(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        _dict(strategy, "rollingUpdate")
    if strategy["type"] == "RollingUpdate" and isinstance(strategy.get("rollingUpdate"), dict):
        strategy["rollingUpdate"].setdefault("partition", 0)
    policy = _dict(spec, "persistentVolumeClaimRetentionPolicy")
    policy.setdefault("whenDeleted", "Retain")
    policy.setdefault("whenScaled", "Retain")
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("serviceName", "")  # not omitempty in apps/v1
    _pod_template(spec)
    for claim in _items(spec.get("volumeClaimTemplates")):
        _pvc(claim)
    # StatefulSetStatus.replicas and availableReplicas are not omitempty
    status = _dict(obj, "status")
    status.setdefault("replicas", 0)
    status.setdefault("availableReplicas", 0)


def _daemonset(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    strategy = _dict(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = _dict(strategy, "rollingUpdate")
        ru.setdefault("maxUnavailable", 1)
        ru.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _pod_template(spec)
    status = _dict(obj, "status")
    for key in ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady"):
        status.setdefault(key, 0)


def _job_labels(obj: dict[str, Any]) -> None:
    """A Job without labels of its own takes its pod template's."""
    labels = ((_dict(obj, "spec").get("template") or {}).get("metadata") or {}).get("labels")
    meta = _dict(obj, "metadata")
    if isinstance(labels, dict) and not meta.get("labels"):
        meta["labels"] = dict(labels)


def _job(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    _job_labels(obj)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    failure_policy = spec.get("podFailurePolicy")
    if isinstance(failure_policy, dict):
        for rule in _items(failure_policy.get("rules")):
            for pattern in _items(rule.get("onPodConditions")):
                if not pattern.get("status"):
                    pattern["status"] = "True"
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if isinstance(failure_policy, dict) else "TerminatingOrFailed"
    spec.setdefault("manualSelector", False)
    _pod_template(spec)
    obj.setdefault("status", {})


def _cronjob(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    # the job template's pod template gets the pod defaults; its JobSpec is defaulted when a Job is made
    _pod_template(_dict(_dict(spec, "jobTemplate"), "spec"))
    obj.setdefault("status", {})


def _replicationcontroller(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    template = spec.get("template")  # a pointer upstream: an absent template stays absent
    if isinstance(template, dict):
        labels = (template.get("metadata") or {}).get("labels")
        if isinstance(labels, dict):
            if not spec.get("selector"):
                spec["selector"] = dict(labels)
            meta = _dict(obj, "metadata")
            if not meta.get("labels"):
                meta["labels"] = dict(labels)
        pod_spec(_dict(template, "spec"))
    spec.setdefault("replicas", 1)
    _dict(obj, "status").setdefault("replicas", 0)


def _podtemplate(obj: dict[str, Any]) -> None:
    pod_spec(_dict(_dict(obj, "template"), "spec"))


def _secret(obj: dict[str, Any]) -> None:
    # stringData is write-only: conversion folds it into data, overriding keys present in both
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = _dict(obj, "data")
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
    if not obj.get("type"):
        obj["type"] = "Opaque"


def _namespace(obj: dict[str, Any]) -> None:
    meta = _dict(obj, "metadata")
    name = meta.get("name")
    if name:
        # the name label is forced on every write, even if a client set it to something else
        _dict(meta, "labels")["kubernetes.io/metadata.name"] = name
    _dict(obj, "spec")
    status = _dict(obj, "status")
    status.setdefault("phase", "Active")


def _binding(obj: dict[str, Any]) -> None:
    ref = _dict(obj, "roleRef")
    if not ref.get("apiGroup"):
        ref["apiGroup"] = "rbac.authorization.k8s.io"
    for sub in _items(obj.get("subjects")):
        if not sub.get("apiGroup") and sub.get("kind") in ("User", "Group"):
            sub["apiGroup"] = "rbac.authorization.k8s.io"


def _networkpolicy(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("podSelector", {})
    for direction in ("ingress", "egress"):
        for rule in _items(spec.get(direction)):
            for port in _items(rule.get("ports")):
                port.setdefault("protocol", "TCP")
    if not spec.get("policyTypes"):
        types = ["Ingress"]
        if _items(spec.get("egress")):
            types.append("Egress")
        spec["policyTypes"] = types


def _pvc(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("volumeMode", "Filesystem")
    spec.setdefault("resources", {})
    _dict(obj, "status").setdefault("phase", "Pending")


def _pv(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")
    _dict(obj, "status").setdefault("phase", "Pending")


def _storageclass(obj: dict[str, Any]) -> None:
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")


def _limitrange(obj: dict[str, Any]) -> None:
    for item in _items(_dict(obj, "spec").get("limits")):
        if item.get("type") != "Container":
            continue
        default = _dict(item, "default")
        request = _dict(item, "defaultRequest")
        # a missing default limit falls back to max; a missing default request to the limit, then min
        for k, v in (item.get("max") or {}).items():
            default.setdefault(k, v)
        for k, v in default.items():
            request.setdefault(k, v)
        for k, v in (item.get("min") or {}).items():
            request.setdefault(k, v)
        if not default:
            item.pop("default")
        if not request:
            item.pop("defaultRequest")


def _event(obj: dict[str, Any]) -> None:
    # core/v1 Event fields that Go always serialises
    obj.setdefault("involvedObject", {})
    obj.setdefault("source", {})
    for key in ("firstTimestamp", "lastTimestamp", "eventTime"):
        obj.setdefault(key, None)
    obj.setdefault("reportingComponent", "")
    obj.setdefault("reportingInstance", "")


def _node(obj: dict[str, Any]) -> None:
    obj.setdefault("spec", {})
    status = _dict(obj, "status")
    capacity = status.get("capacity")
    if isinstance(capacity, dict) and capacity and not status.get("allocatable"):
        status["allocatable"] = dict(capacity)


def _status_struct(obj: dict[str, Any]) -> None:
    obj.setdefault("status", {})


# --- admissionregistration.k8s.io/v1 ---------------------------------------------------------------

def _rules(rules: Any) -> None:
    for rule in _items(rules):
        rule.setdefault("scope", "*")


def _match_resources(mr: dict[str, Any]) -> None:
    mr.setdefault("namespaceSelector", {})
    mr.setdefault("objectSelector", {})
    mr.setdefault("matchPolicy", "Equivalent")
    _rules(mr.get("resourceRules"))
    _rules(mr.get("excludeResourceRules"))


def _webhook_configuration(obj: dict[str, Any], mutating: bool = False) -> None:
    for hook in _items(obj.get("webhooks")):
        hook.setdefault("failurePolicy", "Fail")
        hook.setdefault("matchPolicy", "Equivalent")
        hook.setdefault("namespaceSelector", {})
        hook.setdefault("objectSelector", {})
        hook.setdefault("timeoutSeconds", 10)
        _rules(hook.get("rules"))
        service = hook.get("clientConfig", {}).get("service") if isinstance(hook.get("clientConfig"), dict) else None
        if isinstance(service, dict):
            service.setdefault("port", 443)
        if mutating:
            hook.setdefault("reinvocationPolicy", "Never")


def _mutating_webhook_configuration(obj: dict[str, Any]) -> None:
    _webhook_configuration(obj, mutating=True)


def _validating_admission_policy(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("failurePolicy", "Fail")
    if isinstance(spec.get("matchConstraints"), dict):
        _match_resources(spec["matchConstraints"])
    obj.setdefault("status", {})


def _validating_admission_policy_binding(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if isinstance(spec.get("matchResources"), dict):
        _match_resources(spec["matchResources"])


_DEFAULTERS: dict[tuple[str, str], Defaulter] = {
    ("", "Pod"): _pod,
    ("", "Secret"): _secret,
    ("", "Namespace"): _namespace,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "PersistentVolume"): _pv,
    ("", "LimitRange"): _limitrange,
    ("", "ResourceQuota"): _status_struct,
    ("", "Event"): _event,
    ("", "Node"): _node,
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replicaset,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cronjob,
    ("", "ReplicationController"): _replicationcontroller,
    ("", "PodTemplate"): _podtemplate,
    ("rbac.authorization.k8s.io", "RoleBinding"): _binding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _binding,
    ("networking.k8s.io", "NetworkPolicy"): _networkpolicy,
    ("storage.k8s.io", "StorageClass"): _storageclass,
    ("certificates.k8s.io", "CertificateSigningRequest"): _status_struct,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): _mutating_webhook_configuration,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): _webhook_configuration,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): _validating_admission_policy,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): _validating_admission_policy_binding,
}


def apply_defaults(resource: Resource, obj: dict[str, Any]) -> None:
    """Default `obj` (wire JSON form) in place. Kinds without upstream defaults are left alone."""
    fn = _DEFAULTERS.get((resource.group, resource.kind))
    if fn is not None:
        fn(obj)


# --- create-time strategy (PrepareForCreate), after mutating admission ----------------------------

def _apparmor_annotation_for_field(profile: dict[str, Any]) -> str:
    t = profile.get("type")
    if t == "Unconfined":
        return "unconfined"
    if t == "RuntimeDefault":
        return "runtime/default"
    if t == "Localhost" and profile.get("localhostProfile") is not None:
        return "localhost/" + str(profile["localhostProfile"])
    return ""


def _apparmor_field_for_annotation(annotation: str) -> dict[str, Any] | None:
    if annotation == "unconfined":
        return {"type": "Unconfined"}
    if annotation == "runtime/default":
        return {"type": "RuntimeDefault"}
    if annotation.startswith("localhost/") and annotation != "localhost/":
        return {"type": "Localhost", "localhostProfile": annotation[len("localhost/"):]}
    return None


def apparmor_version_skew(obj: dict[str, Any]) -> None:
    """The pod strategy's applyAppArmorVersionSkew: each container's AppArmor annotation and field are
    made to agree (a field without its annotation gets one, an annotation without a field gives the
    container one unless the pod-level profile already says the same), so nodes of either age enforce it."""
    spec = obj.get("spec")
    if not isinstance(spec, dict) or (spec.get("os") or {}).get("name") == "windows":
        return
    pod_profile = (spec.get("securityContext") or {}).get("appArmorProfile")
    meta = obj.setdefault("metadata", {})
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in _items(spec.get(key)):
            name = APPARMOR_CONTAINER_PREFIX + str(c.get("name") or "")
            annotations = meta.get("annotations") or {}
            profile = (c.get("securityContext") or {}).get("appArmorProfile")
            if name not in annotations:
                source = profile if profile is not None else pod_profile
                value = _apparmor_annotation_for_field(source) if isinstance(source, dict) else ""
                if value:
                    meta.setdefault("annotations", {})[name] = value
            elif profile is None:
                field = _apparmor_field_for_annotation(str(annotations[name]))
                if field is not None and not apparmor_profile("", field) and field != pod_profile:
                    sc = c.get("securityContext")
                    if not isinstance(sc, dict):
                        sc = c["securityContext"] = {}
                    sc["appArmorProfile"] = field


DAEMONSET_TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


def _job_selector(obj: dict[str, Any]) -> None:
    """The job strategy's generateSelector (unless manualSelector): the template is labelled with the Job's
    name and uid, and the selector matches the uid. Labels the user already set are kept (validation
    then refuses a conflict). The Job's own labels are then defaulted again, as the stored object is."""
    spec = _dict(obj, "spec")
    if spec.get("manualSelector") is True:
        return
    meta = _dict(obj, "metadata")
    labels = _dict(_dict(_dict(spec, "template"), "metadata"), "labels")
    for key in JOB_NAME_LABELS:
        labels.setdefault(key, str(meta.get("name") or ""))
    for key in CONTROLLER_UID_LABELS:
        labels.setdefault(key, str(meta.get("uid") or ""))
    _dict(_dict(spec, "selector"), "matchLabels").setdefault(CONTROLLER_UID_LABELS[1], str(meta.get("uid") or ""))
    _job_labels(obj)


def _daemonset_template_generation(obj: dict[str, Any]) -> None:
    """apps/v1 carries the internal spec.templateGeneration (1 on create) in an annotation."""
    _dict(_dict(obj, "metadata"), "annotations")[DAEMONSET_TEMPLATE_GENERATION] = "1"


_CREATE_STRATEGIES: dict[tuple[str, str], Defaulter] = {
    ("", "Pod"): apparmor_version_skew,
    ("batch", "Job"): _job_selector,
    ("apps", "DaemonSet"): _daemonset_template_generation,
}


def prepare_for_create(resource: Resource, obj: dict[str, Any]) -> None:
    """What upstream's strategies set on create only, once admission has mutated the object."""
    fn = _CREATE_STRATEGIES.get((resource.group, resource.kind))
    if fn is not None:
        fn(obj)


def prepare_for_update(resource: Resource, obj: dict[str, Any], old: dict[str, Any]) -> None:
    """What upstream's strategies set on update: a DaemonSet's template generation is the server's,
    one more than before when the pod template changed."""
    if (resource.group, resource.kind) != ("apps", "DaemonSet"):
        return
    old_meta = old.get("metadata") or {}
    try:
        generation = int((old_meta.get("annotations") or {}).get(DAEMONSET_TEMPLATE_GENERATION, "0"))
    except ValueError:
        generation = 0
    if (obj.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template"):
        generation += 1
    meta = _dict(obj, "metadata")
    if generation:
        _dict(meta, "annotations")[DAEMONSET_TEMPLATE_GENERATION] = str(generation)
    elif isinstance(meta.get("annotations"), dict):
        meta["annotations"].pop(DAEMONSET_TEMPLATE_GENERATION, None)
