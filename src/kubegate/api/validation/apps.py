"""apps/v1 validators (pkg/apis/apps/validation): Deployment, ReplicaSet, StatefulSet and DaemonSet."""
from __future__ import annotations

import re
from typing import Any

from kubegate.api.errors import Cause, field_forbidden, field_invalid, field_not_supported, field_required

from . import names
from .common import GoJSON, d, nonnegative, s
from .core import DEFAULT_POD_OPTIONS, PodOptions, pod_specific_annotations, pod_template
from .meta import validate_annotations, validate_labels, validate_meta, validate_object_meta_update
from .selector import is_empty, selector_matches, validate_label_selector

_PERCENT_RE = re.compile("^[0-9]+%\\Z")
_PERCENT_MSG = names.regex_error("a valid percent string must be a numeric string followed by an ending '%'",
                                 "[0-9]+%", "1%", "93%")
_STRATEGIES = ["Recreate", "RollingUpdate"]


def _int_or_percent(path: str, value: Any) -> tuple[list[Cause], int | None]:
    """ValidatePositiveIntOrPercent + IsNotMoreThan100Percent; returns the percent/int for the 0/0 rule."""
    if isinstance(value, str):
        if not _PERCENT_RE.match(value):
            return [field_invalid(path, value, _PERCENT_MSG)], None
        pct = int(value[:-1])
        if pct > 100:
            return [field_invalid(path, value, "must not be greater than 100%")], pct
        return [], pct
    if isinstance(value, int) and not isinstance(value, bool):
        return nonnegative(path, value), value
    return [], None


