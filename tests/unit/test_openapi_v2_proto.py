"""The gnostic protobuf encoding of /openapi/v2, read back by a decoder written here from OpenAPIv2.proto.

The reader below shares nothing with the encoder (its own varint parsing and its own field-number
tables, taken from github.com/google/gnostic-models openapiv2/OpenAPIv2.proto), so a wrong field
number, wire type or nesting on either side makes the served document fail to round-trip.
"""
from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any, Callable

import pytest
import yaml

from kubegate.server.openapi import V2_PROTOBUF, OpenAPI, negotiate_v2, not_modified
from kubegate.server.openapi_v2_proto import encode_document

# ------------------------------------------------------------------------------------------ the reader


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def fields(buf: bytes) -> list[tuple[int, int, Any]]:
    out = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<d", buf, pos)[0], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        out.append((number, wire, value))
    assert pos == len(buf), "field ran past its message"
    return out


Reader = Callable[[bytes], Any]
# field number -> (JSON key, wire type, reader, repeated)
Spec = dict[int, tuple[str, int, Reader, bool]]


def text(b: bytes) -> str:
    return b.decode()


def any_yaml(b: bytes) -> Any:
    (number, wire, raw), = fields(b)
    assert (number, wire) == (2, 2)  # Any.yaml
    return yaml.safe_load(raw.decode())


def message(spec: Spec, vendor: int | None = None) -> Reader:
    def read(buf: bytes) -> dict[str, Any]:
        out: dict[str, Any] = {}
        last = 0
        for number, wire, value in fields(buf):
            assert number >= last, "fields out of order"
            last = number
            if number == vendor:
                (n1, _, name), (n2, _, val) = fields(value)
                assert (n1, n2) == (1, 2)
                out[name.decode()] = any_yaml(val)
                continue
            key, want_wire, reader, repeated = spec[number]
            assert wire == want_wire, f"{key}: wire type {wire}, want {want_wire}"
            v = reader(value) if wire == 2 else value
            if repeated:
                out.setdefault(key, []).append(v)
            else:
                assert key not in out, f"{key} twice"
                out[key] = v
        return out
    return read


def named(value: Reader) -> Reader:
    """A Named<X> list (additional_properties = 1: {name = 1, value = 2}) back into a JSON map."""
    def read(buf: bytes) -> dict[str, Any]:
        out = {}
        for number, _, entry in fields(buf):
            assert number == 1
            (n1, _, name), (n2, _, val) = fields(entry)
            assert (n1, n2) == (1, 2)
            out[name.decode()] = value(val)
        return out
    return read


def oneof(choices: dict[int, Reader]) -> Reader:
    def read(buf: bytes) -> Any:
        (number, wire, value), = fields(buf)
        assert wire == 2
        return choices[number](value)
    return read


def schema(buf: bytes) -> dict[str, Any]:
    out = SCHEMA(buf)
    if "type" in out:
        (t,) = out["type"]["value"]  # TypeItem; the JSON side always has a single type
        out["type"] = t
    if "items" in out:
        (item,) = out["items"]["schema"]  # ItemsItem
        out["items"] = item
    return out


def additional_properties(buf: bytes) -> Any:
    (number, _, value), = fields(buf)
    return schema(value) if number == 1 else bool(value)


SCHEMA = message({
    1: ("$ref", 2, text, False), 2: ("format", 2, text, False), 4: ("description", 2, text, False),
    21: ("additionalProperties", 2, additional_properties, False),
    22: ("type", 2, message({1: ("value", 2, text, True)}), False),
    23: ("items", 2, message({1: ("schema", 2, schema, True)}), False),
    25: ("properties", 2, named(schema), False)}, vendor=31)
QUERY_PARAMETER = message({1: ("required", 0, bool, False), 2: ("in", 2, text, False),
                           3: ("description", 2, text, False), 4: ("name", 2, text, False),
                           6: ("type", 2, text, False)}, vendor=23)
BODY_PARAMETER = message({2: ("name", 2, text, False), 3: ("in", 2, text, False), 4: ("required", 0, bool, False),
                          5: ("schema", 2, schema, False)}, vendor=6)
