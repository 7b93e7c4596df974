"""batch/v1 validators (pkg/apis/batch/validation): Job and CronJob."""
from __future__ import annotations

import copy
import re
from typing import Any

from kubegate.api.errors import Cause, field_invalid, field_not_supported, field_required

from . import names
from .common import GoJSON, d, nonnegative, s
from .core import DEFAULT_POD_OPTIONS, PodOptions, pod_template
from .cron import load_location, parse_standard
from .meta import immutable, validate_meta, validate_object_meta_update
from .selector import is_empty, selector_matches, validate_label_selector

_COMPLETION_MODES = ["NonIndexed", "Indexed"]
_REPLACEMENT_POLICIES = ["Failed", "TerminatingOrFailed"]
_CONCURRENCY_POLICIES = ["Allow", "Forbid", "Replace"]
_TIME_ZONE_PART = re.compile(r"[A-Za-z\.\-_0-9+]{1,14}\Z")
_MAX_CRONJOB_NAME = 63 - 11  # the controller appends `-<timestamp>` to a Job name that must stay a DNS-1035 label
# The labels of a generated Job selector: legacy first, then the batch.kubernetes.io/ ones.
JOB_NAME_LABELS = ("job-name", "batch.kubernetes.io/job-name")
CONTROLLER_UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")


# --- Job -------------------------------------------------------------------------------------------

def _has_label(labels: dict[str, Any], key: str, expected: str) -> list[Cause]:
    """ValidateHasLabel on the pod template's metadata."""
    path = f"spec.template.metadata.labels[{key}]"
    if key not in labels:
        return [field_required(path, expected)]
    if labels[key] != expected:
        return [field_invalid(path, GoJSON(labels), f"must be '{expected}'")]
    return []


def _generated_selector(obj: dict[str, Any], prefixed_labels: bool) -> list[Cause]:
    """validateGeneratedSelector: unless manualSelector, the template carries the generated labels and the
    selector matches the Job's uid."""
    spec = d(obj.get("spec"))
    if spec.get("manualSelector") is True or spec.get("selector") is None:
        return []
    meta = d(obj.get("metadata"))
    uid, name = s(meta.get("uid")), s(meta.get("name"))
    causes = [] if uid else [field_required("metadata.uid")]
    labels = d(d(d(spec.get("template")).get("metadata")).get("labels"))
    causes += _has_label(labels, CONTROLLER_UID_LABELS[0], uid)
    causes += _has_label(labels, JOB_NAME_LABELS[0], name)
    if prefixed_labels:
        causes += _has_label(labels, CONTROLLER_UID_LABELS[1], uid)
        causes += _has_label(labels, JOB_NAME_LABELS[1], name)
    expected = {CONTROLLER_UID_LABELS[1 if prefixed_labels else 0]: uid}
    sel = d(spec.get("selector"))
    if not selector_matches(sel, expected):
        causes.append(field_invalid("spec.selector", GoJSON(sel), "`selector` not auto-generated"))
    return causes


def _job_spec(path: str, spec: dict[str, Any], opts: PodOptions) -> list[Cause]:
    """validateJobSpec: the checks a Job and a CronJob's job template share."""
    causes: list[Cause] = []
    for key in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"):
        causes += nonnegative(f"{path}.{key}", spec.get(key))
    per_index = spec.get("backoffLimitPerIndex")
    mode = spec.get("completionMode")
    if per_index is not None:
        causes += nonnegative(f"{path}.backoffLimitPerIndex", per_index)
        if mode != "Indexed":
            causes.append(field_invalid(f"{path}.backoffLimitPerIndex", per_index, "requires indexed completion mode"))
    if mode is not None:
        if mode not in _COMPLETION_MODES:
            causes.append(field_not_supported(f"{path}.completionMode", mode, _COMPLETION_MODES))
        elif mode == "Indexed" and spec.get("completions") is None:
            causes.append(field_required(f"{path}.completions", "when completion mode is Indexed"))
    failure_policy = spec.get("podFailurePolicy")
    replacement = spec.get("podReplacementPolicy")
    if replacement is not None:
        if failure_policy is not None:
            if replacement != "Failed":
                causes.append(field_not_supported(f"{path}.podReplacementPolicy", replacement, ["Failed"]))
        elif replacement not in _REPLACEMENT_POLICIES:
            causes.append(field_not_supported(f"{path}.podReplacementPolicy", replacement, _REPLACEMENT_POLICIES))
    template = d(spec.get("template"))
    causes += pod_template(f"{path}.template", template, opts)
    rp = s(d(template.get("spec")).get("restartPolicy"))
    rp_path = f"{path}.template.spec.restartPolicy"
    # restartPolicy defaults to Always, so both an absent and an Always policy ask for a valid one
    if rp in ("Always", ""):
        causes.append(field_required(rp_path, 'valid values: "OnFailure", "Never"'))
    elif rp not in ("OnFailure", "Never"):
        causes.append(field_not_supported(rp_path, rp, ["OnFailure", "Never"]))
    elif failure_policy is not None and rp != "Never":
        causes.append(field_invalid(rp_path, rp, 'only "Never" is supported when podFailurePolicy is specified'))
    return causes