def _strategy(strategy: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    stype = s(strategy.get("type"))
    ru = strategy.get("rollingUpdate")
    if stype == "Recreate":
        if ru is not None:
            causes.append(field_forbidden("spec.strategy.rollingUpdate",
                                          "may not be specified when strategy `type` is 'Recreate'"))
    elif stype == "RollingUpdate":
        ru = d(ru)
        unavailable, surge = ru.get("maxUnavailable"), ru.get("maxSurge")
        errs_u, un = _int_or_percent("spec.strategy.rollingUpdate.maxUnavailable", unavailable)
        errs_s, su = _int_or_percent("spec.strategy.rollingUpdate.maxSurge", surge)
        causes += errs_u + errs_s
        if un == 0 and su == 0:
            causes.append(field_invalid("spec.strategy.rollingUpdate.maxUnavailable", unavailable,
                                        "may not be 0 when `maxSurge` is 0"))
    elif not stype:
        causes.append(field_required("spec.strategy.type"))
    else:
        causes.append(field_not_supported("spec.strategy.type", stype, _STRATEGIES))
    return causes


def _selector_and_template(spec: dict[str, Any], opts: PodOptions) -> list[Cause]:
    causes: list[Cause] = []
    causes += nonnegative("spec.replicas", spec.get("replicas"))
    causes += nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    sel = spec.get("selector")
    template = d(spec.get("template"))
    if sel is None:
        causes.append(field_required("spec.selector"))
    else:
        sel = d(sel)
        causes += validate_label_selector(sel, "spec.selector")
        if is_empty(sel):
            # upstream's ReplicaSet check reuses the Deployment wording
            causes.append(field_invalid("spec.selector", GoJSON(sel), "empty selector is invalid for deployment"))
        else:
            tlabels = d(d(template.get("metadata")).get("labels"))
            if not selector_matches(sel, tlabels):
                causes.append(field_invalid("spec.template.metadata.labels", GoJSON(tlabels),
                                            "`selector` does not match template `labels`"))
    causes += pod_template("spec.template", template, opts)
    rp = s(d(template.get("spec")).get("restartPolicy"))
    if rp and rp != "Always":
        causes.append(field_not_supported("spec.template.spec.restartPolicy", rp, ["Always"]))
    return causes


def deployment(obj: dict[str, Any], old: dict[str, Any] | None,
               opts: PodOptions = DEFAULT_POD_OPTIONS) -> list[Cause]:
    spec = d(obj.get("spec"))
    causes = validate_meta(obj, old, True, names.name_is_dns_subdomain)
    causes += _selector_and_template(spec, opts)
    causes += _strategy(d(spec.get("strategy")))
    causes += nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    pds = spec.get("progressDeadlineSeconds")
    if isinstance(pds, int):
        causes += nonnegative("spec.progressDeadlineSeconds", pds)
        mrs = spec.get("minReadySeconds") or 0
        if isinstance(mrs, int) and pds <= mrs:
            causes.append(field_invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"))
    if old is not None:
        causes += _selector_immutable(spec, d(old.get("spec")))
    return causes


def replicaset(obj: dict[str, Any], old: dict[str, Any] | None,
               opts: PodOptions = DEFAULT_POD_OPTIONS) -> list[Cause]:
    spec = d(obj.get("spec"))
    causes = validate_meta(obj, old, True, names.name_is_dns_subdomain)
    causes += _selector_and_template(spec, opts)
    if old is not None:
        causes += _selector_immutable(spec, d(old.get("spec")))
    return causes


def _selector_immutable(spec: dict[str, Any], old_spec: dict[str, Any]) -> list[Cause]:
    new_sel, old_sel = d(spec.get("selector")), d(old_spec.get("selector"))
    if new_sel != old_sel:
        return [field_invalid("spec.selector", GoJSON(new_sel), "field is immutable")]
    return []


def workload_status(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """Deployment/ReplicaSet status: counters are non-negative."""
    causes = validate_object_meta_update(d(obj.get("metadata")), d(old.get("metadata")))
    status = d(obj.get("status"))
    for key in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas",
                "fullyLabeledReplicas", "terminatingReplicas", "observedGeneration", "collisionCount"):
        causes += nonnegative(f"status.{key}", status.get(key))
    return causes


# --- StatefulSet and DaemonSet ---------------------------------------------------------------------

_STS_UPDATE_FORBIDDEN = ("updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
                         "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")
# Spec fields a StatefulSet update may change (ValidateStatefulSetUpdate).
_STS_MUTABLE = frozenset({"replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                          "minReadySeconds"})
_RETENTION = ["Retain", "Delete"]


def _template_restart_always(spec: dict[str, Any], kind: str, invalid_deadline: bool = False) -> list[Cause]:
    """Workload templates restart Always and take no activeDeadlineSeconds."""
    causes: list[Cause] = []
    tspec = d(d(spec.get("template")).get("spec"))
    rp = s(tspec.get("restartPolicy"))
    if rp != "Always":
        causes.append(field_not_supported("spec.template.spec.restartPolicy", rp, ["Always"]))
    deadline = tspec.get("activeDeadlineSeconds")
    if deadline is not None:
        msg = f"activeDeadlineSeconds in {kind} is not Supported"
        causes.append(field_invalid("spec.template.spec.activeDeadlineSeconds", deadline, msg) if invalid_deadline
                      else field_forbidden("spec.template.spec.activeDeadlineSeconds", msg))
    return causes


def _selector_matches_template(spec: dict[str, Any], empty_noun: str) -> list[Cause]:
    """A required, non-empty selector that the template's labels satisfy."""
    causes: list[Cause] = []
    sel = spec.get("selector")
    tlabels = d(d(d(spec.get("template")).get("metadata")).get("labels"))
    if sel is None:
        return [field_required("spec.selector")]
    sel = d(sel)
    causes += validate_label_selector(sel, "spec.selector")
    if is_empty(sel):
        causes.append(field_invalid("spec.selector", GoJSON(sel), f"empty selector is invalid for {empty_noun}"))
    elif not selector_matches(sel, tlabels):
        causes.append(field_invalid("spec.template.metadata.labels", GoJSON(tlabels),
                                    "`selector` does not match template `labels`"))
    return causes


def _statefulset_spec(spec: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    pmp = s(spec.get("podManagementPolicy"))
    if not pmp:
        causes.append(field_required("spec.podManagementPolicy"))
    elif pmp not in ("OrderedReady", "Parallel"):
        causes.append(field_invalid("spec.podManagementPolicy", pmp, "must be 'OrderedReady' or 'Parallel'"))
    strategy = d(spec.get("updateStrategy"))
    stype = s(strategy.get("type"))
    ru = strategy.get("rollingUpdate")
    if not stype:
        causes.append(field_required("spec.updateStrategy"))
    elif stype == "OnDelete":
        if ru is not None:
            causes.append(field_invalid("spec.updateStrategy.rollingUpdate", GoJSON(ru),
                                        "only allowed for updateStrategy 'RollingUpdate'"))
    elif stype == "RollingUpdate":
        if isinstance(ru, dict):
            causes += nonnegative("spec.updateStrategy.rollingUpdate.partition", ru.get("partition"))
            if ru.get("maxUnavailable") is not None:
                errs, value = _int_or_percent("spec.updateStrategy.rollingUpdate.maxUnavailable", ru["maxUnavailable"])
                causes += errs
                if value == 0 and not errs:
                    causes.append(field_invalid("spec.updateStrategy.rollingUpdate.maxUnavailable",
                                                ru["maxUnavailable"], "must be greater than 0"))
    else:
        causes.append(field_invalid("spec.updateStrategy", GoJSON(strategy), "must be 'RollingUpdate' or 'OnDelete'"))
    policy = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(policy, dict):
        for key in ("whenDeleted", "whenScaled"):
            if s(policy.get(key)) not in _RETENTION:
                causes.append(field_not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{key}",
                                                  s(policy.get(key)), _RETENTION))
    causes += nonnegative("spec.replicas", spec.get("replicas"))
    causes += nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    if isinstance(spec.get("ordinals"), dict):
        causes += nonnegative("spec.ordinals.start", spec["ordinals"].get("start"))
    causes += _selector_matches_template(spec, "statefulset")
    # Upstream checks only the template's metadata here, not its pod spec (ValidatePodTemplateSpecForStatefulSet).
    tmeta = d(d(spec.get("template")).get("metadata"))
    tspec = d(d(spec.get("template")).get("spec"))
    annotations = d(tmeta.get("annotations"))
    causes += validate_labels(d(tmeta.get("labels")), "spec.template.labels")
    causes += validate_annotations(annotations, "spec.template.annotations")
    causes += pod_specific_annotations("spec.template.annotations", annotations, tspec)
    causes += _template_restart_always(spec, "StatefulSet")
    return causes


def statefulset(obj: dict[str, Any], old: dict[str, Any] | None,
                opts: PodOptions = DEFAULT_POD_OPTIONS) -> list[Cause]:
    spec = d(obj.get("spec"))
    causes = validate_meta(obj, old, True, names.name_is_dns_label)
    causes += _statefulset_spec(spec)
    if old is not None:
        old_spec = d(old.get("spec"))
        if any(spec.get(k) != old_spec.get(k) for k in (set(spec) | set(old_spec)) - _STS_MUTABLE):
            causes.append(field_forbidden("spec", _STS_UPDATE_FORBIDDEN))
    return causes


def _daemonset_strategy(strategy: dict[str, Any]) -> list[Cause]:
    stype = s(strategy.get("type"))
    if stype == "OnDelete":
        return []
    if stype != "RollingUpdate":
        return [field_not_supported("spec.updateStrategy", GoJSON(strategy), ["RollingUpdate", "OnDelete"])]
    ru = strategy.get("rollingUpdate")
    if not isinstance(ru, dict):
        return [field_required("spec.updateStrategy.rollingUpdate")]
    path = "spec.updateStrategy.rollingUpdate"
    errs_u, unavailable = _int_or_percent(f"{path}.maxUnavailable", ru.get("maxUnavailable"))
    errs_s, surge = _int_or_percent(f"{path}.maxSurge", ru.get("maxSurge"))
    causes = errs_u + errs_s
    if unavailable and surge:
        causes.append(field_invalid(f"{path}.maxSurge", ru.get("maxSurge"),
                                    "may not be set when maxUnavailable is non-zero"))
    elif not unavailable and not surge:
        causes.append(field_required(f"{path}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    return causes


def daemonset(obj: dict[str, Any], old: dict[str, Any] | None,
              opts: PodOptions = DEFAULT_POD_OPTIONS) -> list[Cause]:
    spec = d(obj.get("spec"))
    causes = validate_meta(obj, old, True, names.name_is_dns_subdomain)
    causes += _selector_matches_template(spec, "daemonset")
    causes += pod_template("spec.template", d(spec.get("template")), opts)
    causes += _template_restart_always(spec, "DaemonSet", invalid_deadline=True)
    causes += nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    causes += _daemonset_strategy(d(spec.get("updateStrategy")))
    causes += nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    if old is not None:
        causes += _selector_immutable(spec, d(old.get("spec")))
    return causes


def statefulset_status(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    causes = validate_object_meta_update(d(obj.get("metadata")), d(old.get("metadata")))
    status = d(obj.get("status"))
    for key in ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas",
                "observedGeneration", "collisionCount"):
        causes += nonnegative(f"status.{key}", status.get(key))
    replicas, ready = status.get("replicas") or 0, status.get("readyReplicas") or 0
    for key in ("readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"):
        value = status.get(key) or 0
        if isinstance(value, int) and isinstance(replicas, int) and value > replicas:
            causes.append(field_invalid(f"status.{key}", value, "cannot be greater than status.replicas"))
    available = status.get("availableReplicas") or 0
    if isinstance(available, int) and isinstance(ready, int) and available > ready:
        causes.append(field_invalid("status.availableReplicas", available,
                                    "cannot be greater than status.readyReplicas"))
    return causes


def daemonset_status(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    causes = validate_object_meta_update(d(obj.get("metadata")), d(old.get("metadata")))
    status = d(obj.get("status"))
    for key in ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady",
                "observedGeneration", "updatedNumberScheduled", "numberAvailable", "numberUnavailable",
                "collisionCount"):
        causes += nonnegative(f"status.{key}", status.get(key))
    return causes