PARAMETERS_ITEM = oneof({1: oneof({1: BODY_PARAMETER, 2: oneof({3: QUERY_PARAMETER})})})
RESPONSES = message({1: ("codes", 2, message({1: ("name", 2, text, False),
                                              2: ("value", 2, oneof({1: message({1: ("description", 2, text, False)})}),
                                                  False)}), True)})
OPERATION = message({1: ("tags", 2, text, True), 5: ("operationId", 2, text, False),
                     8: ("parameters", 2, PARAMETERS_ITEM, True), 9: ("responses", 2, RESPONSES, False)}, vendor=13)
PATH_ITEM = message({2: ("get", 2, OPERATION, False), 3: ("put", 2, OPERATION, False),
                     4: ("post", 2, OPERATION, False), 5: ("delete", 2, OPERATION, False),
                     8: ("patch", 2, OPERATION, False)})
PATHS = message({2: ("path", 2, message({1: ("name", 2, text, False), 2: ("value", 2, PATH_ITEM, False)}), True)})
DOCUMENT = message({1: ("swagger", 2, text, False),
                    2: ("info", 2, message({1: ("title", 2, text, False), 2: ("version", 2, text, False)}), False),
                    8: ("paths", 2, PATHS, False), 9: ("definitions", 2, named(schema), False)})


def read_document(buf: bytes) -> dict[str, Any]:
    doc = DOCUMENT(buf)
    doc["paths"] = {p["name"]: p["value"] for p in doc["paths"]["path"]}
    for item in doc["paths"].values():
        for op in item.values():
            op["responses"] = {c["name"]: c["value"] for c in op["responses"]["codes"]}
    return doc


# ------------------------------------------------------------------------------------------ the tests

@pytest.fixture(scope="module")
def served() -> tuple[dict[str, Any], bytes]:
    api = OpenAPI()
    return api._v2_doc, api._v2_proto


def test_the_served_document_round_trips(served: tuple[dict[str, Any], bytes]) -> None:
    doc, proto = served
    assert read_document(proto) == doc


def test_kinds_and_their_extensions_read_back(served: tuple[dict[str, Any], bytes]) -> None:
    defs = read_document(served[1])["definitions"]
    sar = defs["io.k8s.api.authorization.v1.SubjectAccessReview"]
    # kubectl finds a kind's schema by this extension and rejects keys a definition does not list
    assert sar["x-kubernetes-group-version-kind"] == [
        {"group": "authorization.k8s.io", "kind": "SubjectAccessReview", "version": "v1"}]
    assert list(sar["properties"])[:2] == ["apiVersion", "kind"]
    assert sar["properties"]["spec"] == {"$ref": "#/definitions/io.k8s.api.authorization.v1.SubjectAccessReviewSpec"}
    beta = defs["io.k8s.api.authorization.v1beta1.SubjectAccessReviewSpec"]["properties"]
    assert beta["group"]["type"] == "array" and beta["group"]["items"] == {"type": "string"}
    containers = defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    labels = defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["labels"]
    assert labels["additionalProperties"] == {"type": "string"}