def _job_selector(spec: dict[str, Any]) -> list[Cause]:
    """ValidateJobSpec's selector checks: required, well formed, non-empty, and matching the template."""
    sel = spec.get("selector")
    if sel is None:
        return [field_required("spec.selector")]
    sel = d(sel)
    causes = validate_label_selector(sel, "spec.selector")
    if is_empty(sel):
        causes.append(field_required("spec.selector"))
    tlabels = d(d(d(spec.get("template")).get("metadata")).get("labels"))
    if not selector_matches(sel, tlabels):
        causes.append(field_invalid("spec.template.metadata.labels", GoJSON(tlabels),
                                    "`selector` does not match template `labels`"))
    return causes


def _scheduling_directives_mutable(old: dict[str, Any]) -> bool:
    """A suspended Job that never started may change where its pods would run."""
    return d(old.get("spec")).get("suspend") is True and not d(old.get("status")).get("startTime")


def _template_update(spec: dict[str, Any], old_spec: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    template, old_template = d(spec.get("template")), d(old_spec.get("template"))
    if _scheduling_directives_mutable(old):
        old_template = copy.deepcopy(old_template)
        tspec, ospec = d(template.get("spec")), old_template.setdefault("spec", {})
        affinity, old_affinity = tspec.get("affinity"), ospec.get("affinity")
        if affinity is None and isinstance(old_affinity, dict):
            old_affinity.pop("nodeAffinity", None)
            if not old_affinity:
                ospec.pop("affinity")
        elif isinstance(affinity, dict):
            merged = dict(old_affinity) if isinstance(old_affinity, dict) else {}
            merged.pop("nodeAffinity", None)
            if "nodeAffinity" in affinity:
                merged["nodeAffinity"] = affinity["nodeAffinity"]
            ospec["affinity"] = merged
        for key in ("nodeSelector", "tolerations", "schedulingGates"):
            ospec.pop(key, None)
            if key in tspec:
                ospec[key] = tspec[key]
        ometa, tmeta = old_template.setdefault("metadata", {}), d(template.get("metadata"))
        for key in ("labels", "annotations"):
            ometa.pop(key, None)
            if key in tmeta:
                ometa[key] = tmeta[key]
    if template != old_template:
        return [field_invalid("spec.template", GoJSON(template), "field is immutable")]
    return []


def _completions_update(spec: dict[str, Any], old_spec: dict[str, Any]) -> list[Cause]:
    """Completions are immutable, except for an Indexed Job changing them together with parallelism."""
    completions = spec.get("completions")
    if spec.get("completionMode") != "Indexed":
        return immutable("spec.completions", completions, old_spec.get("completions"))
    if completions == old_spec.get("completions") or completions is None:
        return []
    if completions != spec.get("parallelism"):
        return [field_invalid("spec.completions", completions, "can only be modified in tandem with spec.parallelism")]
    return []


def job(obj: dict[str, Any], old: dict[str, Any] | None, opts: PodOptions = DEFAULT_POD_OPTIONS) -> list[Cause]:
    spec = d(obj.get("spec"))
    meta = d(obj.get("metadata"))
    if old is None:
        prefixed = True
    else:
        # Jobs created before the batch.kubernetes.io/ labels keep validating against the legacy ones.
        old_labels = d(d(d(d(old.get("spec")).get("template")).get("metadata")).get("labels"))
        prefixed = JOB_NAME_LABELS[1] in old_labels and CONTROLLER_UID_LABELS[1] in old_labels
    causes = validate_meta(obj, None, True, names.name_is_dns_subdomain) if old is None else []
    causes += _generated_selector(obj, prefixed)
    causes += _job_spec("spec", spec, opts)
    causes += _job_selector(spec)
    completions = spec.get("completions")
    if spec.get("completionMode") == "Indexed" and isinstance(completions, int) and completions > 0:
        hostname = f"{s(meta.get('name'))}-{completions - 1}"
        if names.is_dns1123_label(hostname):
            causes.append(field_invalid("metadata.name", s(meta.get("name")),
                                        f"will not able to create pod with invalid DNS label: {hostname}"))
    if old is not None:
        old_spec = d(old.get("spec"))
        causes += validate_object_meta_update(meta, d(old.get("metadata")))
        if spec.get("selector") != old_spec.get("selector"):
            causes.append(field_invalid("spec.selector", GoJSON(spec.get("selector")), "field is immutable"))
        causes += _template_update(spec, old_spec, old)
        causes += _completions_update(spec, old_spec)
        for key in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy"):
            if spec.get(key) != old_spec.get(key):
                value = spec.get(key)
                causes += immutable(f"spec.{key}", GoJSON(value) if isinstance(value, dict) else value,
                                    old_spec.get(key))
    return causes


def job_status(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    causes = validate_object_meta_update(d(obj.get("metadata")), d(old.get("metadata")))
    status = d(obj.get("status"))
    for key in ("active", "succeeded", "failed", "ready", "terminating"):
        causes += nonnegative(f"status.{key}", status.get(key))
    return causes


# --- CronJob ---------------------------------------------------------------------------------------

def _schedule(schedule: str, allow_tz: bool, time_zone: Any) -> list[Cause]:
    """validateScheduleFormat."""
    causes: list[Cause] = []
    err = parse_standard(schedule)
    if err:
        causes.append(field_invalid("spec.schedule", schedule, err))
    if allow_tz and "TZ" in schedule and time_zone is not None:
        causes.append(field_invalid("spec.schedule", schedule, "cannot use both timeZone field and TZ or CRON_TZ in "
                                                               "schedule"))
    elif not allow_tz and "TZ" in schedule:
        causes.append(field_invalid("spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone "
                                                               "field instead"))
    return causes


def _time_zone(tz: Any) -> list[Cause]:
    """validateTimeZone: an explicit IANA zone name."""
    if tz is None:
        return []
    path = "spec.timeZone"
    if not isinstance(tz, str) or not tz:
        return [field_invalid(path, tz, "timeZone must be nil or non-empty string")]
    for part in tz.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TIME_ZONE_PART.match(part):
            return [field_invalid(path, tz, f"unknown time zone {tz}")]
    causes: list[Cause] = []
    if tz.lower() == "local":
        causes.append(field_invalid(path, tz, "timeZone must be an explicit time zone as defined in "
                                              "https://www.iana.org/time-zones"))
    err = load_location(tz)
    if err:
        causes.append(field_invalid(path, tz, err))
    return causes


def cronjob(obj: dict[str, Any], old: dict[str, Any] | None, opts: PodOptions = DEFAULT_POD_OPTIONS) -> list[Cause]:
    spec = d(obj.get("spec"))
    old_spec = d(old.get("spec")) if old is not None else None
    causes = validate_meta(obj, old, True, names.name_is_dns_subdomain)
    schedule = s(spec.get("schedule"))
    if not schedule:
        causes.append(field_required("spec.schedule"))
    else:
        # a schedule that already used TZ= may keep it on update
        causes += _schedule(schedule, old_spec is not None and "TZ" in s(old_spec.get("schedule")),
                            spec.get("timeZone"))
    causes += nonnegative("spec.startingDeadlineSeconds", spec.get("startingDeadlineSeconds"))
    if old_spec is None or old_spec.get("timeZone") != spec.get("timeZone"):
        causes += _time_zone(spec.get("timeZone"))
    policy = s(spec.get("concurrencyPolicy"))
    if not policy:
        causes.append(field_required("spec.concurrencyPolicy"))
    elif policy not in _CONCURRENCY_POLICIES:
        causes.append(field_not_supported("spec.concurrencyPolicy", policy, _CONCURRENCY_POLICIES))
    job_spec = d(d(spec.get("jobTemplate")).get("spec"))
    causes += _job_spec("spec.jobTemplate.spec", job_spec, opts)
    if job_spec.get("selector") is not None:
        causes.append(field_invalid("spec.jobTemplate.spec.selector", GoJSON(job_spec["selector"]),
                                    "`selector` will be auto-generated"))
    if job_spec.get("manualSelector") is True:
        causes.append(field_not_supported("spec.jobTemplate.spec.manualSelector", True, ["nil", "false"]))
    causes += nonnegative("spec.successfulJobsHistoryLimit", spec.get("successfulJobsHistoryLimit"))
    causes += nonnegative("spec.failedJobsHistoryLimit", spec.get("failedJobsHistoryLimit"))
    name = s(d(obj.get("metadata")).get("name"))
    if old is None and len(name) > _MAX_CRONJOB_NAME:
        causes.append(field_invalid("metadata.name", name, f"must be no more than {_MAX_CRONJOB_NAME} characters"))
    return causes
