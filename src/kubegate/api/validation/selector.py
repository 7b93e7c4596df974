"""metav1.LabelSelector validation (apimachinery pkg/apis/meta/v1/validation)."""
from __future__ import annotations

from typing import Any

from kubegate.api.errors import Cause, field_forbidden, field_invalid, field_required

from . import names
from .common import d, lst, s
from .meta import validate_labels


def validate_label_selector(sel: dict[str, Any], path: str, allow_invalid_label_value: bool = False) -> list[Cause]:
    causes = validate_labels(d(sel.get("matchLabels")), f"{path}.matchLabels")
    for i, req in enumerate(lst(sel.get("matchExpressions"))):
        req = d(req)
        ip = f"{path}.matchExpressions[{i}]"
        op, values = s(req.get("operator")), lst(req.get("values"))
        if op in ("In", "NotIn"):
            if not values:
                causes.append(field_required(f"{ip}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                causes.append(field_forbidden(
                    f"{ip}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            causes.append(field_invalid(f"{ip}.operator", op, "not a valid selector operator"))
        key = s(req.get("key"))
        causes += [field_invalid(f"{ip}.key", key, m) for m in names.is_qualified_name(key)]
        for j, v in enumerate(values if not allow_invalid_label_value else []):
            causes += [field_invalid(f"{ip}.values[{j}]", v, m) for m in names.is_label_value(s(v))]
    return causes


def selector_matches(sel: dict[str, Any], labels: dict[str, Any]) -> bool:
    """LabelSelectorAsSelector(sel).Matches(labels)."""
    for k, v in d(sel.get("matchLabels")).items():
        if labels.get(k) != v:
            return False
    for req in lst(sel.get("matchExpressions")):
        req = d(req)
        key, op, values = s(req.get("key")), s(req.get("operator")), lst(req.get("values"))
        has = key in labels
        if op == "In" and not (has and labels[key] in values):
            return False
        if op == "NotIn" and has and labels[key] in values:
            return False
        if op == "Exists" and not has:
            return False
        if op == "DoesNotExist" and has:
            return False
    return True


def is_empty(sel: dict[str, Any]) -> bool:
    return not d(sel.get("matchLabels")) and not lst(sel.get("matchExpressions"))
