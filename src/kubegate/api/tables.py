"""Server-side Tables (meta.k8s.io Table) as `kubectl get` asks for them, and PartialObjectMetadataList.

Columns and cells follow upstream's printers (pkg/printers/internalversion/printers.go) with the
server's options (always wide: priority-1 columns carry cells too). Kinds without a printer get the
default table convertor's Name / Created At. Pure functions: the caller supplies `now`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from kubegate.api.errors import bad_request
from kubegate.api.objects import ZERO_TIME, rfc3339
from kubegate.api.resources import Resource
from kubegate.api.selectors import SelectorError, core_event_view, format_label_selector, label_selector_from_object

Obj = Mapping[str, Any]
Cell = Any


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    priority: int = 0
    format: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format, "description": self.description,
                "priority": self.priority}


# ---------------------------------------------------------------------------------------------
# Time

def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 metav1.Time / MicroTime string; None when unset or unparsable (Go's zero time)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def human_duration(d: timedelta) -> str:
    """duration.HumanDuration from k8s.io/apimachinery/pkg/util/duration."""
    total_us = (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds
    seconds = int(total_us / 1_000_000)  # Go's int(d.Seconds()) truncates toward zero
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = total_us // 60_000_000
    if minutes < 10:
        s = (total_us // 1_000_000) % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = total_us // 3_600_000_000
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def _since(value: Any, now: datetime) -> str:
    t = parse_time(value)
    return "<unknown>" if t is None else human_duration(now - t)


def _age(obj: Obj, now: datetime) -> str:
    return _since(_meta(obj).get("creationTimestamp"), now)


# ---------------------------------------------------------------------------------------------
# Small accessors

def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _name(obj: Obj) -> str:
    return str(_meta(obj).get("name", ""))


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _containers(template_spec: Obj) -> tuple[str, str]:
    """layoutContainerCells: names and images, comma-joined."""
    cs = template_spec.get("containers") or []
    return ",".join(str(c.get("name", "")) for c in cs), ",".join(str(c.get("image", "")) for c in cs)


def _template_spec(obj: Obj) -> Obj:
    return (_spec(obj).get("template") or {}).get("spec") or {}


# ---------------------------------------------------------------------------------------------
# Column descriptions (the swagger docs upstream's printers reference)

_D_NAME = ("Name must be unique within a namespace. Is required when creating resources, although some resources "
           "may allow a client to request the generation of an appropriate name automatically. Name is primarily "
           "intended for creation idempotence and configuration definition. Cannot be updated. More info: "
           "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")
_D_CREATED = ("CreationTimestamp is a timestamp representing the server time when this object was created. It is "
              "not guaranteed to be set in happens-before order across separate operations. Clients may not set "
              "this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. "
              "Null for lists. More info: "
              "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata")
_D_CONTAINERS = "Names of each container in the template."
_D_IMAGES = "Images referenced by each container in the template."
_D_NODE_ADDRESSES = (
    "List of addresses reachable to the node. Queried from cloud provider, if available. More info: "
    "https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, "
    "but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers "
    "should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should "
    "assume that addresses can change during the lifetime of a Node. However, there are some exceptions where "
    "this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the "
    "downward API (status.hostIP).")

NAME_COLUMN = Column("Name", "string", _D_NAME, format="name")
AGE_COLUMN = Column("Age", "string", _D_CREATED)
DEFAULT_COLUMNS = (NAME_COLUMN, Column("Created At", "date", _D_CREATED))


def _c(name: str, description: str, priority: int = 0, type_: str = "string") -> Column:
    return Column(name, type_, description, priority)


# ---------------------------------------------------------------------------------------------
# Printers: (group, kind) -> columns and a row function. Each row function returns the wide cells.

RowFn = Callable[[Obj, datetime], list[Cell]]


@dataclass(frozen=True)
class Printer:
    columns: tuple[Column, ...]
    row: RowFn


def _pod_row(pod: Obj, now: datetime) -> list[Cell]:
    spec, status = _spec(pod), _status(pod)
    containers = spec.get("containers") or []
    init_containers = {c.get("name"): c for c in spec.get("initContainers") or []}

    def restartable(name: Any) -> bool:
        return (init_containers.get(name) or {}).get("restartPolicy") == "Always"

    total = len(containers) + sum(1 for n in init_containers if restartable(n))
    ready = restarts = restartable_restarts = 0
    last_restart: datetime | None = None
    last_restartable_restart: datetime | None = None
    phase = str(status.get("phase", ""))
    reason = str(status.get("reason") or phase)
    conditions = status.get("conditions") or []
    for cond in conditions:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    def finished(cs: Obj) -> datetime | None:
        return parse_time(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))

    def later(a: datetime | None, b: datetime | None) -> datetime | None:
        return b if b is not None and (a is None or a < b) else a

    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for i, cs in enumerate(init_statuses):
        restarts += _int(cs.get("restartCount"))
        last_restart = later(last_restart, finished(cs))
        if restartable(cs.get("name")):
            restartable_restarts += _int(cs.get("restartCount"))
            last_restartable_restart = later(last_restartable_restart, finished(cs))
        state = cs.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and _int(terminated.get("exitCode")) == 0:
            continue
        if restartable(cs.get("name")) and cs.get("started") is True:
            if cs.get("ready"):
                ready += 1
            continue
        if terminated is not None:
            if not terminated.get("reason"):
                if _int(terminated.get("signal")) != 0:
                    reason = f"Init:Signal:{_int(terminated.get('signal'))}"
                else:
                    reason = f"Init:ExitCode:{_int(terminated.get('exitCode'))}"
            else:
                reason = "Init:" + str(terminated["reason"])
        elif waiting is not None and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + str(waiting["reason"])
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
        initializing = True
        break

    if not initializing or _first_condition_true(conditions, "Initialized"):
        restarts, last_restart = restartable_restarts, last_restartable_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += _int(cs.get("restartCount"))
            last_restart = later(last_restart, finished(cs))
            state = cs.get("state") or {}
            terminated, waiting = state.get("terminated"), state.get("waiting")
            if waiting is not None and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif terminated is not None and terminated.get("reason"):
                reason = str(terminated["reason"])
            elif terminated is not None:
                if _int(terminated.get("signal")) != 0:
                    reason = f"Signal:{_int(terminated.get('signal'))}"
                else:
                    reason = f"ExitCode:{_int(terminated.get('exitCode'))}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
            reason = "Running" if pod_ready else "NotReady"

    deleting = _meta(pod).get("deletionTimestamp") is not None
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Failed", "Succeeded"):
        reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts != 0 and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration(now - last_restart)} ago)"

    ips = status.get("podIPs") or []
    pod_ip = str(ips[0].get("ip", "")) if ips else str(status.get("podIP", ""))
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        true_count = 0
        for gate in gates:
            for cond in conditions:
                if cond.get("type") == gate.get("conditionType"):
                    true_count += cond.get("status") == "True"
                    break
        gates_cell = f"{true_count}/{len(gates)}"
    return [_name(pod), f"{ready}/{total}", reason, restarts_cell, _age(pod, now),
            pod_ip or "<none>", spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>",
            gates_cell]


def _first_condition_true(conditions: list[Obj], cond_type: str) -> bool:
    """isPodInitializedConditionTrue: the first condition of that type decides."""
    for c in conditions:
        if c.get("type") == cond_type:
            return c.get("status") == "True"
    return False


def _deployment_row(d: Obj, now: datetime) -> list[Cell]:
    spec, status = _spec(d), _status(d)
    try:
        selector = str(label_selector_from_object(spec.get("selector")))
    except SelectorError:
        selector = "<invalid>"
    names, images = _containers(_template_spec(d))
    return [_name(d), f"{_int(status.get('readyReplicas'))}/{_int(spec.get('replicas', 1))}",
            _int(status.get("updatedReplicas")), _int(status.get("availableReplicas")), _age(d, now),
            names, images, selector]


def _replicaset_row(rs: Obj, now: datetime) -> list[Cell]:
    spec, status = _spec(rs), _status(rs)
    names, images = _containers(_template_spec(rs))
    return [_name(rs), _int(spec.get("replicas", 1)), _int(status.get("replicas")), _int(status.get("readyReplicas")),
            _age(rs, now), names, images, format_label_selector(spec.get("selector"))]


def _format_labels(labels: Any) -> str:
    """labels.FormatLabels: sorted k=v pairs, or <none>."""
    if not isinstance(labels, dict) or not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def _statefulset_row(sts: Obj, now: datetime) -> list[Cell]:
    names, images = _containers(_template_spec(sts))
    return [_name(sts), f"{_int(_status(sts).get('readyReplicas'))}/{_int(_spec(sts).get('replicas'))}",
            _age(sts, now), names, images]


def _daemonset_row(ds: Obj, now: datetime) -> list[Cell]:
    spec, status = _spec(ds), _status(ds)
    names, images = _containers(_template_spec(ds))
    return [_name(ds), _int(status.get("desiredNumberScheduled")), _int(status.get("currentNumberScheduled")),
            _int(status.get("numberReady")), _int(status.get("updatedNumberScheduled")),
            _int(status.get("numberAvailable")), _format_labels(_template_spec(ds).get("nodeSelector")),
            _age(ds, now), names, images, format_label_selector(spec.get("selector"))]


# printJob's status: the first matching condition type that is True decides, in this order.
_JOB_CONDITION_STATUS = (("Complete", "Complete"), ("Failed", "Failed"), ("", "Terminating"),
                         ("Suspended", "Suspended"), ("FailureTarget", "FailureTarget"),
                         ("SuccessCriteriaMet", "SuccessCriteriaMet"))


def _job_row(job: Obj, now: datetime) -> list[Cell]:
    spec, status = _spec(job), _status(job)
    succeeded = _int(status.get("succeeded"))
    if isinstance(spec.get("completions"), int):
        completions = f"{succeeded}/{spec['completions']}"
    elif _int(spec.get("parallelism")) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    duration = "" if start is None else human_duration((end or now) - start)
    conditions = status.get("conditions") or []
    state = "Running"
    for cond_type, text in _JOB_CONDITION_STATUS:
        if (_first_condition_true(conditions, cond_type) if cond_type
                else _meta(job).get("deletionTimestamp") is not None):
            state = text
            break
    names, images = _containers(_template_spec(job))
    return [_name(job), state, completions, duration, _age(job, now), names, images,
            format_label_selector(spec.get("selector"))]


def _cronjob_row(cj: Obj, now: datetime) -> list[Cell]:
    spec, status = _spec(cj), _status(cj)
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    suspend = spec.get("suspend")
    last = status.get("lastScheduleTime")
    names, images = _containers((job_spec.get("template") or {}).get("spec") or {})
    return [_name(cj), str(spec.get("schedule", "")), spec.get("timeZone") or "<none>",
            "<unset>" if suspend is None else ("True" if suspend else "False"), len(status.get("active") or []),
            "<none>" if last is None else _since(last, now), _age(cj, now), names, images,
            format_label_selector(job_spec.get("selector"))]


def _replicationcontroller_row(rc: Obj, now: datetime) -> list[Cell]:
    spec, status = _spec(rc), _status(rc)
    names, images = _containers(_template_spec(rc))
    return [_name(rc), _int(spec.get("replicas")), _int(status.get("replicas")), _int(status.get("readyReplicas")),
            _age(rc, now), names, images, _format_labels(spec.get("selector"))]


def _podtemplate_row(pt: Obj, now: datetime) -> list[Cell]:
    template = pt.get("template") or {}
    names, images = _containers(template.get("spec") or {})
    return [_name(pt), names, images, _format_labels((template.get("metadata") or {}).get("labels"))]

def _node_row(node: Obj, now: datetime) -> list[Cell]:
    status = _status(node)
    conds = {c.get("type"): c for c in status.get("conditions") or []}
    states: list[str] = []
    ready = conds.get("Ready")
    if ready is not None:
        states.append("Ready" if ready.get("status") == "True" else "NotReady")
    if not states:
        states.append("Unknown")
    if _spec(node).get("unschedulable"):
        states.append("SchedulingDisabled")
    roles: set[str] = set()
    for k, v in (_meta(node).get("labels") or {}).items():
        if k.startswith("node-role.kubernetes.io/") and k[len("node-role.kubernetes.io/"):]:
            roles.add(k[len("node-role.kubernetes.io/"):])
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    info = status.get("nodeInfo") or {}

    def address(kind: str) -> str:
        for a in status.get("addresses") or []:
            if a.get("type") == kind:
                return str(a.get("address", ""))
        return "<none>"

    return [_name(node), ",".join(states), ",".join(sorted(roles)) or "<none>", _age(node, now),
            str(info.get("kubeletVersion", "")), address("InternalIP"), address("ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


def _event_row(obj: Obj, now: datetime) -> list[Cell]:
    ev = core_event_view(obj)
    first = (_since(ev.get("firstTimestamp"), now) if parse_time(ev.get("firstTimestamp"))
             else _since(ev.get("eventTime"), now))
    last = _since(ev.get("lastTimestamp"), now) if parse_time(ev.get("lastTimestamp")) else first
    count = _int(ev.get("count"))
    series = ev.get("series")
    if series is not None:
        last = _since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1  # singleton events of the new API carry no count
    io = ev.get("involvedObject") or {}
    kind = str(io.get("kind", "")).lower()
    target = f"{kind}/{io['name']}" if io.get("name") else kind
    source = ev.get("source") or {}
    component = source.get("component") or ev.get("reportingController") or ""
    instance = source.get("host") or ev.get("reportingInstance") or ""
    return [last, str(ev.get("type", "")), str(ev.get("reason", "")), target, str(io.get("fieldPath", "")),
            f"{component}, {instance}" if instance else str(component), str(ev.get("message", "")).strip(),
            first, count, _name(obj)]


def _binding_row(b: Obj, now: datetime) -> list[Cell]:
    ref = b.get("roleRef") or {}
    users: list[str] = []
    groups: list[str] = []
    sas: list[str] = []
    for s in b.get("subjects") or []:
        if s.get("kind") == "ServiceAccount":
            sas.append(f"{s.get('namespace', '')}/{s.get('name', '')}")
        elif s.get("kind") == "User":
            users.append(str(s.get("name", "")))
        elif s.get("kind") == "Group":
            groups.append(str(s.get("name", "")))
    return [_name(b), f"{ref.get('kind', '')}/{ref.get('name', '')}", _age(b, now),
            ", ".join(users), ", ".join(groups), ", ".join(sas)]


def _csr_row(csr: Obj, now: datetime) -> list[Cell]:
    spec, status = _spec(csr), _status(csr)
    types = {c.get("type") for c in status.get("conditions") or []}
    cond = "Denied" if "Denied" in types else "Approved" if "Approved" in types else "Pending"
    if "Failed" in types:
        cond += ",Failed"
    if status.get("certificate"):
        cond += ",Issued"
    exp = spec.get("expirationSeconds")
    duration = human_duration(timedelta(seconds=exp)) if isinstance(exp, int) else "<none>"
    return [_name(csr), _age(csr, now), spec.get("signerName") or "<none>", str(spec.get("username", "")),
            duration, cond]


def _quota_row(q: Obj, now: datetime) -> list[Cell]:
    status = _status(q)
    hard, used = status.get("hard") or {}, status.get("used") or {}
    requests: list[str] = []
    limits: list[str] = []
    for res in sorted(hard):
        pieces = res.split(".")
        target = limits if len(pieces) > 1 and pieces[0] == "limits" else requests
        target.append(f"{res}: {used.get(res, '0')}/{hard[res]}")
    return [_name(q), ", ".join(requests), ", ".join(limits), _age(q, now)]


_ACCESS_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                 ("ReadWriteOncePod", "RWOP"))


def _pvc_row(pvc: Obj, now: datetime) -> list[Cell]:
    spec, status = _spec(pvc), _status(pvc)
    phase = "Terminating" if _meta(pvc).get("deletionTimestamp") is not None else str(status.get("phase", ""))
    capacity = modes = ""
    if spec.get("volumeName"):
        have = status.get("accessModes") or []
        modes = ",".join(short for mode, short in _ACCESS_MODES if mode in have)
        capacity = str((status.get("capacity") or {}).get("storage", "0"))
    annotations = _meta(pvc).get("annotations") or {}
    storage_class = annotations.get("volume.beta.kubernetes.io/storage-class", spec.get("storageClassName") or "")
    return [_name(pvc), phase, str(spec.get("volumeName", "")), capacity, modes, storage_class,
            spec.get("volumeAttributesClassName") or "<unset>", _age(pvc, now), spec.get("volumeMode") or "<unset>"]


def _storageclass_row(sc: Obj, now: datetime) -> list[Cell]:
    annotations = _meta(sc).get("annotations") or {}
    default = (annotations.get("storageclass.kubernetes.io/is-default-class") == "true"
               or annotations.get("storageclass.beta.kubernetes.io/is-default-class") == "true")
    return [_name(sc) + (" (default)" if default else ""), str(sc.get("provisioner", "")),
            sc.get("reclaimPolicy") or "Delete", sc.get("volumeBindingMode") or "Immediate",
            sc.get("allowVolumeExpansion") is True, _age(sc, now)]


_POD = Printer((
    NAME_COLUMN,
    _c("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    _c("Status", "The aggregate status of the containers in this pod."),
    _c("Restarts", "The number of times the containers in this pod have been restarted and when the last "
                   "container in this pod has restarted."),
    AGE_COLUMN,
    _c("IP", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet "
             "allocated.", 1),
    _c("Node", "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for "
               "scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for "
               "this node becomes responsible for the lifecycle of this pod. This field should not be used to "
               "express a desire for the pod to be scheduled on a specific node. "
               "https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename", 1),
    _c("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods on the node, but it "
                         "cannot be scheduled right away as preemption victims receive their graceful "
                         "termination periods. This field does not guarantee that the pod will be scheduled on "
                         "this node. Scheduler may decide to place the pod elsewhere if other nodes become "
                         "available sooner. Scheduler may also decide to give the resources on this node to a "
                         "higher priority pod that is created after preemption. As a result, this field may be "
                         "different than PodSpec.nodeName when the pod is scheduled.", 1),
    _c("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready "
                          "when all its containers are ready AND all conditions specified in the readiness gates "
                          "have status equal to \"True\" More info: "
                          "https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates", 1),
), _pod_row)

_DEPLOYMENT = Printer((
    NAME_COLUMN,
    _c("Ready", "Number of the pod with ready state"),
    _c("Up-to-date", "Total number of non-terminating pods targeted by this deployment that have the desired "
                     "template spec."),
    _c("Available", "Total number of available non-terminating pods (ready for at least minReadySeconds) "
                    "targeted by this deployment."),
    AGE_COLUMN,
    _c("Containers", _D_CONTAINERS, 1),
    _c("Images", _D_IMAGES, 1),
    _c("Selector", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the "
                   "ones affected by this deployment. It must match the pod template's labels.", 1),
), _deployment_row)

_D_LABEL_SELECTORS = ("More info: "
                      "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors")

_REPLICASET = Printer((
    NAME_COLUMN,
    _c("Desired", "Replicas is the number of desired pods. This is a pointer to distinguish between explicit "
                  "zero and unspecified. Defaults to 1. More info: "
                  "https://kubernetes.io/docs/concepts/workloads/controllers/replicaset", type_="integer"),
    _c("Current", "Replicas is the most recently observed number of non-terminating pods. More info: "
                  "https://kubernetes.io/docs/concepts/workloads/controllers/replicaset", type_="integer"),
    _c("Ready", "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
       type_="integer"),
    AGE_COLUMN,
    _c("Containers", _D_CONTAINERS, 1),
    _c("Images", _D_IMAGES, 1),
    _c("Selector", "Selector is a label query over pods that should match the replica count. Label keys and "
                   "values that must match in order to be controlled by this replica set. It must match the pod "
                   "template's labels. " + _D_LABEL_SELECTORS, 1),
), _replicaset_row)

_STATEFULSET = Printer((
    NAME_COLUMN,
    _c("Ready", "Number of the pod with ready state"),
    AGE_COLUMN,
    _c("Containers", _D_CONTAINERS, 1),
    _c("Images", _D_IMAGES, 1),
), _statefulset_row)

_DAEMONSET = Printer((
    NAME_COLUMN,
    _c("Desired", "The total number of nodes that should be running the daemon pod (including nodes correctly "
                  "running the daemon pod). More info: "
                  "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/", type_="integer"),
    _c("Current", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon "
                  "pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
       type_="integer"),
    _c("Ready", "numberReady is the number of nodes that should be running the daemon pod and have one or more of "
                "the daemon pod running with a Ready Condition.", type_="integer"),
    _c("Up-to-date", "The total number of nodes that are running updated daemon pod", type_="integer"),
    _c("Available", "The number of nodes that should be running the daemon pod and have one or more of the daemon "
                    "pod running and available (ready for at least spec.minReadySeconds)", type_="integer"),
    _c("Node Selector", "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which "
                        "must match a node's labels for the pod to be scheduled on that node. More info: "
                        "https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"),
    AGE_COLUMN,
    _c("Containers", _D_CONTAINERS, 1),
    _c("Images", _D_IMAGES, 1),
    _c("Selector", "A label query over pods that are managed by the daemon set. Must match in order to be "
                   "controlled. It must match the pod template's labels. " + _D_LABEL_SELECTORS, 1),
), _daemonset_row)

_D_JOB_SELECTOR = ("A label query over pods that should match the pod count. Normally, the system sets this field "
                   "for you. " + _D_LABEL_SELECTORS)

_JOB = Printer((
    NAME_COLUMN,
    _c("Status", "Status of the job."),
    _c("Completions", "The number of pods which reached phase Succeeded. The value increases monotonically for a "
                      "given spec. However, it may decrease in reaction to scale down of elastic indexed jobs."),
    _c("Duration", "Time required to complete the job."),
    AGE_COLUMN,
    _c("Containers", _D_CONTAINERS, 1),
    _c("Images", _D_IMAGES, 1),
    _c("Selector", _D_JOB_SELECTOR, 1),
), _job_row)

_CRONJOB = Printer((
    NAME_COLUMN,
    _c("Schedule", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    _c("Timezone", "The time zone name for the given schedule, see "
                   "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will "
                   "default to the time zone of the kube-controller-manager process. The set of valid time zone "
                   "names and the time zone offset is loaded from the system-wide time zone database by the API "
                   "server during CronJob validation and the controller manager during execution. If no "
                   "system-wide time zone database can be found a bundled version of the database is used instead. "
                   "If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in "
                   "host configuration, the controller will stop creating new new Jobs and will create a system "
                   "event with the reason UnknownTimeZone. More information can be found in "
                   "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones"),
    _c("Suspend", "This flag tells the controller to suspend subsequent executions, it does not apply to already "
                  "started executions.  Defaults to false.", type_="boolean"),
    _c("Active", "A list of pointers to currently running jobs.", type_="integer"),
    _c("Last Schedule", "Information when was the last time the job was successfully scheduled."),
    AGE_COLUMN,
    _c("Containers", _D_CONTAINERS, 1),
    _c("Images", _D_IMAGES, 1),
    _c("Selector", _D_JOB_SELECTOR, 1),
), _cronjob_row)

_D_RC = ("https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller"
         "#what-is-a-replicationcontroller")

_REPLICATIONCONTROLLER = Printer((
    NAME_COLUMN,
    _c("Desired", "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit "
                  "zero and unspecified. Defaults to 1. More info: " + _D_RC, type_="integer"),
    _c("Current", "Replicas is the most recently observed number of replicas. More info: " + _D_RC,
       type_="integer"),
    _c("Ready", "The number of ready replicas for this replication controller.", type_="integer"),
    AGE_COLUMN,
    _c("Containers", _D_CONTAINERS, 1),
    _c("Images", _D_IMAGES, 1),
    _c("Selector", "Selector is a label query over pods that should match the Replicas count. If Selector is "
                   "empty, it is defaulted to the labels present on the Pod template. Label keys and values that "
                   "must match in order to be controlled by this replication controller, if empty defaulted to "
                   "labels on Pod template. " + _D_LABEL_SELECTORS, 1),
), _replicationcontroller_row)

_PODTEMPLATE = Printer((
    NAME_COLUMN,
    _c("Containers", _D_CONTAINERS),
    _c("Images", _D_IMAGES),
    _c("Pod Labels", "The labels for the pod template."),
), _podtemplate_row)

_NODE = Printer((
    NAME_COLUMN,
    _c("Status", "The status of the node"),
    _c("Roles", "The roles of the node"),
    AGE_COLUMN,
    _c("Version", "Kubelet Version reported by the node."),
    _c("Internal-IP", _D_NODE_ADDRESSES, 1),
    _c("External-IP", _D_NODE_ADDRESSES, 1),
    _c("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", 1),
    _c("Kernel-Version", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1),
    _c("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API (e.g. "
                            "containerd://1.4.2).", 1),
), _node_row)

_EVENT = Printer((
    _c("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
    _c("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
    _c("Reason", "This should be a short, machine understandable string that gives the reason for the "
                 "transition into the object's current status."),
    _c("Object", "The object that this event is about."),
    _c("Subobject", "If referring to a piece of an object instead of an entire object, this string should contain "
                    "a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For "
                    "example, if the object reference is to a container within a pod, this would take on a value "
                    "like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that "
                    "triggered the event) or if no container name is specified \"spec.containers[2]\" (container "
                    "with index 2 in this pod). This syntax is chosen only to have some well-defined way of "
                    "referencing a part of an object.", 1),
    _c("Source", "The component reporting this event. Should be a short machine understandable string.", 1),
    _c("Message", "A human-readable description of the status of this operation."),
    _c("First Seen", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
       1),
    _c("Count", "The number of times this event has occurred.", 1),
    Column("Name", "string", _D_NAME, 1, "name"),
), _event_row)

_NAMESPACE = Printer((NAME_COLUMN, _c("Status", "The status of the namespace"), AGE_COLUMN),
                     lambda o, now: [_name(o), str(_status(o).get("phase", "")), _age(o, now)])

_SECRET = Printer((
    NAME_COLUMN,
    _c("Type", "Used to facilitate programmatic handling of secret data. More info: "
               "https://kubernetes.io/docs/concepts/configuration/secret/#secret-types"),
    _c("Data", "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or "
               "'.'. The serialized form of the secret data is a base64 encoded string, representing the "
               "arbitrary (possibly non-string) data value here. Described in "
               "https://tools.ietf.org/html/rfc4648#section-4"),
    AGE_COLUMN,
), lambda o, now: [_name(o), str(o.get("type", "")), len(o.get("data") or {}), _age(o, now)])

_CONFIGMAP = Printer((
    NAME_COLUMN,
    _c("Data", "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' "
               "or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in "
               "Data must not overlap with the keys in the BinaryData field, this is enforced during validation "
               "process."),
    AGE_COLUMN,
), lambda o, now: [_name(o), len(o.get("data") or {}) + len(o.get("binaryData") or {}), _age(o, now)])

# 1.36 prints service accounts as NAME AGE (the Secrets count column is gone)
_SERVICEACCOUNT = Printer((NAME_COLUMN, AGE_COLUMN), lambda o, now: [_name(o), _age(o, now)])

_NETWORKPOLICY = Printer((
    NAME_COLUMN,
    _c("Pod-Selector", "podSelector selects the pods to which this NetworkPolicy object applies. The array of "
                       "rules is applied to any pods selected by this field. An empty selector matches all pods in "
                       "the policy's namespace. Multiple network policies can select the same set of pods. In this "
                       "case, the ingress rules for each are combined additively. This field is optional. If it is "
                       "not specified, it defaults to an empty selector."),
    AGE_COLUMN,
), lambda o, now: [_name(o), format_label_selector(_spec(o).get("podSelector") or {}), _age(o, now)])


def _binding_printer(role_doc: str, what: str) -> Printer:
    return Printer((NAME_COLUMN, _c("Role", role_doc), AGE_COLUMN, _c("Users", f"Users in the {what}", 1),
                    _c("Groups", f"Groups in the {what}", 1),
                    _c("ServiceAccounts", f"ServiceAccounts in the {what}", 1)), _binding_row)


_ROLEBINDING = _binding_printer(
    "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the "
    "RoleRef cannot be resolved, the Authorizer must return an error.", "roleBinding")
_CLUSTERROLEBINDING = _binding_printer(
    "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the "
    "Authorizer must return an error.", "clusterRoleBinding")

_CSR = Printer((
    NAME_COLUMN,
    AGE_COLUMN,
    _c("SignerName", "Requested signer for the request. It is a qualified name in the form: "
                     "`scope-hostname.io/name`. If empty, it will be defaulted:\n 1. If it's a kubelet client "
                     "certificate, it is assigned\n    \"kubernetes.io/kube-apiserver-client-kubelet\".\n 2. If "
                     "it's a kubelet serving certificate, it is assigned\n    \"kubernetes.io/kubelet-serving\".\n"
                     " 3. Otherwise, it is assigned \"kubernetes.io/legacy-unknown\".\nDistribution of trust for "
                     "signers happens out of band. You can select on this field using `spec.signerName`."),
    # upstream describes Requestor with the docs of spec.request
    _c("Requestor", "Base64-encoded PKCS#10 CSR data"),
    _c("RequestedDuration", "expirationSeconds is the requested duration of validity of the issued certificate. "
                            "The certificate signer may issue a certificate with a different validity duration so "
                            "a client must check the delta between the notBefore and and notAfter fields in the "
                            "issued certificate to determine the actual duration.\n\nThe v1.22+ in-tree "
                            "implementations of the well-known Kubernetes signers will honor this field as long as "
                            "the requested duration is not greater than the maximum duration they will honor per "
                            "the --cluster-signing-duration CLI flag to the Kubernetes controller manager.\n\n"
                            "Certificate signers may not honor this field for various reasons:\n\n  1. Old signer "
                            "that is unaware of the field (such as the in-tree\n     implementations prior to "
                            "v1.22)\n  2. Signer whose configured maximum is shorter than the requested duration\n"
                            "  3. Signer whose configured minimum is longer than the requested duration\n\nThe "
                            "minimum valid value for expirationSeconds is 600, i.e. 10 minutes."),
    _c("Condition", "Conditions applied to the request, such as approval or denial."),
), _csr_row)

_LEASE = Printer((
    NAME_COLUMN,
    _c("Holder", "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader "
                 "Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name "
                 "field."),
    AGE_COLUMN,
), lambda o, now: [_name(o), str(_spec(o).get("holderIdentity") or ""), _age(o, now)])

_STORAGECLASS = Printer((
    NAME_COLUMN,
    _c("Provisioner", "provisioner indicates the type of the provisioner."),
    _c("ReclaimPolicy", "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes "
                        "of this storage class. Defaults to Delete."),
    _c("VolumeBindingMode", "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and "
                            "bound.  When unset, VolumeBindingImmediate is used. This field is only honored by "
                            "servers that enable the VolumeScheduling feature."),
    _c("AllowVolumeExpansion", "allowVolumeExpansion shows whether the storage class allow volume expand."),
    AGE_COLUMN,
), _storageclass_row)

_RESOURCEQUOTA = Printer((
    NAME_COLUMN,
    _c("Request", "Request represents a minimum amount of cpu/memory that a container may consume."),
    _c("Limit", "Limits control the maximum amount of cpu/memory that a container may use independent of "
                "contention on the node."),
    AGE_COLUMN,
), _quota_row)

_PVC = Printer((
    NAME_COLUMN,
    _c("Status", "phase represents the current phase of PersistentVolumeClaim."),
    _c("Volume", "volumeName is the binding reference to the PersistentVolume backing this claim."),
    _c("Capacity", "capacity represents the actual resources of the underlying volume."),
    _c("Access Modes", "accessModes contains the actual access modes the volume backing the PVC has. More info: "
                       "https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1"),
    _c("StorageClass", "StorageClass of the pvc"),
    _c("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
    AGE_COLUMN,
    _c("VolumeMode", "volumeMode defines what type of volume is required by the claim. Value of Filesystem is "
                     "implied when not included in claim spec.", 1),
), _pvc_row)

PRINTERS: dict[tuple[str, str], Printer] = {
    ("", "Pod"): _POD,
    ("", "Node"): _NODE,
    ("", "Event"): _EVENT,
    ("events.k8s.io", "Event"): _EVENT,  # converted to the internal Event, printed by the same printer
    ("", "Namespace"): _NAMESPACE,
    ("", "Secret"): _SECRET,
    ("", "ConfigMap"): _CONFIGMAP,
    ("", "ServiceAccount"): _SERVICEACCOUNT,
    ("", "ResourceQuota"): _RESOURCEQUOTA,
    ("", "PersistentVolumeClaim"): _PVC,
    ("apps", "Deployment"): _DEPLOYMENT,
    ("apps", "ReplicaSet"): _REPLICASET,
    ("apps", "StatefulSet"): _STATEFULSET,
    ("apps", "DaemonSet"): _DAEMONSET,
    ("batch", "Job"): _JOB,
    ("batch", "CronJob"): _CRONJOB,
    ("", "ReplicationController"): _REPLICATIONCONTROLLER,
    ("", "PodTemplate"): _PODTEMPLATE,
    ("rbac.authorization.k8s.io", "RoleBinding"): _ROLEBINDING,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _CLUSTERROLEBINDING,
    ("certificates.k8s.io", "CertificateSigningRequest"): _CSR,
    ("networking.k8s.io", "NetworkPolicy"): _NETWORKPOLICY,
    ("coordination.k8s.io", "Lease"): _LEASE,
    ("storage.k8s.io", "StorageClass"): _STORAGECLASS,
}


def _default_row(obj: Obj, now: datetime) -> list[Cell]:
    t = parse_time(_meta(obj).get("creationTimestamp"))
    # Go formats the zero time when creationTimestamp is unset
    return [_name(obj), rfc3339(t) if t else ZERO_TIME]


def columns_for(resource: Resource) -> tuple[Column, ...]:
    printer = PRINTERS.get((resource.group, resource.kind))
    return printer.columns if printer else DEFAULT_COLUMNS


# ---------------------------------------------------------------------------------------------
# Table and PartialObjectMetadataList

INCLUDE_OBJECT_VALUES = ("Metadata", "Object", "None")


def _list_metadata(list_meta: Mapping[str, Any]) -> dict[str, Any]:
    """ListMeta in upstream's field order, omitting empty fields."""
    return {k: list_meta[k] for k in ("resourceVersion", "continue", "remainingItemCount")
            if list_meta.get(k) not in (None, "")}


