"""ObjectMeta validation for create and update (apimachinery pkg/api/validation/objectmeta.go)."""
from __future__ import annotations

from typing import Any

from kubegate.api.errors import Cause, field_forbidden, field_invalid, field_required, field_too_long

from . import names
from .common import d as _dict, lst as _list, nonnegative as _nonnegative
from .names import NameValidator


def validate_labels(labels: dict[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    for k, v in labels.items():
        causes += [field_invalid(path, k, m) for m in names.is_qualified_name(k)]
        v = v if isinstance(v, str) else str(v)
        causes += [field_invalid(path, v, m) for m in names.is_label_value(v)]
    return causes


def validate_annotations(annotations: dict[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    total = 0
    for k, v in annotations.items():
        causes += [field_invalid(path, k, m) for m in names.is_qualified_name(k.lower())]
        total += len(k.encode()) + len(str(v).encode())
    if total > names.TOTAL_ANNOTATION_SIZE:
        causes.append(field_too_long(path, names.TOTAL_ANNOTATION_SIZE))
    return causes


def validate_finalizers(finalizers: list[Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    for f in finalizers:
        f = str(f)
        causes += [field_invalid(path, f, m) for m in names.is_qualified_name(f)]
    return causes


def validate_owner_references(refs: list[Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    controllers: list[str] = []
    for ref in refs:
        ref = _dict(ref)
        api_version = str(ref.get("apiVersion") or "")
        kind = str(ref.get("kind") or "")
        if not api_version:
            causes.append(field_invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        if not kind:
            causes.append(field_invalid(f"{path}.kind", kind, "kind must not be empty"))
        if not ref.get("name"):
            causes.append(field_invalid(f"{path}.name", "", "name must not be empty"))
        if not ref.get("uid"):
            causes.append(field_invalid(f"{path}.uid", "", "uid must not be empty"))
        if ref.get("controller") is True:
            controllers.append(f"{kind}/{ref.get('name') or ''}")
    if len(controllers) > 1:
        causes.append(field_invalid(
            path, "", "Only one reference can have Controller set to true. Found \"true\" in references for "
            + " and ".join(controllers)))
    return causes


def _common(m: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    causes += _nonnegative("metadata.generation", m.get("generation"))
    causes += validate_labels(_dict(m.get("labels")), "metadata.labels")
    causes += validate_annotations(_dict(m.get("annotations")), "metadata.annotations")
    causes += validate_owner_references(_list(m.get("ownerReferences")), "metadata.ownerReferences")
    causes += validate_finalizers(_list(m.get("finalizers")), "metadata.finalizers")
    return causes


def validate_object_meta(m: dict[str, Any], namespaced: bool, name_fn: NameValidator) -> list[Cause]:
    """ValidateObjectMeta: name/generateName, namespace by scope, labels, annotations, owners, finalizers."""
    causes: list[Cause] = []
    gen = str(m.get("generateName") or "")
    if gen:
        causes += [field_invalid("metadata.generateName", gen, msg) for msg in name_fn(gen, True)]
    name = str(m.get("name") or "")
    if not name:
        causes.append(field_required("metadata.name", "name or generateName is required"))
    else:
        causes += [field_invalid("metadata.name", name, msg) for msg in name_fn(name, False)]
    ns = str(m.get("namespace") or "")
    if namespaced:
        if not ns:
            causes.append(field_required("metadata.namespace"))
        else:
            causes += [field_invalid("metadata.namespace", ns, msg) for msg in names.name_is_dns_label(ns, False)]
    elif ns:
        causes.append(field_forbidden("metadata.namespace", "not allowed on this type"))
    return causes + _common(m)


def validate_meta(obj: dict[str, Any], old: dict[str, Any] | None, namespaced: bool,
                  name_fn: NameValidator) -> list[Cause]:
    """An object's metadata: ValidateObjectMeta on create (`old` None), else ValidateObjectMetaUpdate."""
    m = _dict(obj.get("metadata"))
    if old is None:
        return validate_object_meta(m, namespaced, name_fn)
    return validate_object_meta_update(m, _dict(old.get("metadata")))


def immutable(path: str, new: Any, old: Any) -> list[Cause]:
    """ValidateImmutableField."""
    if new != old:
        return [field_invalid(path, new, "field is immutable")]
    return []


def validate_object_meta_update(m: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """ValidateObjectMetaUpdate: identity fields are immutable; no new finalizers once deleting."""
    causes: list[Cause] = []
    causes += _common(m)
    if old.get("deletionTimestamp"):
        old_f = set(_list(old.get("finalizers")))
        added = [f for f in _list(m.get("finalizers")) if f not in old_f]
        if added:
            causes.append(field_forbidden(
                "metadata.finalizers",
                "no new finalizers can be added if the object is being deleted, found new finalizers "
                + "[" + " ".join(f'"{f}"' for f in added) + "]"))
    new_gen, old_gen = m.get("generation") or 0, old.get("generation") or 0
    if isinstance(new_gen, int) and isinstance(old_gen, int) and new_gen < old_gen:
        causes.append(field_invalid("metadata.generation", new_gen, "must not be decremented"))
    for key in ("name", "namespace", "uid", "creationTimestamp"):
        causes += immutable(f"metadata.{key}", m.get(key) or "", old.get(key) or "")
    if old.get("deletionTimestamp"):
        causes += immutable("metadata.deletionTimestamp", m.get("deletionTimestamp"), old.get("deletionTimestamp"))
        causes += immutable("metadata.deletionGracePeriodSeconds", m.get("deletionGracePeriodSeconds"),
                            old.get("deletionGracePeriodSeconds"))
    return causes
