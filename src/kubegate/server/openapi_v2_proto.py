"""The OpenAPI v2 document as gnostic's `openapi.v2.Document` protobuf (pure).

kubectl downloads `/openapi/v2` in this encoding for client-side validation (create-only kinds
such as SubjectAccessReview have no PATCH operation, so kubectl cannot rely on the server's
field validation for them). Upstream builds it by parsing the JSON document with gnostic and
marshalling the result; this module does the same conversion directly from the JSON-shaped
dict. Field numbers are those of github.com/google/gnostic-models openapiv2/OpenAPIv2.proto.
Fields are written in field-number order, as Go's marshaller does; proto3 zero values (empty
strings, false, 0) are left out, while a present message (even an empty `properties: {}`) is
written, because kubectl tells an object with no fields from a free-form map by its presence.
Vendor extensions (`x-...`) become `NamedAny{name, Any{yaml}}`; kubectl reads the YAML text,
e.g. `x-kubernetes-group-version-kind` to find the schema of a kind.
"""
from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any

from kubegate.protobuf.wire import FIXED64, length_delimited, tag, varint_field

Encoder = Callable[[int, Any], bytes]
Message = Callable[[dict[str, Any]], bytes]


def _string(n: int, v: str) -> bytes:
    return length_delimited(n, v.encode()) if v else b""


def _bool(n: int, v: bool) -> bytes:
    return varint_field(n, 1) if v else b""


def _int64(n: int, v: int) -> bytes:
    return varint_field(n, v) if v else b""


def _double(n: int, v: float) -> bytes:
    return tag(n, FIXED64) + struct.pack("<d", float(v)) if v else b""


def _strings(n: int, v: list[str]) -> bytes:
    return b"".join(length_delimited(n, s.encode()) for s in v)


def _any_message(value: Any) -> bytes:
    # Any{yaml = 2}: JSON text is YAML, and json.dumps' separators match the flow style gnostic
    # writes for nodes it parsed from JSON.
    return _string(2, json.dumps(value, ensure_ascii=False) + "\n")


def _any(n: int, v: Any) -> bytes:
    return length_delimited(n, _any_message(v))


def _anys(n: int, v: list[Any]) -> bytes:
    return b"".join(_any(n, x) for x in v)


def _named_any(n: int, name: str, value: Any) -> bytes:
    return length_delimited(n, _string(1, name) + length_delimited(2, _any_message(value)))


def _one(message: Message) -> Encoder:
    return lambda n, v: length_delimited(n, message(v))


def _each(message: Message) -> Encoder:
    return lambda n, v: b"".join(length_delimited(n, message(x)) for x in v)


def _named(message: Callable[[Any], bytes]) -> Message:
    """A JSON map as gnostic's Named<X> list: {additional_properties = 1: [{name = 1, value = 2}]}."""
    return lambda m: b"".join(length_delimited(1, _string(1, k) + length_delimited(2, message(v)))
                              for k, v in m.items())


def _message(name: str, fields: dict[str, tuple[int, Encoder]], vendor: int | None) -> Message:
    def encode(obj: dict[str, Any]) -> bytes:
        out: list[tuple[int, bytes]] = []
        for key, value in obj.items():
            spec = fields.get(key)
            if spec is not None:
                out.append((spec[0], spec[1](spec[0], value)))
            elif vendor is not None and key.startswith("x-"):
                out.append((vendor, _named_any(vendor, key, value)))
            else:
                # gnostic rejects unknown properties too; failing here keeps the two encodings equal
                raise ValueError(f"openapi v2 {name}: unsupported property {key!r}")
        out.sort(key=lambda part: part[0])  # stable: a repeated field keeps the JSON order
        return b"".join(part for _, part in out)
    return encode


def _lazy(get: Callable[[], Message]) -> Message:
    """Refer to a message defined later (the schema types are recursive)."""
    return lambda obj: get()(obj)


