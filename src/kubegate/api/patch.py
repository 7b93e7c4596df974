"""PATCH semantics: JSON patch, JSON merge patch and strategic merge patch over JSON-form values.

Behaviour follows kube-apiserver v1.36: the patch handler (k8s.io/apiserver/pkg/endpoints/handlers/patch.go),
gopkg.in/evanphx/json-patch.v4 for JSON and merge patches, and
k8s.io/apimachinery/pkg/util/strategicpatch for strategic merge patches. Upstream quirks that clients can
observe are kept on purpose (for example `replace` of a missing object key adds it, negative array indices
count from the end, merge-patch nulls inside arrays survive).

Every function is pure: inputs are never mutated, results are fresh values.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, Mapping, Protocol

from kubegate.api.errors import StatusError
from kubegate.api.gojson import json_kind, syntax_error

MAX_JSON_PATCH_OPERATIONS = 10000

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_DELETE_PRIMITIVE_PREFIX = "$deleteFromPrimitiveList"
_SET_ORDER_PREFIX = "$setElementOrder"


# ---------------------------------------------------------------------------------------------------------
# Errors


class PatchError(StatusError):
    """A patch failure rendered like upstream's Status, including reason-less 500s for plain Go errors."""

    def status(self) -> dict[str, Any]:
        s = super().status()
        if not self.reason:
            # metav1.StatusReasonUnknown is "" and is omitted from the JSON.
            del s["reason"]
        return s


def _bad_request(msg: str) -> PatchError:
    return PatchError(400, "BadRequest", msg)


def _invalid_generic() -> PatchError:
    # errors.NewGenericServerResponse(422, ...): the real cause is not shown to the client.
    return PatchError(422, "Invalid", "the server rejected our request due to an error in our request", {})


def _internal(msg: str) -> PatchError:
    # A plain Go error reaching responsewriters.ErrorToAPIStatus: code 500, empty reason, raw message.
    return PatchError(500, "", msg)


# ---------------------------------------------------------------------------------------------------------
# Go value semantics: interface equality and fmt %v rendering, used for matching and error messages.


def _go_eq(a: Any, b: Any) -> bool:
    """Go `==` on interface{} values decoded from JSON: equal dynamic type and equal value."""
    return type(a) is type(b) and a == b


def _hkey(v: Any) -> tuple[type, Any]:
    """A hashable key with Go's type-sensitive map-key semantics (1, 1.0 and true stay distinct)."""
    try:
        hash(v)
    except TypeError as e:
        raise _internal(f"runtime error: hash of unhashable type {_go_type(v)}") from e
    return (type(v), v)


def _go_type(v: Any) -> str:
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, list):
        return "[]interface {}"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    return "<nil>"


def _go_float(f: float) -> str:
    """strconv.FormatFloat(f, 'g', -1, 64) as used by %v."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    sign, digits_t, exp = Decimal(repr(f)).as_tuple()
    digits = "".join(map(str, digits_t)).rstrip("0") or "0"
    assert isinstance(exp, int)
    dp = len("".join(map(str, digits_t))) + exp  # decimal point position relative to the digit string
    neg = "-" if sign else ""
    x = dp - 1
    if x < -4 or x >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{neg}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if dp <= 0:
        return f"{neg}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return f"{neg}{digits}{'0' * (dp - len(digits))}"
    return f"{neg}{digits[:dp]}.{digits[dp:]}"


def _go_v(v: Any) -> str:
    """fmt's %v for JSON-decoded Go values (maps print with sorted keys)."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_go_v(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(_go_v(x) for x in v) + "]"
    return str(v)


def _go_s(v: Any) -> str:
    """fmt's %s: strings print bare, other scalars as %!s(type=value)."""
    if isinstance(v, str):
        return v
    if isinstance(v, (dict, list)):
        return _go_v(v)
    if v is None:
        return "%!s(<nil>)"
    return f"%!s({_go_type(v)}={_go_v(v)})"