def test_patch_operations_carry_field_validation(served: tuple[dict[str, Any], bytes]) -> None:
    # kubectl's v2 verifier: the PATCH operation tagged with Namespace's GVK lists fieldValidation
    paths = read_document(served[1])["paths"]
    patch = paths["/api/v1/namespaces/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "kind": "Namespace", "version": "v1"}
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    assert "patch" not in paths.get("/apis/authorization.k8s.io/v1/subjectaccessreviews/{name}", {})


def test_presence_and_proto3_defaults() -> None:
    doc = {"swagger": "2.0", "definitions": {
        "Empty": {"type": "object", "properties": {}},
        "Closed": {"type": "object", "additionalProperties": False},
        "Blank": {"description": ""}}}
    proto = encode_document(doc)
    defs = DOCUMENT(proto)["definitions"]
    # an empty properties message is still written: kubectl tells a kind from a free-form map by it
    assert defs["Empty"] == {"type": "object", "properties": {}}
    assert defs["Closed"]["additionalProperties"] is False  # a oneof member is written even when false
    assert defs["Blank"] == {}  # proto3 leaves out empty strings
    # by hand: Document.definitions (9) > NamedSchema{name (1) "E", value (2)} > Schema.properties (25), empty
    assert encode_document({"definitions": {"E": {"properties": {}}}}) == bytes.fromhex("4a0a0a080a014512 03ca0100")


def test_numbers_and_enums_use_their_wire_types() -> None:
    doc = {"definitions": {"N": {"type": "integer", "minimum": 1, "maxLength": 5, "enum": ["a", "b"],
                                 "required": ["x"], "x-kubernetes-int-or-string": True}}}
    (_, _, definitions), = fields(encode_document(doc))
    (_, _, entry), = fields(definitions)
    (_, _, _), (_, _, schema_bytes) = fields(entry)
    got = {n: (w, v) for n, w, v in fields(schema_bytes) if n != 20}
    assert got[9] == (1, 1.0)            # minimum: double, fixed64
    assert got[11] == (0, 5)             # maxLength: int64, varint
    assert got[19] == (2, b"x")          # required: repeated string
    assert any_yaml(fields(got[31][1])[1][2]) is True  # vendor_extension: NamedAny{name, Any{yaml}}
    enums = [any_yaml(v) for n, _, v in fields(schema_bytes) if n == 20]
    assert enums == ["a", "b"]


def test_unknown_properties_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported property 'bogus'"):
        encode_document({"definitions": {"X": {"type": "object", "bogus": 1}}})
    with pytest.raises(ValueError, match="unsupported location 'cookie'"):
        encode_document({"paths": {"/x": {"get": {"parameters": [{"name": "c", "in": "cookie"}]}}}})


@pytest.mark.parametrize(("accept", "want"), [
    (None, "application/json"),
    ("", "application/json"),
    ("*/*", "application/json"),
    ("application/json", "application/json"),
    ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf", V2_PROTOBUF),   # kubectl
    ("application/com.github.proto-openapi.spec.v2.v1.0+protobuf", V2_PROTOBUF),
    ("application/json;q=0.5, application/com.github.proto-openapi.spec.v2.v1.0+protobuf", V2_PROTOBUF),
    ("*/*;q=0.8, application/com.github.proto-openapi.spec.v2@v1.0+protobuf", V2_PROTOBUF),
    ("application/json, application/com.github.proto-openapi.spec.v2@v1.0+protobuf", "application/json"),
    ("text/html", None),
    ("application/yaml", None),
    ("text/html;q=0", None),
    ("application/json;q=0", "application/json"),  # goautoneg orders by q but never drops a clause
    ("*", "application/json"),
    ("application/json;q=0.9, application/com.github.proto-openapi.spec.v2.v1.0+protobuf;q=0.5", "application/json"),
    # goautoneg's Less puts a specific subtype before a wildcard whatever their q
    ("application/*, application/com.github.proto-openapi.spec.v2.v1.0+protobuf;q=0.5", V2_PROTOBUF),
])
def test_negotiation(accept: str | None, want: str | None) -> None:
    assert negotiate_v2(accept) == want


def test_conditional_get() -> None:
    etag = '"ABC"'
    built = datetime(2026, 11, 23, 11, 16, 44, 500000, tzinfo=timezone.utc)
    assert not_modified({"If-None-Match": '"ABC"'}, etag, built)
    assert not_modified({"If-None-Match": 'W/"ABC"'}, etag, built)
    assert not_modified({"If-None-Match": '"X", "ABC"'}, etag, built)
    assert not_modified({"If-None-Match": "*"}, etag, built)
    assert not not_modified({"If-None-Match": '"X"'}, etag, built)
    assert not not_modified({"If-None-Match": "ABC"}, etag, built)  # unquoted is another tag
    assert not not_modified({}, etag, built)
    # If-Modified-Since counts only without If-None-Match; Last-Modified has whole seconds
    same_second = format_datetime(built.replace(microsecond=0), usegmt=True)
    assert not_modified({"If-Modified-Since": same_second}, etag, built)
    earlier = format_datetime(built - timedelta(seconds=1), usegmt=True)
    assert not not_modified({"If-Modified-Since": earlier}, etag, built)
    assert not not_modified({"If-None-Match": '"X"', "If-Modified-Since": same_second}, etag, built)
    assert not not_modified({"If-Modified-Since": "yesterday"}, etag, built)