def partial_object_metadata(obj: Obj, api_version: str = "meta.k8s.io/v1") -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": api_version, "metadata": dict(_meta(obj))}


def _full_object(resource: Resource, obj: Obj) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": obj.get("kind") or resource.kind,
                           "apiVersion": obj.get("apiVersion") or resource.api_version}
    out.update((k, v) for k, v in obj.items() if k not in ("kind", "apiVersion"))
    return out


def to_table(resource: Resource, objects: list[dict[str, Any]], *, list_meta: Mapping[str, Any],
             include_object: str = "Metadata", api_version: str = "meta.k8s.io/v1",
             now: datetime | None = None, no_headers: bool = False) -> dict[str, Any]:
    """A meta.k8s.io Table for `objects` (one object for a GET by name, the items for a list/watch).

    `list_meta` carries resourceVersion/continue/remainingItemCount (the object's resourceVersion for a
    single GET). `include_object` is the includeObject query value ("" means Metadata). `no_headers`
    leaves columnDefinitions null, as TableOptions.noHeaders does. Raises StatusError 400 for an
    unknown includeObject.
    """
    mode = include_object or "Metadata"
    if mode not in INCLUDE_OBJECT_VALUES:
        raise bad_request(f'unrecognized includeObject value: "{include_object}"')
    at = now or datetime.now(timezone.utc)
    printer = PRINTERS.get((resource.group, resource.kind))
    row_fn = printer.row if printer else _default_row
    rows: list[dict[str, Any]] | None = []
    for obj in objects:
        if mode == "Object":
            embedded: dict[str, Any] | None = _full_object(resource, obj)
        elif mode == "None":
            embedded = None
        else:
            embedded = partial_object_metadata(obj, api_version)
        rows.append({"cells": row_fn(obj, at), "object": embedded})
    if printer is None and not rows:
        rows = None  # the default convertor never allocates rows, so an empty table serializes null
    columns = columns_for(resource)
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": _list_metadata(list_meta),
        "columnDefinitions": None if no_headers else [c.to_dict() for c in columns],
        "rows": rows,
    }


def partial_object_metadata_list(resource: Resource, objects: list[dict[str, Any]],
                                 list_meta: Mapping[str, Any], api_version: str = "meta.k8s.io/v1") -> dict[str, Any]:
    """`as=PartialObjectMetadataList`: the list with each item reduced to its metadata."""
    return {
        "kind": "PartialObjectMetadataList",
        "apiVersion": api_version,
        "metadata": _list_metadata(list_meta),
        "items": [partial_object_metadata(o, api_version) for o in objects],
    }