# ---------------------------------------------------------------------------------------------------------
# Decoding request bodies with Go's encoding/json error texts.


def _parse_int(s: str) -> int | float:
    # Patch maps are decoded preserving int64; larger integers fall back to float64.
    v = int(s)
    return v if -(2**63) <= v < 2**63 else float(s)


def _go_json(data: bytes, preserve_int64: bool) -> tuple[Any, str | None]:
    """Decode like Go: returns (value, None) or (None, the Go error text).

    JSON and merge patches work on the raw bytes upstream, so their integers stay exact; strategic
    patches are decoded into int64/float64 first.
    """
    err = syntax_error(data)
    if err:
        return None, err
    text = data.decode("utf-8", "replace")
    return (json.loads(text, parse_int=_parse_int) if preserve_int64 else json.loads(text)), None


def _unmarshal_type_error(v: Any, go_type: str) -> str:
    return f"json: cannot unmarshal {json_kind(v)} into Go value of type {go_type}"


def _json_patch_ops_type_error(v: Any, strict: bool) -> str | None:
    """The first type error decoding v into []handlers.jsonPatchOp (strict) or jsonpatch.Patch (Ignore)."""
    if v is None:
        return None
    if not isinstance(v, list):
        return _unmarshal_type_error(v, "[]handlers.jsonPatchOp" if strict else "jsonpatch.Patch")
    for op in v:
        if op is None:
            continue
        if not isinstance(op, dict):
            return _unmarshal_type_error(op, "handlers.jsonPatchOp" if strict else "jsonpatch.Operation")
        if strict:
            for name, value in op.items():
                if name in ("op", "path", "from") and value is not None and not isinstance(value, str):
                    return (f"json: cannot unmarshal {json_kind(value)} into Go struct field "
                            f"jsonPatchOp.{name} of type string")
    return None


class PatchKind(str, Enum):
    """The PATCH Content-Types kube-apiserver accepts (types.PatchType)."""

    JSON = "application/json-patch+json"
    MERGE = "application/merge-patch+json"
    STRATEGIC = "application/strategic-merge-patch+json"
    APPLY = "application/apply-patch+yaml"


def _supported_kinds(strategic: bool) -> list[PatchKind]:
    kinds = [PatchKind.JSON, PatchKind.MERGE, PatchKind.STRATEGIC, PatchKind.APPLY]
    return [k for k in kinds if strategic or k is not PatchKind.STRATEGIC]


def _route_accepts(content_type: str, accepted: list[str]) -> bool:
    """go-restful's Consumes check: any comma-separated type, parameters cut and spaces trimmed."""
    if not content_type:
        content_type = "application/octet-stream"
    for part in content_type.split(","):
        mime = part.split(";", 1)[0].strip(" ")
        if mime and mime in accepted:
            return True
    return False


def decode_patch(content_type: str, body: bytes, *, field_validation: str = "",
                 strategic: bool = True) -> tuple[PatchKind, Any]:
    """Pick the patch type from Content-Type and decode the body as kube-apiserver does.

    Returns (kind, parsed). For APPLY the body is returned undecoded so the caller can route it to
    server-side apply. `field_validation` is the request's fieldValidation (""=Warn); `strategic` is False
    for resources without Go types (custom resources), which do not accept strategic merge patch.
    """
    kinds = _supported_kinds(strategic)
    accepted = [k.value for k in kinds]
    if not _route_accepts(content_type, accepted):
        # Rejected by the router before the patch handler runs.
        raise PatchError(415, "UnsupportedMediaType", "415: Unsupported Media Type", {})
    idx = content_type.find(";")
    media = content_type[:idx] if idx > 0 else content_type
    if media not in accepted:
        raise PatchError(415, "UnsupportedMediaType",
                         "the body of the request was in an unknown format - accepted media types include: "
                         + ", ".join(accepted))
    kind = PatchKind(media)
    if kind is PatchKind.APPLY:
        return kind, body
    strict = (field_validation or "Warn") in ("Warn", "Strict")
    value, err = _go_json(body, preserve_int64=kind is PatchKind.STRATEGIC)
    if kind is PatchKind.JSON:
        if err is None:
            err = _json_patch_ops_type_error(value, strict)
        if err is not None:
            raise _bad_request(f"error decoding patch: {err}" if strict else err)
        return kind, value
    if kind is PatchKind.MERGE:
        if strict:
            if err is None and value is not None and not isinstance(value, dict):
                err = _unmarshal_type_error(value, "map[string]interface {}")
            if err is not None:
                raise _bad_request(f"error decoding patch: {err}")
        elif err is not None:
            raise _bad_request("Invalid JSON Patch")
        return kind, value
    if err is None and value is not None and not isinstance(value, dict):
        err = _unmarshal_type_error(value, "map[string]interface {}")
    if err is not None:
        raise _bad_request(err)
    return kind, value