def _primitive_fields(first: int) -> dict[str, tuple[int, Encoder]]:
    """The validation keywords shared, in this order, by PrimitivesItems, Header and the non-body parameters."""
    kinds: list[tuple[str, Encoder]] = [
        ("type", _string), ("format", _string), ("items", _one(_lazy(lambda: _PRIMITIVES_ITEMS))),
        ("collectionFormat", _string), ("default", _any), ("maximum", _double), ("exclusiveMaximum", _bool),
        ("minimum", _double), ("exclusiveMinimum", _bool), ("maxLength", _int64), ("minLength", _int64),
        ("pattern", _string), ("maxItems", _int64), ("minItems", _int64), ("uniqueItems", _bool),
        ("enum", _anys), ("multipleOf", _double)]
    return {key: (first + i, enc) for i, (key, enc) in enumerate(kinds)}


_PRIMITIVES_ITEMS = _message("PrimitivesItems", _primitive_fields(1), 18)
_HEADER = _message("Header", {**_primitive_fields(1), "description": (18, _string)}, 19)
_EXTERNAL_DOCS = _message("ExternalDocs", {"description": (1, _string), "url": (2, _string)}, 3)
_JSON_REFERENCE = _message("JsonReference", {"$ref": (1, _string), "description": (2, _string)}, None)


def _type_item(v: str | list[str]) -> bytes:
    return _strings(1, [v] if isinstance(v, str) else v)


def _items_item(v: dict[str, Any] | list[dict[str, Any]]) -> bytes:
    return _each(_SCHEMA)(1, [v] if isinstance(v, dict) else v)


def _additional_properties(v: dict[str, Any] | bool) -> bytes:
    # a oneof: false is written too, since the choice itself is the information
    if isinstance(v, bool):
        return varint_field(2, int(v))
    return length_delimited(1, _SCHEMA(v))


_SCHEMA: Message = _message("Schema", {
    "$ref": (1, _string), "format": (2, _string), "title": (3, _string), "description": (4, _string),
    "default": (5, _any), "multipleOf": (6, _double), "maximum": (7, _double), "exclusiveMaximum": (8, _bool),
    "minimum": (9, _double), "exclusiveMinimum": (10, _bool), "maxLength": (11, _int64),
    "minLength": (12, _int64), "pattern": (13, _string), "maxItems": (14, _int64), "minItems": (15, _int64),
    "uniqueItems": (16, _bool), "maxProperties": (17, _int64), "minProperties": (18, _int64),
    "required": (19, _strings), "enum": (20, _anys), "additionalProperties": (21, _one(_additional_properties)),
    "type": (22, _one(_type_item)), "items": (23, _one(_items_item)),
    "allOf": (24, _each(_lazy(lambda: _SCHEMA))), "properties": (25, _one(_named(_lazy(lambda: _SCHEMA)))),
    "discriminator": (26, _string), "readOnly": (27, _bool), "externalDocs": (29, _one(_EXTERNAL_DOCS)),
    "example": (30, _any)}, 31)

_BODY_PARAMETER = _message("BodyParameter", {
    "description": (1, _string), "name": (2, _string), "in": (3, _string), "required": (4, _bool),
    "schema": (5, _one(_SCHEMA))}, 6)
_HEADER_OR_PATH_PARAMETER = {"required": (1, _bool), "in": (2, _string), "description": (3, _string),
                             "name": (4, _string), **_primitive_fields(5)}
_QUERY_OR_FORM_PARAMETER = {"required": (1, _bool), "in": (2, _string), "description": (3, _string),
                            "name": (4, _string), "allowEmptyValue": (5, _bool), **_primitive_fields(6)}
# NonBodyParameter's oneof, chosen by `in`: (field number, sub-schema message)
_NON_BODY: dict[str, tuple[int, Message]] = {
    "header": (1, _message("HeaderParameterSubSchema", _HEADER_OR_PATH_PARAMETER, 22)),
    "formData": (2, _message("FormDataParameterSubSchema", _QUERY_OR_FORM_PARAMETER, 23)),
    "query": (3, _message("QueryParameterSubSchema", _QUERY_OR_FORM_PARAMETER, 23)),
    "path": (4, _message("PathParameterSubSchema", _HEADER_OR_PATH_PARAMETER, 22)),
}


