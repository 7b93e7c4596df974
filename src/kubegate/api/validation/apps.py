"""apps/v1 validators (pkg/apis/apps/validation): Deployment and ReplicaSet."""
from __future__ import annotations

import re
from typing import Any

from kubegate.api.errors import Cause, field_forbidden, field_invalid, field_not_supported, field_required

from . import names
from .common import GoJSON, d, nonnegative, s
from .core import DEFAULT_POD_OPTIONS, PodOptions, pod_template
from .meta import validate_meta, validate_object_meta_update
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