# ---------------------------------------------------------------------------------------------------------
# JSON patch (RFC 6902, evanphx/json-patch v4 semantics)

_ATOI = re.compile(r"[+-]?[0-9]+\Z")
_POINTER_ESCAPE = re.compile(r"~[01]")


def _unescape(token: str) -> str:
    return _POINTER_ESCAPE.sub(lambda m: "/" if m.group() == "~1" else "~", token)


class _OpFailed(Exception):
    """One JSON patch operation did not apply; upstream hides the reason behind a generic 422."""


_MISSING = object()


def _container(doc: Any, path: str) -> tuple[Any, str]:
    """findObject: the object or array holding the last token of path, and that token."""
    parts = path.split("/")
    if len(parts) < 2:
        raise _OpFailed(f"doc is missing path: {path}")
    cur = doc
    for raw in parts[1:-1]:
        nxt = _get(cur, _unescape(raw))
        if nxt is _MISSING or not isinstance(nxt, (dict, list)):
            raise _OpFailed(f"doc is missing path: {path}")
        cur = nxt
    return cur, _unescape(parts[-1])


def _index(ary: list[Any], key: str, extra: int = 0) -> int:
    """An array index the way v4 reads it: strconv.Atoi, negative values count from the end."""
    if not _ATOI.match(key):
        raise _OpFailed(f"value was not a proper array index: '{key}'")
    idx = int(key)
    size = len(ary) + extra
    if idx >= size or idx < -size:
        raise _OpFailed(f"Unable to access invalid index: {idx}")
    return idx + size if idx < 0 else idx


def _get(con: Any, key: str) -> Any:
    if isinstance(con, dict):
        return con.get(key, _MISSING)
    if isinstance(con, list):
        try:
            return con[_index(con, key)]
        except _OpFailed:
            return _MISSING
    return _MISSING


def _add(con: Any, key: str, value: Any) -> None:
    if isinstance(con, dict):
        con[key] = value
    elif key == "-":
        con.append(value)
    else:
        con.insert(_index(con, key, extra=1), value)


def _remove(con: Any, key: str) -> Any:
    if isinstance(con, dict):
        if key not in con:
            raise _OpFailed(f"Unable to remove nonexistent key: {key}")
        return con.pop(key)
    return con.pop(_index(con, key))


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    return _go_eq(a, b)


def _op_string(op: dict[str, Any], name: str) -> str:
    v = op.get(name)
    if not isinstance(v, str):
        raise _OpFailed(f"operation missing {name} field")
    return v