def _parameter(p: dict[str, Any]) -> bytes:
    """Parameter{oneof body_parameter = 1, non_body_parameter = 2}."""
    where = p.get("in")
    if where == "body":
        return length_delimited(1, _BODY_PARAMETER(p))
    if where not in _NON_BODY:
        raise ValueError(f"openapi v2 parameter {p.get('name')!r}: unsupported location {where!r}")
    number, sub = _NON_BODY[where]
    return length_delimited(2, length_delimited(number, sub(p)))


def _parameters_item(p: dict[str, Any]) -> bytes:
    """ParametersItem{oneof parameter = 1, json_reference = 2}."""
    if "$ref" in p:
        return length_delimited(2, _JSON_REFERENCE(p))
    return length_delimited(1, _parameter(p))


_RESPONSE = _message("Response", {
    "description": (1, _string), "schema": (2, _one(lambda s: length_delimited(1, _SCHEMA(s)))),
    "headers": (3, _one(_named(_HEADER)))}, 5)


def _response_value(r: dict[str, Any]) -> bytes:
    """ResponseValue{oneof response = 1, json_reference = 2}."""
    if "$ref" in r:
        return length_delimited(2, _JSON_REFERENCE(r))
    return length_delimited(1, _RESPONSE(r))


def _responses(rs: dict[str, Any]) -> bytes:
    """Responses{response_code = 1 (NamedResponseValue), vendor_extension = 2}."""
    out = []
    for code, r in rs.items():
        if code.startswith("x-"):
            out.append((2, _named_any(2, code, r)))
        else:
            out.append((1, length_delimited(1, _string(1, code) + length_delimited(2, _response_value(r)))))
    out.sort(key=lambda part: part[0])
    return b"".join(part for _, part in out)


_OPERATION = _message("Operation", {
    "tags": (1, _strings), "summary": (2, _string), "description": (3, _string),
    "externalDocs": (4, _one(_EXTERNAL_DOCS)), "operationId": (5, _string), "produces": (6, _strings),
    "consumes": (7, _strings), "parameters": (8, _each(_parameters_item)), "responses": (9, _one(_responses)),
    "schemes": (10, _strings), "deprecated": (11, _bool)}, 13)

_PATH_ITEM = _message("PathItem", {
    "$ref": (1, _string), "get": (2, _one(_OPERATION)), "put": (3, _one(_OPERATION)),
    "post": (4, _one(_OPERATION)), "delete": (5, _one(_OPERATION)), "options": (6, _one(_OPERATION)),
    "head": (7, _one(_OPERATION)), "patch": (8, _one(_OPERATION)),
    "parameters": (9, _each(_parameters_item))}, 10)


def _paths(ps: dict[str, Any]) -> bytes:
    """Paths{vendor_extension = 1, path = 2 (NamedPathItem)}."""
    out = []
    for path, item in ps.items():
        if path.startswith("x-"):
            out.append((1, _named_any(1, path, item)))
        else:
            out.append((2, length_delimited(2, _string(1, path) + length_delimited(2, _PATH_ITEM(item)))))
    out.sort(key=lambda part: part[0])
    return b"".join(part for _, part in out)


_INFO = _message("Info", {"title": (1, _string), "version": (2, _string), "description": (3, _string),
                          "termsOfService": (4, _string)}, 7)

_DOCUMENT = _message("Document", {
    "swagger": (1, _string), "info": (2, _one(_INFO)), "host": (3, _string), "basePath": (4, _string),
    "schemes": (5, _strings), "consumes": (6, _strings), "produces": (7, _strings), "paths": (8, _one(_paths)),
    "definitions": (9, _one(_named(_SCHEMA))), "parameters": (10, _one(_named(_parameter))),
    "responses": (11, _one(_named(_RESPONSE))), "externalDocs": (15, _one(_EXTERNAL_DOCS))}, 16)


def encode_document(doc: dict[str, Any]) -> bytes:
    """The gnostic openapi.v2.Document bytes of a Swagger 2.0 document; ValueError on what gnostic would reject."""
    return _DOCUMENT(doc)
