"""Kubernetes API errors as upstream's metav1.Status (k8s.io/apimachinery/pkg/api/errors)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Cause:
    """One StatusCause; `reason` is a field.ErrorType string such as FieldValueInvalid."""

    reason: str
    message: str
    field: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"reason": self.reason, "message": self.message}
        if self.field:
            d["field"] = self.field
        return d


@dataclass
class StatusError(Exception):
    """An error rendered as a Status object with the given HTTP code."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    list_continue: str = ""   # a 410 for an expired continue token carries a fresh token


    def __str__(self) -> str:
        return self.message

    def status(self) -> dict[str, Any]:
        s: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {"continue": self.list_continue} if self.list_continue else {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            s["details"] = self.details
        s["code"] = self.code
        return s


def _gr(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(name: str, group: str, kind: str, causes: list[Cause] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    if kind:
        d["kind"] = kind
    if causes:
        d["causes"] = [c.to_dict() for c in causes]
    return d


def not_found(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(404, "NotFound", f'{_gr(resource, group)} "{name}" not found',
                       _details(name, group, resource))


def already_exists(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(409, "AlreadyExists", f'{_gr(resource, group)} "{name}" already exists',
                       _details(name, group, resource))


def conflict(resource: str, name: str, msg: str, group: str = "") -> StatusError:
    return StatusError(409, "Conflict",
                       f'Operation cannot be fulfilled on {_gr(resource, group)} "{name}": {msg}',
                       _details(name, group, resource))


def forbidden(resource: str, name: str, msg: str, group: str = "") -> StatusError:
    """apierrors.NewForbidden: the outer text depends on whether a resource and name are known."""
    if not resource and not group:
        text = f"forbidden: {msg}"
    elif name:
        text = f'{_gr(resource, group)} "{name}" is forbidden: {msg}'
    else:
        text = f"{_gr(resource, group)} is forbidden: {msg}"
    return StatusError(403, "Forbidden", text, _details(name, group, resource))


def invalid(kind: str, name: str, causes: list[Cause], group: str = "") -> StatusError:
    """apierrors.NewInvalid: `Kind "name" is invalid: [field: msg, ...]`."""
    parts = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    if len(parts) == 1:
        agg = parts[0]
    else:
        agg = "[" + ", ".join(parts) + "]"
    gk = f"{kind}.{group}" if group else kind
    return StatusError(422, "Invalid", f'{gk} "{name}" is invalid: {agg}',
                       _details(name, group, kind, causes))


def bad_request(msg: str) -> StatusError:
    return StatusError(400, "BadRequest", msg)


def method_not_allowed() -> StatusError:
    return StatusError(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource", {})


def not_found_resource() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource", {})


def unsupported_media_type(accepted: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType",
                       f"the body of the request was in an unknown format - accepted media types include: {accepted}")


def not_acceptable(accepted: str) -> StatusError:
    return StatusError(406, "NotAcceptable", f"only the following media types are accepted: {accepted}")


def too_large(limit: int) -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}",
                       headers={"Connection": "close"})


def gone(msg: str) -> StatusError:
    return StatusError(410, "Expired", msg)


def unauthorized() -> StatusError:
    return StatusError(401, "Unauthorized", "Unauthorized")


def internal(msg: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {msg}",
                       {"causes": [{"message": msg}]})


# field.Error constructors (k8s.io/apimachinery/pkg/util/validation/field/errors.go)

def _quote(v: Any) -> str:
    """Go's %#v-ish rendering used in field errors: strings quoted, numbers bare."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if v is None:
        return "null"
    import json
    if isinstance(v, str):
        if type(v) is not str:  # already rendered Go text (e.g. a struct dump), printed bare
            return str(v)
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, dict)):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    return str(v)


def field_invalid(path: str, value: Any, detail: str) -> Cause:
    msg = f"Invalid value: {_quote(value)}"
    if detail:
        msg += f": {detail}"
    return Cause("FieldValueInvalid", msg, path)


def field_required(path: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", "Required value" + (f": {detail}" if detail else ""), path)


def field_forbidden(path: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", "Forbidden" + (f": {detail}" if detail else ""), path)


def field_duplicate(path: str, value: Any) -> Cause:
    return Cause("FieldValueDuplicate", f"Duplicate value: {_quote(value)}", path)


def field_not_supported(path: str, value: Any, valid: list[str]) -> Cause:
    msg = f"Unsupported value: {_quote(value)}"
    if valid:
        msg += ": supported values: " + ", ".join(_quote(v) for v in valid)
    return Cause("FieldValueNotSupported", msg, path)


def field_too_long(path: str, max_len: int) -> Cause:
    return Cause("FieldValueTooLong", f"Too long: may not be more than {max_len} bytes", path)


def field_too_many(path: str, actual: int, max_n: int) -> Cause:
    return Cause("FieldValueTooMany", f"Too many: {actual}: must have at most {max_n} items", path)