def _apply_op(doc: Any, op: Any) -> Any:
    """Apply one operation in place; returns the (possibly replaced) document."""
    kind = op.get("op") if isinstance(op, dict) else None
    if not isinstance(op, dict) or kind not in ("add", "remove", "replace", "move", "copy", "test"):
        raise _OpFailed(f"Unexpected kind: {kind if isinstance(kind, str) else 'unknown'}")
    path = _op_string(op, "path")
    value = copy.deepcopy(op.get("value"))
    if kind == "add":
        con, key = _container(doc, path)
        _add(con, key, value)
    elif kind == "remove":
        con, key = _container(doc, path)
        _remove(con, key)
    elif kind == "replace":
        if path == "":
            if not isinstance(value, (dict, list)):
                raise _OpFailed("replace operation value must be object or array")
            return value
        con, key = _container(doc, path)
        if isinstance(con, dict):
            con[key] = value  # v4 quirk: replacing a missing key adds it
        else:
            con[_index(con, key)] = value
    elif kind == "move":
        con, key = _container(doc, _op_string(op, "from"))
        moved = _remove(con, key)
        con, key = _container(doc, path)
        _add(con, key, moved)
    elif kind == "copy":
        con, key = _container(doc, _op_string(op, "from"))
        if isinstance(con, list):
            src = con[_index(con, key)]
        else:
            src = con.get(key)  # v4 quirk: copying a missing key adds null
        con, key = _container(doc, path)
        _add(con, key, copy.deepcopy(src))
    else:
        if path == "":
            current = doc
        else:
            con, key = _container(doc, path)
            current = con[_index(con, key)] if isinstance(con, list) else con.get(key, _MISSING)
        if current is _MISSING:
            if value is not None:
                raise _OpFailed(f"testing value {path} failed")
        elif not _json_equal(current, value):
            raise _OpFailed(f"testing value {path} failed")
    return doc


def json_patch(doc: Any, ops: list[Any] | None) -> Any:
    """Apply an RFC 6902 JSON patch (already decoded) to doc and return the new document."""
    ops = ops or []
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(413, "RequestEntityTooLarge",
                         "Request entity too large: The allowed maximum operations in a JSON patch is "
                         f"{MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}")
    result = copy.deepcopy(doc)
    try:
        for op in ops:
            result = _apply_op(result, op)
    except _OpFailed as e:
        raise _invalid_generic() from e
    return result


# ---------------------------------------------------------------------------------------------------------
# JSON merge patch (RFC 7386, evanphx/json-patch v4 semantics)


def _prune_nulls(v: Any) -> None:
    """Drop null members of objects, recursively; nulls inside arrays are kept (v4 behaviour)."""
    if isinstance(v, dict):
        for k in [k for k, x in v.items() if x is None]:
            del v[k]
        for x in v.values():
            _prune_nulls(x)
    elif isinstance(v, list):
        for x in v:
            _prune_nulls(x)


def _merge_docs(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    for k, pv in patch.items():
        if pv is None:
            doc.pop(k, None)
            continue
        cur = doc.get(k)
        if cur is None:
            _prune_nulls(pv)
            doc[k] = pv
        elif not isinstance(cur, dict):
            _prune_nulls(pv)
            doc[k] = pv
        elif isinstance(pv, dict):
            _merge_docs(cur, pv)
        else:
            doc[k] = pv


def merge_patch(doc: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch (already decoded): objects merge, null deletes, the rest replaces."""
    if patch is None:
        raise _bad_request("Invalid JSON Patch")
    p = copy.deepcopy(patch)
    if isinstance(p, list):
        _prune_nulls(p)
        return p
    if not isinstance(p, dict):
        raise _bad_request("Invalid JSON Patch")
    if not isinstance(doc, dict):
        _prune_nulls(p)
        return p
    result = copy.deepcopy(doc)
    _merge_docs(result, p)
    return result


# ---------------------------------------------------------------------------------------------------------
# Strategic merge patch metadata


@dataclass(frozen=True)
class FieldPatchMeta:
    """Patch metadata of one field: x-kubernetes-patch-strategy / -merge-key and the value type's meta."""

    strategies: frozenset[str] = frozenset()
    merge_key: str | None = None
    is_list: bool = False
    child: PatchMeta | None = None


class PatchMeta(Protocol):
    def field(self, name: str) -> FieldPatchMeta | None: ...


class NoPatchMeta:
    """No metadata: every list and map field is replaced or merged like a plain JSON object."""

    def field(self, name: str) -> FieldPatchMeta | None:
        return None


_NO_META = NoPatchMeta()


class DictPatchMeta:
    """PatchMeta from a nested dict, for tests and hand-written schemas.

    {"spec": {"fields": {"containers": {"list": True, "strategy": "merge", "mergeKey": "name",
                                         "fields": {...}}}}}
    `strategy` is upstream's tag text ("merge", "merge,retainKeys", ...).
    """

    def __init__(self, fields: Mapping[str, Mapping[str, Any]]) -> None:
        self._fields: dict[str, FieldPatchMeta] = {}
        for name, spec in fields.items():
            strategy = spec.get("strategy", "")
            child = spec.get("fields")
            self._fields[name] = FieldPatchMeta(
                strategies=frozenset(s for s in strategy.split(",") if s),
                merge_key=spec.get("mergeKey"),
                is_list=bool(spec.get("list", False)),
                child=DictPatchMeta(child) if child is not None else None,
            )

    def field(self, name: str) -> FieldPatchMeta | None:
        return self._fields.get(name)


def _strategy(fm: FieldPatchMeta | None) -> str:
    """The strategy besides retainKeys (which only shapes client-side diffs)."""
    if fm is None:
        return ""
    for s in ("merge", "replace"):
        if s in fm.strategies:
            return s
    return ""


def _child(fm: FieldPatchMeta | None) -> PatchMeta:
    return fm.child if fm is not None and fm.child is not None else _NO_META


# ---------------------------------------------------------------------------------------------------------
# Strategic merge patch (k8s.io/apimachinery/pkg/util/strategicpatch, server side: parallel lists merged,
# unmatched nulls ignored)

_ERR_PRIMITIVE_LIST = "invalid patch format of primitive list"
_ERR_RETAIN_KEYS = "invalid patch format of retainKeys"
_ERR_SET_ORDER = "invalid patch format of setElementOrder list"


def _err_no_merge_key(m: dict[str, Any], key: str) -> PatchError:
    return _internal(f"map: {_go_v(m)} does not contain declared merge key: {key}")


def _err_bad_arg_type(expected: str, actual: Any) -> PatchError:
    return _internal(f"expected a {expected}, but received a {_go_type(actual)}")


def _extract_key(s: str, prefix: str) -> str:
    head, sep, rest = s.partition("/")
    if not sep or head != prefix:
        raise _bad_request(_ERR_PRIMITIVE_LIST if prefix == _DELETE_PRIMITIVE_PREFIX else _ERR_SET_ORDER)
    return rest


def _remove_directives(obj: Any) -> tuple[Any, bool]:
    """Strip `$patch` maps from a value being added wholesale; False means drop the value itself."""
    if isinstance(obj, dict):
        if _DIRECTIVE in obj:
            return None, False
        for k in list(obj):
            v, keep = _remove_directives(obj[k])
            if keep:
                obj[k] = v
            else:
                del obj[k]
        return obj, True
    if isinstance(obj, list):
        out = []
        for x in obj:
            v, keep = _remove_directives(x)
            if keep:
                out.append(v)
        return out, True
    return obj, True


def _discard_nulls(v: Any) -> None:
    if isinstance(v, dict):
        for k in list(v):
            if v[k] is None:
                del v[k]
            else:
                _discard_nulls(v[k])
    elif isinstance(v, list):
        for x in v:
            _discard_nulls(x)


def _element_type(*slices: list[Any]) -> type:
    prev: type | None = None
    for s in slices:
        for v in s:
            t = type(v)
            if prev is None:
                if t is list:
                    # ErrNoListOfLists is answered with a generic 422.
                    raise _invalid_generic()
                prev = t
            elif prev is not t:
                raise _internal("list element types are not identical: "
                                + "[" + " ".join(_go_v(x) for x in slices) + "]")
    if prev is None:
        raise _internal("no elements in any of the given slices")
    return prev


def _find_by_key(items: list[Any], key: str, value: Any) -> int:
    for i, v in enumerate(items):
        if not isinstance(v, dict):
            raise _internal(f"value for key {i} is not a map")
        if key in v and _go_eq(v[key], value):
            return i
    return -1


def _order_index(order: list[Any], item: Any, merge_key: str, kind: type) -> int:
    def val(x: Any) -> Any:
        if kind is dict:
            return x.get(merge_key) if isinstance(x, dict) else None
        return x

    target = val(item)
    for i, v in enumerate(order):
        if _go_eq(target, val(v)):
            return i
    return -1


def _sort_by_order(items: list[Any], order: list[Any], merge_key: str, kind: type) -> list[Any]:
    """sort.SliceStable with upstream's comparator (items missing from order compare as smaller)."""
    out = list(items)

    def less(a: Any, b: Any) -> bool:
        ia = _order_index(order, a, merge_key, kind)
        if ia >= 0:
            ib = _order_index(order, b, merge_key, kind)
            if ib >= 0:
                return ia < ib
        return True

    for i in range(1, len(out)):
        j = i
        while j > 0 and less(out[j], out[j - 1]):
            out[j], out[j - 1] = out[j - 1], out[j]
            j -= 1
    return out


def _normalize_slice_order(items: list[Any], order: list[Any], merge_key: str, kind: type) -> list[Any]:
    to_delete: list[Any] = []
    if kind is dict:
        for lst in (items, order):
            for m in lst:
                if not isinstance(m, dict):
                    raise _err_bad_arg_type("map[string]interface {}", m)
                if merge_key not in m:
                    raise _err_no_merge_key(m, merge_key)
        keep = [m for m in items if not _go_eq(m.get(_DIRECTIVE), "delete")]
        to_delete = [m for m in items if _go_eq(m.get(_DIRECTIVE), "delete")]
        items = keep
    return _sort_by_order(items, order, merge_key, kind) + to_delete


def _merge_sorted(left: list[Any], right: list[Any], server_order: list[Any], merge_key: str,
                  kind: type) -> list[Any]:
    """Interleave server-only items (left) into patch items (right) by their live-object order."""
    out: list[Any] = []
    i = j = 0
    while i < len(left) and j < len(right):
        li = _order_index(server_order, left[i], merge_key, kind)
        ri = _order_index(server_order, right[j], merge_key, kind)
        if li >= 0 and ri >= 0 and li < ri:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    return out + left[i:] + right[j:]


def _normalize_element_order(patch_items: list[Any], server_only: list[Any], patch_order: list[Any],
                             server_order: list[Any], merge_key: str, kind: type) -> list[Any]:
    p = _normalize_slice_order(patch_items, patch_order, merge_key, kind)
    s = _normalize_slice_order(server_only, server_order, merge_key, kind)
    return _merge_sorted(s, p, server_order, merge_key, kind)


def _partition(merged: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """Split merged items into (present in `by`, server-only)."""
    inside: list[Any] = []
    outside: list[Any] = []
    if not merge_key:
        keys = {_hkey(v) for v in by}
        for v in merged:
            (inside if _hkey(v) in keys else outside).append(v)
        return inside, outside
    for v in merged:
        if not isinstance(v, dict):
            raise _err_bad_arg_type("map[string]interface {}", v)
        if merge_key not in v:
            raise _err_no_merge_key(v, merge_key)
        (inside if _find_by_key(by, merge_key, v[merge_key]) >= 0 else outside).append(v)
    return inside, outside


def _dedup_scalars(s: list[Any]) -> list[Any]:
    """Upstream's in-place dedup (a duplicate is overwritten by the last element)."""
    s = list(s)
    length = len(s) - 1
    i = 0
    while i < length:
        j = i + 1
        while j <= length:
            if _go_eq(s[i], s[j]):
                s[j] = s[length]
                s = s[:length]
                length -= 1
                j -= 1
            j += 1
        i += 1
    return s


def _merge_special_elements(original: list[Any], patch: list[Any],
                            merge_key: str) -> tuple[list[Any], list[Any]]:
    """Apply `$patch: delete` / `$patch: replace` list elements; returns (original, remaining patch)."""
    plain: list[Any] = []
    replace = False
    for v in patch:
        if _DIRECTIVE not in v:
            plain.append(v)
            continue
        d = v[_DIRECTIVE]
        if _go_eq(d, "delete"):
            if merge_key not in v:
                raise _err_no_merge_key(v, merge_key)
            while (i := _find_by_key(original, merge_key, v[merge_key])) >= 0:
                original = original[:i] + original[i + 1:]
        elif _go_eq(d, "replace"):
            replace = True
        elif _go_eq(d, "merge"):
            raise _internal("merging lists cannot yet be specified in the patch")
        else:
            raise _internal(f"unknown patch type: {_go_s(d)} in map: {_go_v(v)}")
    if replace:
        return plain, []
    return original, plain


def _merge_slice(original: list[Any], patch: list[Any], meta: PatchMeta, merge_key: str,
                 is_delete_list: bool) -> list[Any]:
    if not original and not patch:
        return original
    kind = _element_type(original, patch)
    if kind is not dict:
        if is_delete_list:
            drop = {_hkey(v) for v in patch}
            return [v for v in original if _hkey(v) not in drop]
        merged = _dedup_scalars(original + patch)
    else:
        if not merge_key:
            raise _internal("cannot merge lists without merge key")
        original, patch = _merge_special_elements(original, patch, merge_key)
        merged = list(original)
        for v in patch:
            if merge_key not in v:
                raise _err_no_merge_key(v, merge_key)
            i = _find_by_key(merged, merge_key, v[merge_key])
            if i >= 0:
                merged[i] = _merge_map(merged[i], v, meta)
            else:
                merged.append(v)
    inside, server_only = _partition(merged, patch, merge_key)
    return _normalize_element_order(inside, server_only, patch, original, merge_key, kind)


def _merge_slice_handler(original: list[Any], patch: list[Any], fm: FieldPatchMeta | None,
                         is_delete_list: bool) -> list[Any]:
    if _strategy(fm) == "merge" or is_delete_list:
        return _merge_slice(original, patch, _child(fm), (fm.merge_key if fm else None) or "", is_delete_list)
    return patch


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if _RETAIN_KEYS not in patch:
        return
    keys = patch.pop(_RETAIN_KEYS)
    if not isinstance(keys, list):
        raise _bad_request(_ERR_RETAIN_KEYS)
    allowed = {_hkey(k) for k in keys}
    for k, v in patch.items():
        if v is None or k.startswith(_DELETE_PRIMITIVE_PREFIX) or k.startswith(_SET_ORDER_PREFIX):
            continue
        if (str, k) not in allowed:
            raise _bad_request(_ERR_RETAIN_KEYS)
    for k in [k for k in original if (str, k) not in allowed]:
        del original[k]


def _check_set_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """Patch items (deletions aside) must appear in the $setElementOrder list in the same relative order."""
    if not order or not patch_list:
        return
    items = patch_list
    if merge_key:
        for v in patch_list:
            if not isinstance(v, dict):
                raise _err_bad_arg_type("map[string]interface {}", v)
        items = [v for v in patch_list if not _go_eq(v.get(_DIRECTIVE), "delete")]
    pi = oi = 0
    while pi < len(items) and oi < len(order):
        if isinstance(items[pi], dict) and _DIRECTIVE in items[pi]:
            pi += 1
            continue
        if _merge_key_equal(items[pi], order[oi], merge_key):
            pi += 1
        oi += 1
    if pi < len(items) and oi >= len(order):
        raise _internal(f"the order in patch list:\n{_go_v(patch_list)}\n doesn't match "
                        f"{_SET_ORDER_PREFIX} list:\n{_go_v(order)}")


def _merge_key_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _go_eq(left, right)
    for side in (left, right):
        if not isinstance(side, dict):
            raise _err_bad_arg_type("map[string]interface {}", side)
        if merge_key not in side:
            raise _err_no_merge_key(side, merge_key)
    return _go_eq(left[merge_key], right[merge_key])


def _apply_set_element_order(original: dict[str, Any], patch: dict[str, Any], meta: PatchMeta) -> None:
    """Merge each list named by a `$setElementOrder/<field>` directive and order it as the directive says."""
    for key in [k for k in patch if k.startswith(_SET_ORDER_PREFIX)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise _err_bad_arg_type("[]interface {}", order)
        field = _extract_key(key, _SET_ORDER_PREFIX)
        found_original, found_patch = field in original, field in patch
        original_list: list[Any] = []
        patch_list: list[Any] = []
        if found_original:
            if not isinstance(original[field], list):
                raise _err_bad_arg_type("[]interface {}", original[field])
            original_list = original[field]
        if found_patch:
            if not isinstance(patch[field], list):
                raise _err_bad_arg_type("[]interface {}", patch[field])
            patch_list = patch[field]
        fm = meta.field(field)
        merge_key = (fm.merge_key if fm else None) or ""
        _check_set_order(patch_list, order, merge_key)
        if not found_original and not found_patch:
            continue
        if not found_patch:
            merged = original_list
        elif not found_original:
            merged = _remove_directives(patch_list)[0]
        else:
            merged = _merge_slice_handler(original_list, patch_list, fm, False)
        inside, server_only = _partition(merged, order, merge_key)
        kind = _element_type(original_list, patch_list)
        original[field] = _normalize_element_order(inside, server_only, order, original_list, merge_key, kind)
        patch.pop(field, None)


def _merge_map(original: dict[str, Any] | None, patch: dict[str, Any], meta: PatchMeta) -> dict[str, Any]:
    if _DIRECTIVE in patch:
        d = patch[_DIRECTIVE]
        if _go_eq(d, "replace"):
            del patch[_DIRECTIVE]
            return patch
        if _go_eq(d, "delete"):
            return {}
        raise _internal(f"unknown patch type: {_go_s(d)} in map: {_go_v(patch)}")
    if original is None:
        original = {}
    _apply_retain_keys(original, patch)
    _apply_set_element_order(original, patch, meta)
    for key, pv in list(patch.items()):
        k, is_delete_list = key, False
        if key.startswith(_DELETE_PRIMITIVE_PREFIX):
            k, is_delete_list = _extract_key(key, _DELETE_PRIMITIVE_PREFIX), True
        if pv is None:
            original.pop(k, None)
            continue
        if k not in original or type(original[k]) is not type(pv):
            # New (or retyped) values are taken from the patch, minus nulls and directives.
            if not is_delete_list:
                _discard_nulls(pv)
                v, keep = _remove_directives(pv)
                if keep:
                    original[k] = v
                else:
                    original.pop(k, None)
            continue
        fm = meta.field(k)
        ov = original[k]
        if isinstance(ov, dict):
            original[k] = pv if _strategy(fm) == "replace" else _merge_map(ov, pv, _child(fm))
        elif isinstance(ov, list):
            original[k] = _merge_slice_handler(ov, pv, fm, is_delete_list)
        else:
            original[k] = pv
    return original


def strategic_merge_patch(doc: dict[str, Any], patch: dict[str, Any] | None, meta: PatchMeta) -> dict[str, Any]:
    """Apply a strategic merge patch (already decoded) to doc using the object type's patch metadata."""
    if patch is None:
        # A JSON null body decodes to a nil map: nothing to merge.
        return copy.deepcopy(doc)
    if not isinstance(patch, dict):
        raise _bad_request(_unmarshal_type_error(patch, "map[string]interface {}"))
    return _merge_map(copy.deepcopy(doc), copy.deepcopy(patch), meta)
